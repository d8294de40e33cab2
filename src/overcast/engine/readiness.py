"""Guest readiness: a VM that runs is not yet a VM that has finished configuring itself.

The guest says so itself, in one of two ways, both leading here:

- it writes the key ``ready`` into its VM KV storage through the KV HTTP service (with the secret key
  the metadata service gave it), or through ``setKvStorageValue``;
- it sends ``POST /latest/ready`` (any body) to the metadata service from its own address.

The first report of a run sets ``ready_at`` and records a ``VM.READY`` event; later reports change
nothing. Readiness ends when the VM leaves Running for a new boot or none (``NOT_READY_STATES`` in
``engine.vms``). Jobs that deployed the VM with ``readytimeout`` are parked on :func:`ready_key` and
woken here, in the same transaction that records the report.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast.db.models import VirtualMachine, utcnow

if TYPE_CHECKING:
    from overcast.services import Services

logger = logging.getLogger(__name__)

#: The key of a VM storage whose writing means "ready".
READY_KEY = "ready"


def ready_key(vm_uuid: str) -> str:
    """What a job waiting for this VM's guest is parked on."""
    return f"vm-ready:{vm_uuid}"


def report_ready(s: Session, services: Services, vm_uuid: str, *, via: str) -> bool:
    """Record the guest's report (in the caller's transaction). False when the VM is not running: a
    report from a guest that isn't running (a stale write, a stopped VM) is not readiness."""
    # The row lock orders this against a deploy job parking on the VM: either the job sees the VM
    # ready, or its park is committed before this wakes it.
    vm = s.scalar(select(VirtualMachine).where(VirtualMachine.uuid == vm_uuid, VirtualMachine.removed.is_(None))
                  .with_for_update())
    if vm is None or vm.state != "Running":
        return False
    if vm.ready_at is None:
        vm.ready_at = utcnow()
        services.events.record(
            s, "VM.READY", f"Guest of VM {vm.uuid} reported ready ({via})", account_id=vm.account_id,
            domain_id=vm.domain_id, resource_type="VirtualMachine", resource_uuid=vm.uuid)
        logger.info("VM %s reported ready through %s", vm.uuid, via)
    services.jobs.resume(s, ready_key(vm.uuid))
    return True


def watch_kv_reports() -> None:
    """Hear of ``ready`` written into a VM storage (kv.store.watch): the guest's report."""
    from overcast.kv import store

    store.watch("VM", READY_KEY, _kv_report)


def _kv_report(services: Services, storage: Any, session: Session | None) -> None:
    """``ready`` was written into a VM storage (whose id is its VM's): in ``session`` when given (the
    API's transaction), else in a transaction of its own right after the write (the KV HTTP service
    writes on a plain connection)."""
    if session is not None:
        report_ready(session, services, storage.uuid, via="KV storage")
        return
    with services.db.writer.begin() as s:
        report_ready(s, services, storage.uuid, via="KV storage")
