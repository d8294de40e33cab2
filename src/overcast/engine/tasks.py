"""Periodic engine tasks, and the context they run in (as the system user)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast.access.auth import _caller_row, make_caller
from overcast.access.caller import Caller
from overcast.db.models import Event, User, VirtualMachine, utcnow
from overcast.errors import CloudError

if TYPE_CHECKING:
    from overcast.services import Services

logger = logging.getLogger(__name__)

SYSTEM_USER_ID = 1


class SystemContext:
    """An engine context for background work: the system user, its own session, real checkpoints."""

    def __init__(self, services: Services, session: Session) -> None:
        self.services = services
        self.session = session
        row = _caller_row(session, User.id == SYSTEM_USER_ID)
        assert row is not None, "the system user is missing"
        self.caller: Caller | None = make_caller(*row)

    @property
    def me(self) -> Caller:
        assert self.caller is not None
        return self.caller

    def event(self, event_type: str, description: str, *, account_id: int | None = None,
              domain_id: int | None = None, resource_type: str | None = None,
              resource_uuid: str | None = None, **kwargs: Any) -> Event:
        return self.services.events.record(
            self.session, event_type, description, account_id=account_id or self.me.account_id,
            domain_id=domain_id or self.me.domain_id, user_id=self.me.user_id, resource_type=resource_type,
            resource_uuid=resource_uuid, **kwargs)

    def checkpoint(self) -> None:
        self.session.commit()

    def setting(self, name: str, **scope: Any) -> Any:
        return self.services.settings.get(name, **scope)


def expunge_destroyed_vms(services: Services) -> int:
    """Expunge VMs destroyed longer than ``expunge.delay`` ago (per account), and VMs in Error."""
    from overcast.engine.vms import VmOps

    done = 0
    global_delay = int(services.settings.get("expunge.delay"))
    with services.db.reader() as s:
        candidates = list(s.execute(select(VirtualMachine.id, VirtualMachine.account_id, VirtualMachine.state,
                                           VirtualMachine.state_changed).where(
            VirtualMachine.removed.is_(None), VirtualMachine.state.in_(("Destroyed", "Error", "Expunging")))))
    now = utcnow()
    for vm_id, account_id, state, changed in candidates:
        delay = int(services.settings.get("expunge.delay", scope="account", scope_id=account_id) or global_delay)
        if state == "Destroyed" and changed > now - timedelta(seconds=delay):
            continue
        with services.db.writer() as session:
            ctx = SystemContext(services, session)
            try:
                vm = session.get(VirtualMachine, vm_id)
                if vm is None or vm.removed is not None:
                    continue
                VmOps(ctx).expunge(vm)
                session.commit()
                done += 1
            except CloudError as exc:
                session.rollback()
                logger.warning("Expunging VM %s failed: %s", vm_id, exc.message)
    return done


def register_tasks(services: Services) -> None:
    """The engine's periodic tasks. Intervals are read from settings at every run."""
    sched = services.scheduler
    from overcast.engine.template_downloads import TemplateDownloads

    if services.downloads is None:
        services.downloads = TemplateDownloads(services)
        services.downloads.start(int(services.settings.get("template.download.workers")))
    sched.add("vm.expunge", lambda: float(services.settings.get("expunge.interval")),
              lambda: expunge_destroyed_vms(services))
    from overcast.engine.snapshots import take_scheduled_snapshots
    from overcast.engine.volumes import expunge_destroyed_volumes

    sched.add("snapshot.policies", lambda: float(services.settings.get("snapshot.poll.interval")),
              lambda: take_scheduled_snapshots(services))
    sched.add("volume.expunge", lambda: float(services.settings.get("storage.cleanup.interval")),
              lambda: expunge_destroyed_volumes(services))
    from overcast.engine.hosts import check_hosts

    sched.add("host.ping", lambda: float(services.settings.get("ping.interval")),
              lambda: check_hosts(services))
    from overcast.kv.registry import register_tasks as register_kv_tasks

    register_kv_tasks(services)
