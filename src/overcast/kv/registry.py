"""The control plane of the KV storages: creating them, who may reach them, and their lifecycle.

Three kinds (spec 3.1): ``ACCOUNT`` storages (any number per account, made by
``createAccountKvStorage``), one ``VM`` storage per VM (its id is the VM's UUID, made when the VM is
created or started) and ``TEMP`` storages with a TTL in milliseconds. Unlike the original, a TEMP
storage records the account that created it, and API calls on it need that account or an admin over it.

The VM code never calls this module. The lifecycle follows the action events on the bus (registered by
:func:`subscribe` when the API app starts): ``VM.CREATE`` and ``VM.START`` create the VM's storage if it
has none (never bringing a deleted one back), ``VM.EXPUNGE`` deletes it, ``ACCOUNT.DELETE`` deletes every
storage of the account. Events are delivered in-process after the commit, so a crash in between can
lose one: :func:`reconcile` (a periodic task) repairs what such a loss leaves behind. Deletion is soft
(``deleted``, listed with ``deleted=true``) until :func:`purge` removes the storage with its keys,
history and scrolls, ``storage.kv.purge.delay`` seconds later.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from overcast.access.acl import AccessChecker
from overcast.access.caller import Caller
from overcast.api.declare import Access
from overcast.db.models import Account, KvEntry, KvHistory, KvScroll, KvStorage, VirtualMachine, utcnow
from overcast.db.retry import retrying
from overcast.errors import InvalidParameterValue, PermissionDenied
from overcast.events.types import COMPLETED
from overcast.kv import store

if TYPE_CHECKING:
    from overcast.events.bus import ActionEvent
    from overcast.services import Services

logger = logging.getLogger(__name__)

ACCOUNT, VM, TEMP = "ACCOUNT", "VM", "TEMP"
NOT_EXIST = "The KV storage does not exist"
VM_HISTORY_SETTING = "storage.kv.vm.history.enabled"
#: Storages soft-deleted per transaction by the reconcile task.
RECONCILE_BATCH = 100
#: Keys (or history records) of a purged storage removed per transaction.
PURGE_BATCH = 2000
#: Seconds (at most; never more than the reconcile interval) a new VM is left to its VM.CREATE event
#: before the reconcile task makes its storage.
RECONCILE_GRACE = 60.0


# -- creating ------------------------------------------------------------------------------------


def _storage(kind: str, *, account: Account, uuid: str | None = None, **values: Any) -> KvStorage:
    return KvStorage(uuid=uuid or str(uuidlib.uuid4()), kind=kind, account_id=account.id, domain_id=account.domain_id,
                     secret_key=store.new_secret(), deleted=False, last_updated_ms=0, **values)


def create_account_storage(session: Session, account: Account, name: str | None, description: str | None,
                           history_enabled: bool) -> KvStorage:
    """A new ACCOUNT storage of ``account`` (which must not be removed)."""
    if account.removed is not None:
        raise InvalidParameterValue("Unable to find an account with the specified id")
    if name is None or not name.strip():
        raise InvalidParameterValue("Unspecified name (parameter name)")
    row = _storage(ACCOUNT, account=account, name=name, description=description,
                   history_enabled=bool(history_enabled))
    session.add(row)
    session.flush()
    return row


def create_temp_storage(session: Session, owner: Account, ttl_ms: int | None) -> KvStorage:
    """A new TEMP storage owned by ``owner``, gone ``ttl_ms`` milliseconds from now. Never has history."""
    if ttl_ms is None:
        raise InvalidParameterValue("Unspecified TTL (parameter ttl)")
    if ttl_ms <= 0:
        raise InvalidParameterValue("Invalid TTL (parameter ttl): it must be positive")
    row = _storage(TEMP, account=owner, history_enabled=False, ttl_ms=ttl_ms, expires_at_ms=store.now_ms() + ttl_ms)
    session.add(row)
    session.flush()
    return row


def ensure_vm_storage(session: Session, vm: VirtualMachine, *, history_enabled: bool) -> KvStorage:
    """The VM's storage, created when it has none. A deleted one stays deleted (spec 3.2: the original's
    get-or-create does not resurrect), so this returns it as it is."""
    existing = session.scalar(select(KvStorage).where(KvStorage.uuid == vm.uuid))
    if existing is not None:
        return existing
    account = session.get(Account, vm.account_id)
    assert account is not None
    row = _storage(VM, account=account, uuid=vm.uuid, vm_id=vm.id, history_enabled=bool(history_enabled))
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # another node (the reconcile task, a second event) made it first
        found = session.scalar(select(KvStorage).where(KvStorage.uuid == vm.uuid))
        assert found is not None
        return found
    return row


def regenerate_secret(session: Session, storage: KvStorage) -> KvStorage:
    """A new secret key, in force for every KV node as soon as this commits (they read it per request)."""
    storage.secret_key = store.new_secret()
    storage.last_updated_ms = store.now_ms()
    session.flush()
    return storage


# -- who may reach a storage ---------------------------------------------------------------------


def check_access(session: Session, caller: Caller, storage: KvStorage) -> None:
    """Spec 2.3, with an owner check on TEMP storages (the original had none): a VM storage needs its VM
    (not expunged) and the right to operate on it; an ACCOUNT storage its account; a TEMP storage the
    account that created it or an admin over that account. A storage whose VM or account is gone does
    not exist; a refusal names only the storage id the caller gave."""
    acl = AccessChecker(session)
    try:
        if storage.kind == VM:
            vm = session.scalar(select(VirtualMachine).where(VirtualMachine.uuid == storage.uuid,
                                                             VirtualMachine.removed.is_(None)))
            if vm is None:
                raise InvalidParameterValue(NOT_EXIST)
            acl.check(caller, vm, Access.OPERATE)
        elif storage.kind == ACCOUNT:
            account = session.get(Account, storage.account_id) if storage.account_id is not None else None
            if account is None or account.removed is not None:
                raise InvalidParameterValue(NOT_EXIST)
            acl.check_account(caller, account, Access.OPERATE)
        elif storage.account_id is not None:
            acl.check_owned(caller, storage.account_id, Access.OPERATE)
        elif not caller.is_root_admin:
            raise PermissionDenied("no owner")
    except PermissionDenied:
        raise PermissionDenied(
            f"Account {caller.account_name} does not have permission to operate on KV storage id={storage.uuid}",
            uuids=[(storage.uuid, "storageId")]) from None


def find_storage(session: Session, caller: Caller, storage_id: str | None) -> KvStorage:
    """A live storage (not deleted, TEMP not expired at this instant) the caller may operate on."""
    if storage_id is None or not storage_id.strip():
        raise InvalidParameterValue("Invalid storage id (parameter storageid)")
    storage = store.find_live(session, storage_id.strip())
    if storage is None:
        raise InvalidParameterValue(NOT_EXIST)
    check_access(session, caller, storage)
    return storage


# -- the lifecycle, driven by action events ------------------------------------------------------


def _live_vm(session: Session, vm_uuid: str) -> VirtualMachine | None:
    return session.scalar(select(VirtualMachine).join(Account, Account.id == VirtualMachine.account_id).where(
        VirtualMachine.uuid == vm_uuid, VirtualMachine.removed.is_(None), Account.removed.is_(None)))


def soft_delete_account_storages(session: Session, account_id: int) -> int:
    """Delete every live storage of an account: its ACCOUNT and TEMP storages and those of the VMs it owns
    now (a VM moved to another account by assignVirtualMachine takes its storage along)."""
    vm_uuids = select(VirtualMachine.uuid).where(VirtualMachine.account_id == account_id)
    rows = list(session.scalars(select(KvStorage).where(KvStorage.deleted.is_(False), or_(
        and_(KvStorage.kind != VM, KvStorage.account_id == account_id),
        and_(KvStorage.kind == VM, KvStorage.uuid.in_(vm_uuids))))))
    for row in rows:
        store.soft_delete(session, row)
    return len(rows)


def handle_event(services: Services, event: ActionEvent) -> None:
    """Act on one completed, successful VM.CREATE / VM.START / VM.EXPUNGE / ACCOUNT.DELETE event."""
    if (event.state != COMPLETED or event.level == "ERROR" or event.description.startswith("Error")
            or not event.resource_uuid):
        return
    kind, target = event.event_type, event.resource_uuid

    def work() -> None:
        with services.db.writer() as session:
            if kind in ("VM.CREATE", "VM.START"):
                vm = _live_vm(session, target)
                if vm is not None:
                    ensure_vm_storage(session, vm, history_enabled=bool(services.settings.get(VM_HISTORY_SETTING)))
            elif kind == "VM.EXPUNGE":
                storage = session.scalar(select(KvStorage).where(KvStorage.uuid == target, KvStorage.kind == VM,
                                                                 KvStorage.deleted.is_(False)))
                if storage is not None:
                    store.soft_delete(session, storage)
            elif kind == "ACCOUNT.DELETE":
                account_id = session.scalar(select(Account.id).where(Account.uuid == target))
                if account_id is not None:
                    soft_delete_account_storages(session, account_id)
            session.commit()

    retrying(work, what=f"KV storage lifecycle on {kind}")


EVENTS = ("VM.CREATE", "VM.START", "VM.EXPUNGE", "ACCOUNT.DELETE")


def subscribe(services: Services) -> None:
    """Follow the VM and account lifecycle on this process's event bus (once per Services)."""
    if getattr(services, "_kv_subscribed", False):
        return

    def on_event(event: ActionEvent) -> None:
        handle_event(services, event)

    for pattern in EVENTS:
        services.bus.subscribe(pattern, on_event)
    services._kv_subscribed = True  # type: ignore[attr-defined]


