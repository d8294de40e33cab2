"""KV storage responses: the storage (``kvstorage``), operation results (``kvresult``) and the
operation errors the original answers as objects rather than failures (``kverror``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast.api.declare import Field, ResponseObject
from overcast.db.models import Account, KvStorage

F = Field


class KvStorageResponse(ResponseObject):
    """A storage (the extension's ``entity/KvStorage.java``); null fields are left out."""

    object_name = "kvstorage"
    fields = (
        F("id", "string", "the ID of the storage (the VM's ID for a VM storage)"),
        F("type", "string", "the storage type: ACCOUNT, VM or TEMP"),
        F("deleted", "boolean", "true if the storage is deleted (listed until it is purged)"),
        F("secretkey", "string", "the secret key to send as Secret-Key to the KV HTTP service"),
        F("account", "string", "the ID of the account owning the storage (ACCOUNT storages)"),
        F("name", "string", "the name of the storage (ACCOUNT storages)"),
        F("description", "string", "the description of the storage (ACCOUNT storages)"),
        F("historyenabled", "boolean", "true if the storage keeps the history of its changes"),
        F("ttl", "long", "the time to live of the storage in milliseconds (TEMP storages)"),
        F("expirationtimestamp", "long", "when the storage expires, in Unix milliseconds (TEMP storages)"),
        F("lastupdated", "long", "when the storage was last changed, in Unix milliseconds (0: never)"),
        F("url", "string", "the base URL of the KV HTTP service"),
    )


def storage_payload(session: Session, rows: list[KvStorage], url: str) -> list[dict[str, Any]]:
    """Wire dicts for many storages, with one query for the owner accounts' UUIDs."""
    account_ids = {r.account_id for r in rows if r.kind == "ACCOUNT" and r.account_id is not None}
    uuids: dict[int, str] = {}
    if account_ids:
        uuids = dict(session.execute(select(Account.id, Account.uuid).where(Account.id.in_(account_ids))).tuples().all())
    out = []
    for r in rows:
        is_account, is_temp = r.kind == "ACCOUNT", r.kind == "TEMP"
        out.append({
            "id": r.uuid, "type": r.kind, "deleted": bool(r.deleted), "secretkey": r.secret_key,
            "account": uuids.get(r.account_id) if is_account and r.account_id is not None else None,
            "name": r.name if is_account else None, "description": r.description if is_account else None,
            "historyenabled": bool(r.history_enabled), "ttl": r.ttl_ms if is_temp else None,
            "expirationtimestamp": r.expires_at_ms if is_temp else None, "lastupdated": r.last_updated_ms or 0,
            "url": url,
        })  # fmt: skip
    return out


class KvValueResponse(ResponseObject):
    """getKvStorageValue: ``kvresult`` with the value, or ``kverror`` with code 404 when the key is missing."""

    object_name = "kvresult"
    fields = (
        F("value", "string", "the value of the key"),
        F("code", "integer", "in kverror instead of kvresult: 404 when the storage has no such key"),
    )


class KvPairResponse(ResponseObject):
    """setKvStorageValue: the key and value written."""

    object_name = "kvresult"
    fields = (F("key", "string", "the key"), F("value", "string", "the value"))


class KvKeyResponse(ResponseObject):
    """deleteKvStorageKey: the key deleted."""

    object_name = "kvresult"
    fields = (F("key", "string", "the key"),)


class KvDataResponse(ResponseObject):
    """getKvStorageValues: key to value, missing keys left out."""

    object_name = "kvresult"
    fields = (F("items", "map", "the values by key (a missing key has no entry)"),)


class KvResultResponse(ResponseObject):
    """setKvStorageValues / deleteKvStorageKeys: key to whether the operation applied to it."""

    object_name = "kvresult"
    fields = (F("items", "map", "true or false by key: whether the key was written (or deleted)"),)


class KvKeysResponse(ResponseObject):
    """listKvStorageKeys: every key of the storage."""

    object_name = "kvresult"
    fields = (F("items", "list", "the keys"),)


class KvSuccessResponse(ResponseObject):
    """clearKvStorage: ``kvresult`` with success, or ``kverror`` with code 409 on a conflict."""

    object_name = "kvresult"
    fields = (
        F("success", "boolean", "true when the storage was cleared"),
        F("code", "integer", "in kverror instead of kvresult: 409 when the storage was changed meanwhile"),
    )


class KvHistoryRecordResponse(ResponseObject):
    object_name = "items"
    fields = (
        F("key", "string", "the key (none for a clear)"),
        F("value", "string", "the value set (none for a delete or a clear)"),
        F("operation", "string", "set, delete or clear"),
        F("timestamp", "long", "when, in Unix milliseconds"),
    )


class KvHistoryResponse(ResponseObject):
    """getKvStorageHistory / scrollKvStorageHistory (``KvHistoryResult.java``)."""

    object_name = "kvresult"
    fields = (
        F("total", "long", "the number of records matching the query"),
        F("page", "integer", "the page number (page mode)"),
        F("size", "integer", "the number of records in this response"),
        F("scrollid", "string", "the scroll ID to continue with (scroll mode)"),
        F("items", "list", "the history records", response=KvHistoryRecordResponse),
    )


def history_payload(result: dict[str, Any]) -> dict[str, Any]:
    """The store's history answer (the HTTP service's names) as the API names it."""
    out: dict[str, Any] = {"total": result["total"], "size": result["size"]}
    if "page" in result:
        out["page"] = result["page"]
    if "scrollId" in result:
        out["scrollid"] = result["scrollId"]
    out["items"] = [{"key": i["key"], "value": i["value"], "operation": i["operation"], "timestamp": i["timestamp"]}
                    for i in result["items"]]
    return out


__all__ = [
    "KvDataResponse", "KvHistoryResponse", "KvKeyResponse", "KvKeysResponse", "KvPairResponse", "KvResultResponse",
    "KvStorageResponse", "KvSuccessResponse", "KvValueResponse", "history_payload", "storage_payload",
]
