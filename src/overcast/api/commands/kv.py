"""The KV storage commands (the Generic KV Storage extension's 18, built in; Overcast extensions, not in
CloudStack's catalogue).

Storage commands manage the registry (``overcast.kv.registry``); data commands act on the keys through
``overcast.kv.store`` in the request's transaction, where the original proxied them over HTTP to its KV
service, and map the service's statuses as it did (spec 2.4): a missing key of getKvStorageValue and a
conflict of clearKvStorage answer a ``kverror`` object with the status as ``code``; a missing storage is
"The KV storage does not exist".
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from overcast.access.roles import ALL_ROLES
from overcast.api.context import CallContext
from overcast.api.declare import (
    BOOLEAN, INTEGER, LIST, LONG, MAP, STRING, UUID, Access, Command, FlatResult, ListResult, ObjectResult, Param,
    Result, Success, SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page
from overcast.api.responses.kv import (
    KvDataResponse, KvHistoryResponse, KvKeyResponse, KvKeysResponse, KvPairResponse, KvResultResponse,
    KvStorageResponse, KvSuccessResponse, KvValueResponse, history_payload, storage_payload,
)  # fmt: skip
from overcast.db.models import Account, KvScroll, KvStorage
from overcast.errors import InvalidParameterValue
from overcast.kv import registry, store

RELATED = ("createAccountKvStorage", "createTempKvStorage", "getKvStorage")
STORAGE_ID = "the ID of the KV storage (a VM storage's ID is the VM's ID)"


def _storage_id(related: tuple[str, ...] = RELATED) -> Param:
    return Param(STRING, "storageid", required=True, related=related, description=STORAGE_ID)


def storage_result(ctx: CallContext, storage: KvStorage) -> ObjectResult:
    return ObjectResult(storage_payload(ctx.session, [storage], store.public_url(ctx.services))[0])


def _live(ctx: CallContext, storage_id: str | None) -> KvStorage:
    """The live storage the caller may operate on ("The KV storage does not exist" otherwise)."""
    return registry.find_storage(ctx.session, ctx.me, storage_id)


def _invalid(exc: store.KvError, message: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"{message}: {exc.message}" if exc.message and exc.message != message else message)


def _kv_error(code: int) -> FlatResult:
    return FlatResult({"kverror": {"code": code}})


# -- storages ------------------------------------------------------------------------------------


@api_command("createAccountKvStorage", response=KvStorageResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="STORAGE.KV.CREATE", description="Creates an account KV storage")
class CreateAccountKvStorage(Command):
    account = Param(UUID, "accountid", required=True, entity=Account, acl=Access.OPERATE,
                    description="the ID of the account owning the storage")
    name = Param(STRING, required=True, description="the name of the storage")
    description = Param(STRING, description="the description of the storage")
    history_enabled = Param(BOOLEAN, "historyenabled", description="true if the storage keeps the history of its"
                            " changes (default false)")

    def instance(self) -> tuple[str | None, str | None]:
        return "Account", self.account.uuid

    def precheck(self, ctx: CallContext) -> None:
        if not self.name or not self.name.strip():
            raise InvalidParameterValue("Unspecified name (parameter name)")

    def execute(self, ctx: CallContext) -> Result:
        storage = registry.create_account_storage(ctx.session, self.account, self.name, self.description,
                                                  bool(self.history_enabled))
        ctx.event("STORAGE.KV.CREATE", f"Created account KV storage {storage.uuid}", account_id=self.account.id,
                  domain_id=self.account.domain_id, resource_type="KvStorage", resource_uuid=storage.uuid)
        return storage_result(ctx, storage)


def _account_storage(ctx: CallContext, account: Account, storage_id: str | None) -> KvStorage:
    if storage_id is None or not storage_id.strip():
        raise InvalidParameterValue("Invalid storage id (parameter storageid)")
    storage = ctx.session.scalar(select(KvStorage).where(KvStorage.uuid == storage_id.strip()))
    if storage is None:
        raise InvalidParameterValue(registry.NOT_EXIST)
    if storage.kind != registry.ACCOUNT:
        raise InvalidParameterValue("The storage type is not account")
    if storage.account_id != account.id:
        raise InvalidParameterValue("The storage does not belong to the specified account")
    return storage


@api_command("deleteAccountKvStorage", response=SuccessResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="STORAGE.KV.DELETE", description="Deletes an account KV storage")
class DeleteAccountKvStorage(Command):
    account = Param(UUID, "accountid", required=True, entity=Account, acl=Access.OPERATE,
                    description="the ID of the account owning the storage")
    storage_id = _storage_id()

    def instance(self) -> tuple[str | None, str | None]:
        return "KvStorage", self.storage_id

    def precheck(self, ctx: CallContext) -> None:
        _account_storage(ctx, self.account, self.storage_id)

    def execute(self, ctx: CallContext) -> Result:
        storage = _account_storage(ctx, self.account, self.storage_id)
        if not storage.deleted:  # deleting a deleted storage succeeds, as in the original
            store.soft_delete(ctx.session, storage)
            ctx.event("STORAGE.KV.DELETE", f"Deleted account KV storage {storage.uuid}", account_id=self.account.id,
                      domain_id=self.account.domain_id, resource_type="KvStorage", resource_uuid=storage.uuid)
        return Success()


@api_command("listAccountKvStorages", response=KvStorageResponse, roles=ALL_ROLES, is_list=True,
             description="Lists the KV storages of an account (deleted ones too, until they are purged)")
class ListAccountKvStorages(Command):
    account = Param(UUID, "accountid", required=True, entity=Account, acl=Access.OPERATE,
                    description="the ID of the account")

    def execute(self, ctx: CallContext) -> Result:
        stmt = select(KvStorage).where(KvStorage.account_id == self.account.id,
                                       KvStorage.kind == registry.ACCOUNT).order_by(KvStorage.uuid)
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult(storage_payload(ctx.session, rows, store.public_url(ctx.services)), count)


@api_command("createTempKvStorage", response=KvStorageResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="STORAGE.KV.CREATE", description="Creates a temporary KV storage, owned by the caller's"
             " account")
class CreateTempKvStorage(Command):
    ttl = Param(INTEGER, required=True, description="the time to live of the storage in milliseconds")

    def precheck(self, ctx: CallContext) -> None:
        if self.ttl is None or self.ttl <= 0:
            raise InvalidParameterValue("Invalid TTL (parameter ttl): it must be positive")

    def execute(self, ctx: CallContext) -> Result:
        owner = ctx.session.get(Account, ctx.me.account_id)
        assert owner is not None
        storage = registry.create_temp_storage(ctx.session, owner, self.ttl)
        ctx.event("STORAGE.KV.CREATE", f"Created temporary KV storage {storage.uuid}", resource_type="KvStorage",
                  resource_uuid=storage.uuid)
        return storage_result(ctx, storage)


def _temp_storage(ctx: CallContext, storage_id: str | None) -> KvStorage:
    storage = _live(ctx, storage_id)
    if storage.kind != registry.TEMP:
        raise InvalidParameterValue("The storage type is not temp")
    return storage


@api_command("updateTempKvStorage", response=KvStorageResponse, roles=ALL_ROLES,
             description="Updates the time to live of a temporary KV storage (counted from its creation)")
class UpdateTempKvStorage(Command):
    storage_id = _storage_id()
    ttl = Param(INTEGER, required=True, description="the new time to live of the storage in milliseconds")

    def execute(self, ctx: CallContext) -> Result:
        if self.ttl is None or self.ttl <= 0:
            raise InvalidParameterValue("Invalid TTL (parameter ttl): it must be positive")
        storage = _temp_storage(ctx, self.storage_id)
        try:
            storage = store.update_ttl(ctx.session, storage, self.ttl)
        except store.KvNotFound:
            raise InvalidParameterValue(registry.NOT_EXIST) from None
        except store.KvBadRequest as exc:
            raise _invalid(exc, "Invalid TTL (parameter ttl)") from None
        return storage_result(ctx, storage)


@api_command("deleteTempKvStorage", response=SuccessResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="STORAGE.KV.DELETE", description="Deletes a temporary KV storage")
class DeleteTempKvStorage(Command):
    storage_id = _storage_id()

    def instance(self) -> tuple[str | None, str | None]:
        return "KvStorage", self.storage_id

    def precheck(self, ctx: CallContext) -> None:
        _temp_storage(ctx, self.storage_id)

    def execute(self, ctx: CallContext) -> Result:
        storage = ctx.session.scalar(select(KvStorage).where(KvStorage.uuid == (self.storage_id or "").strip()))
        if storage is not None and storage.deleted and storage.kind == registry.TEMP:
            registry.check_access(ctx.session, ctx.me, storage)
            return Success()  # a re-run after a crash, or a second delete queued meanwhile
        storage = _temp_storage(ctx, self.storage_id)
        store.soft_delete(ctx.session, storage)
        ctx.event("STORAGE.KV.DELETE", f"Deleted temporary KV storage {storage.uuid}", account_id=storage.account_id,
                  domain_id=storage.domain_id, resource_type="KvStorage", resource_uuid=storage.uuid)
        return Success()


@api_command("getKvStorage", response=KvStorageResponse, roles=ALL_ROLES, read_only=True,
             description="Gets a KV storage (with its secret key) by its ID; a VM storage by the VM's ID")
class GetKvStorage(Command):
    storage_id = _storage_id()

    def execute(self, ctx: CallContext) -> Result:
        return storage_result(ctx, _live(ctx, self.storage_id))


@api_command("regenerateKvStorageSecretKey", response=KvStorageResponse, roles=ALL_ROLES,
             description="Gives a KV storage a new secret key; the old one stops working at once")
class RegenerateKvStorageSecretKey(Command):
    storage_id = _storage_id()

    def execute(self, ctx: CallContext) -> Result:
        return storage_result(ctx, registry.regenerate_secret(ctx.session, _live(ctx, self.storage_id)))


# -- data ----------------------------------------------------------------------------------------


@api_command("getKvStorageValue", response=KvValueResponse, roles=ALL_ROLES, read_only=True,
             description="Gets the value of a key (kverror with code 404 when there is no such key)")
class GetKvStorageValue(Command):
    storage_id = _storage_id()
    key = Param(STRING, required=True, length=512, description="the key")

    def execute(self, ctx: CallContext) -> Result:
        value = store.get_value(ctx.session, _live(ctx, self.storage_id), self.key)
        if value is None:
            return _kv_error(404)
        return ObjectResult({"value": value})


@api_command("getKvStorageValues", response=KvDataResponse, roles=ALL_ROLES, read_only=True,
             description="Gets the values of keys (a missing key has no entry)")
class GetKvStorageValues(Command):
    storage_id = _storage_id()
    keys = Param(LIST, required=True, length=1_000_000, description="the keys, comma separated")

    def execute(self, ctx: CallContext) -> Result:
        storage = _live(ctx, self.storage_id)
        return ObjectResult({"items": store.get_values(ctx.session, storage, self.keys or [])})


def _limits(ctx: CallContext) -> tuple[int, int]:
    return store.kv_limits(ctx.session, ctx.services.settings)


@api_command("setKvStorageValue", response=KvPairResponse, roles=ALL_ROLES, description="Sets the value of a key")
class SetKvStorageValue(Command):
    storage_id = _storage_id()
    key = Param(STRING, required=True, length=512, description="the key")
    value = Param(STRING, required=True, length=2**31 - 1, sensitive=True, description="the value")

    def execute(self, ctx: CallContext) -> Result:
        if not self.key:
            raise InvalidParameterValue("Null or empty key (parameter key)")
        storage = _live(ctx, self.storage_id)
        try:
            store.set_value(ctx.session, storage, self.key, self.value or "", limits=_limits(ctx))
        except store.KvBadRequest:
            raise InvalidParameterValue("Key/value pair is invalid (parameters key and value)") from None
        store.notify(ctx.services, storage, store.watchers(storage, [self.key]), ctx.session)
        return ObjectResult({"key": self.key, "value": self.value or ""})


@api_command("setKvStorageValues", response=KvResultResponse, roles=ALL_ROLES,
             description="Sets the values of keys, given as items[0].<key>=<value> (only the first group counts);"
             " a pair that is too long is not written and answers false")
class SetKvStorageValues(Command):
    storage_id = _storage_id()
    items = Param(MAP, required=True, sensitive=True, description="the keys and values:"
                  " items[0].key1=value1&items[0].key2=value2")

    def execute(self, ctx: CallContext) -> Result:
        storage = _live(ctx, self.storage_id)
        groups: list[dict[str, str]] = self.items or []
        data = dict(groups[0]) if groups else {}  # the original reads the first group only
        written = store.set_values(ctx.session, storage, data, limits=_limits(ctx))
        store.notify(ctx.services, storage, store.watchers(storage, [k for k, ok in written.items() if ok]),
                     ctx.session)
        return ObjectResult({"items": written})


@api_command("deleteKvStorageKey", response=KvKeyResponse, roles=ALL_ROLES, description="Deletes a key")
class DeleteKvStorageKey(Command):
    storage_id = _storage_id()
    key = Param(STRING, required=True, length=512, description="the key")

    def execute(self, ctx: CallContext) -> Result:
        store.delete_key(ctx.session, _live(ctx, self.storage_id), self.key)
        return ObjectResult({"key": self.key})


@api_command("deleteKvStorageKeys", response=KvResultResponse, roles=ALL_ROLES, description="Deletes keys")
class DeleteKvStorageKeys(Command):
    storage_id = _storage_id()
    keys = Param(LIST, required=True, length=1_000_000, description="the keys, comma separated")

    def execute(self, ctx: CallContext) -> Result:
        storage = _live(ctx, self.storage_id)
        return ObjectResult({"items": store.delete_keys(ctx.session, storage, self.keys or [])})


@api_command("listKvStorageKeys", response=KvKeysResponse, roles=ALL_ROLES, read_only=True,
             description="Lists every key of a KV storage")
class ListKvStorageKeys(Command):
    storage_id = _storage_id()

    def execute(self, ctx: CallContext) -> Result:
        return ObjectResult({"items": list(store.list_keys(ctx.session, _live(ctx, self.storage_id)))})


@api_command("clearKvStorage", response=KvSuccessResponse, roles=ALL_ROLES,
             description="Deletes every key of a KV storage (kverror with code 409 on a conflict)")
class ClearKvStorage(Command):
    storage_id = _storage_id()

    def execute(self, ctx: CallContext) -> Result:
        try:
            store.clear(ctx.session, _live(ctx, self.storage_id))
        except store.KvConflict:
            return _kv_error(409)
        return ObjectResult({"success": True})


HISTORY_OPS = "set, delete or clear"


@api_command("getKvStorageHistory", response=KvHistoryResponse, roles=ALL_ROLES,
             description="Searches the history of a KV storage (page mode, or scroll mode with scroll)")
class GetKvStorageHistory(Command):
    storage_id = _storage_id()
    keys = Param(LIST, length=1_000_000, description="only records of these keys")
    operations = Param(LIST, description=f"only records of these operations ({HISTORY_OPS})")
    start = Param(LONG, description="only records at or after this time, in Unix milliseconds")
    end = Param(LONG, description="only records at or before this time, in Unix milliseconds")
    sort = Param(LIST, description="sort fields among key, value, timestamp and operation; a leading - sorts"
                 " descending")
    page = Param(INTEGER, description="the page number (default 1)")
    size = Param(INTEGER, description="the number of records per page (default 50)")
    scroll = Param(LONG, description="open a scroll kept this many milliseconds (page is then ignored)")

    def execute(self, ctx: CallContext) -> Result:
        storage = _live(ctx, self.storage_id)
        if storage.kind == registry.TEMP or not storage.history_enabled:
            raise InvalidParameterValue("The KV storage does not support history")
        try:
            result = store.history(ctx.session, storage, keys=self.keys, operations=self.operations,
                                   start=self.start, end=self.end, sort=self.sort, page=self.page, size=self.size,
                                   scroll=self.scroll)
        except store.KvBadRequest as exc:
            raise _invalid(exc, "Invalid KV history request") from None
        return ObjectResult(history_payload(result))


@api_command("scrollKvStorageHistory", response=KvHistoryResponse, roles=ALL_ROLES,
             description="Continues a history scroll of a KV storage")
class ScrollKvStorageHistory(Command):
    scroll_id = Param(STRING, "scrollid", required=True, length=2**31 - 1, sensitive=True,
                      description="the scroll ID")
    timeout = Param(LONG, required=True, description="how long to keep the scroll open, in milliseconds")

    def execute(self, ctx: CallContext) -> Result:
        if not self.scroll_id:
            raise InvalidParameterValue("Scroll id is invalid or expired (parameter scrollid)")
        if self.timeout is None or self.timeout <= 0:
            raise InvalidParameterValue("Invalid timeout (parameter timeout): it must be positive")
        # Better than the original (no check at all): the scroll's storage must be the caller's to reach.
        storage_id = ctx.session.scalar(select(KvScroll.storage_id).where(KvScroll.id == self.scroll_id))
        storage = ctx.session.get(KvStorage, storage_id) if storage_id is not None else None
        if storage is not None:
            registry.check_access(ctx.session, ctx.me, storage)
        try:
            result: dict[str, Any] = store.scroll(ctx.session, self.scroll_id, self.timeout)
        except store.KvBadRequest as exc:
            raise _invalid(exc, "Scroll id is invalid or expired") from None
        return ObjectResult(history_payload(result))


__all__ = ["storage_result"]