# -- periodic repair and purge -------------------------------------------------------------------


def reconcile(services: Services) -> dict[str, int]:
    """Repair what a lost event leaves: live VMs without a storage get one; live storages of expunged
    VMs and of removed accounts are deleted. Returns how many of each."""
    history = bool(services.settings.get(VM_HISTORY_SETTING))
    # A VM made moments ago may have its event still on the way: leave it to the event for a while.
    grace = min(float(services.settings.get("storage.kv.reconcile.interval")), RECONCILE_GRACE)
    made_before = utcnow() - timedelta(seconds=grace)
    with services.db.reader() as s:
        missing = list(s.scalars(
            select(VirtualMachine.id).join(Account, Account.id == VirtualMachine.account_id)
            .outerjoin(KvStorage, KvStorage.uuid == VirtualMachine.uuid)
            .where(VirtualMachine.removed.is_(None), Account.removed.is_(None), KvStorage.id.is_(None),
                   VirtualMachine.created <= made_before)))
        # A VM storage goes with its VM (and the VM's account now); the others with their account.
        vm = VirtualMachine.__table__.alias("vm")
        vm_owner = Account.__table__.alias("vm_owner")
        orphaned = list(s.scalars(
            select(KvStorage.id)
            .outerjoin(Account, Account.id == KvStorage.account_id)
            .outerjoin(vm, and_(KvStorage.kind == VM, vm.c.uuid == KvStorage.uuid))
            .outerjoin(vm_owner, vm_owner.c.id == vm.c.account_id)
            .where(KvStorage.deleted.is_(False), or_(
                and_(KvStorage.kind != VM, Account.removed.is_not(None)),
                and_(KvStorage.kind == VM, or_(vm.c.id.is_(None), vm.c.removed.is_not(None),
                                               vm_owner.c.removed.is_not(None)))))))
    created = 0
    for vm_id in missing:
        def make(vm_id: int = vm_id) -> bool:
            with services.db.writer() as session:
                vm = session.get(VirtualMachine, vm_id)
                if vm is None or vm.removed is not None:
                    return False
                existed = session.scalar(select(KvStorage.id).where(KvStorage.uuid == vm.uuid)) is not None
                ensure_vm_storage(session, vm, history_enabled=history)
                session.commit()
                return not existed

        created += retrying(make, what="KV storage reconcile")
    for i in range(0, len(orphaned), RECONCILE_BATCH):
        chunk = orphaned[i:i + RECONCILE_BATCH]

        def drop(chunk: list[int] = chunk) -> None:
            with services.db.writer() as session:
                for row in session.scalars(select(KvStorage).where(KvStorage.id.in_(chunk),
                                                                   KvStorage.deleted.is_(False))):
                    store.soft_delete(session, row)
                session.commit()

        retrying(drop, what="KV storage reconcile")
    if created or orphaned:
        logger.info("KV reconcile: %d VM storages created, %d storages of expunged VMs or removed accounts"
                    " deleted", created, len(orphaned))
    return {"created": created, "deleted": len(orphaned)}


def _drain(services: Services, storage_id: int) -> None:
    """Remove a dead storage's keys and history a batch per transaction, so that a storage of millions of
    keys never holds the write lock (SQLite's is the whole database's) for long. Nobody can see them."""
    for column, key_column in ((KvEntry.storage_id, KvEntry.key), (KvHistory.storage_id, KvHistory.id)):
        table = column.class_

        def batch(column: Any = column, key_column: Any = key_column, table: Any = table) -> int:
            with services.db.writer() as session:
                keys = list(session.scalars(select(key_column).where(column == storage_id).limit(PURGE_BATCH)))
                if keys:
                    session.execute(delete(table).where(column == storage_id, key_column.in_(keys)))
                session.commit()
                return len(keys)

        while retrying(batch, what="KV storage purge") == PURGE_BATCH:
            pass


def purge(services: Services) -> int:
    """Remove, with their keys, history and scrolls, the storages deleted and the TEMP storages expired
    at least ``storage.kv.purge.delay`` seconds ago; and every expired scroll. Returns how many storages."""
    delay_ms = int(services.settings.get("storage.kv.purge.delay")) * 1000
    cutoff = store.now_ms() - delay_ms
    with services.db.reader() as s:
        doomed = list(s.scalars(select(KvStorage.id).where(or_(
            and_(KvStorage.deleted.is_(True), KvStorage.last_updated_ms <= cutoff),
            and_(KvStorage.kind == TEMP, KvStorage.expires_at_ms <= cutoff)))))
    for storage_id in doomed:
        _drain(services, storage_id)

        def remove(storage_id: int = storage_id) -> None:
            with services.db.writer() as session:
                session.execute(delete(KvScroll).where(KvScroll.storage_id == storage_id))
                session.execute(delete(KvHistory).where(KvHistory.storage_id == storage_id))
                session.execute(delete(KvEntry).where(KvEntry.storage_id == storage_id))
                session.execute(delete(KvStorage).where(KvStorage.id == storage_id))
                session.commit()

        retrying(remove, what="KV storage purge")

    def scrolls() -> int:
        with services.db.writer() as session:
            n = store.expired_scrolls(session)
            session.commit()
            return n

    retrying(scrolls, what="KV scroll purge")
    if doomed:
        logger.info("KV purge: %d storages removed", len(doomed))
    return len(doomed)


def register_tasks(services: Services) -> None:
    """The KV tasks on the scheduler (one node at a time); intervals read from settings at every run."""
    sched = services.scheduler
    sched.add("kv.reconcile", lambda: float(services.settings.get("storage.kv.reconcile.interval")),
              lambda: reconcile(services))
    sched.add("kv.purge", lambda: float(services.settings.get("storage.kv.purge.interval")),
              lambda: purge(services))


__all__ = [
    "ACCOUNT", "NOT_EXIST", "TEMP", "VM", "check_access", "create_account_storage", "create_temp_storage",
    "ensure_vm_storage", "find_storage", "handle_event", "purge", "reconcile", "regenerate_secret",
    "register_tasks", "soft_delete_account_storages", "subscribe",
]
