"""A simulated guest that configures itself and reports ready, through the real guest-facing paths.

A simulator VM whose details (given at deploy, or by the bundle it came from) or whose template's
details carry ``simulator.guest.ready`` (seconds, a number) behaves, that long after each start, as a
guest running cloud-init would: it asks the metadata service for its user data and its KV storage
(the same ASGI application a real guest reaches over the network, called with the VM's address as the
peer and naming its NIC, since no simulated guest has a network stack of its own),
writes ``simulator.userdata.sha256`` (the SHA-256 of the user data it got) and then ``ready`` into its
VM storage through the KV HTTP service, with the secret key the metadata service handed it. Without KV items in its metadata it reports with
``POST /latest/ready`` instead.

It listens to ``VM.START`` on the event bus; a timer lost in a crash means that start's guest never
reports, as a real guest that crashed wouldn't.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import select

from overcast.db.models import Nic, Template, VirtualMachine

if TYPE_CHECKING:
    from overcast.events.bus import ActionEvent
    from overcast.services import Services

logger = logging.getLogger(__name__)

#: The detail that makes the simulated guest report ready, after that many seconds.
READY_DETAIL = "simulator.guest.ready"
#: The key it writes with the SHA-256 of the user data it fetched (so one can tell it really did).
USER_DATA_KEY = "simulator.userdata.sha256"


def subscribe(services: Services) -> None:
    services.bus.subscribe("VM.START", lambda event: on_start(services, event))


def _detail(raw: str | None) -> float | None:
    try:
        value = (json.loads(raw) if raw else {}).get(READY_DETAIL)
        return None if value is None else max(float(value), 0.0)
    except (ValueError, TypeError, AttributeError):
        return None


def on_start(services: Services, event: ActionEvent) -> None:
    if event.state != "Completed" or not event.resource_uuid:
        return
    with services.db.reader() as s:
        vm = s.scalar(select(VirtualMachine).where(VirtualMachine.uuid == event.resource_uuid))
        if vm is None or vm.hypervisor_type != "Simulator" or vm.state != "Running":
            return
        delay = _detail(vm.details)
        if delay is None:
            template = s.get(Template, vm.template_id)
            delay = _detail(template.details) if template is not None else None
        if delay is None:
            return
        nic = s.execute(select(Nic.id, Nic.ip_address).where(
            Nic.vm_id == vm.id, Nic.removed.is_(None), Nic.is_default.is_(True))).first()
    if nic is None or not nic.ip_address:
        logger.warning("Simulated guest of VM %s has no address: it can't reach its metadata", event.resource_uuid)
        return
    timer = threading.Timer(delay, run_guest, args=(services, event.resource_uuid, nic.ip_address, nic.id))
    timer.name, timer.daemon = f"simulated-guest-{event.resource_uuid[:8]}", True
    timer.start()


def run_guest(services: Services, vm_uuid: str, address: str, nic_id: int) -> None:
    try:
        asyncio.run(_guest(services, address, nic_id))
    except Exception:
        logger.exception("Simulated guest of VM %s failed to report ready", vm_uuid)


async def _guest(services: Services, address: str, nic_id: int) -> None:
    from overcast.metadata.service import NIC_SCOPE_KEY, MetadataApp

    app = MetadataApp(services)

    async def from_this_nic(scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Two networks' guests may hold one address behind one gateway address (isolated networks of
        # one CIDR): a real guest is on its own wire, this one names its NIC.
        await app({**scope, NIC_SCOPE_KEY: nic_id}, receive, send)

    transport = httpx.ASGITransport(app=from_this_nic, client=(address, 49152))
    async with httpx.AsyncClient(transport=transport, base_url="http://metadata.internal") as metadata:
        user_data = await metadata.get("/latest/user-data")
        fetched = user_data.content if user_data.status_code == 200 else b""
        items: dict[str, Any] = {}
        for name in ("kv-url", "kv-storage-id", "kv-secret-key"):
            answer = await metadata.get(f"/latest/meta-data/{name}")
            items[name] = answer.text if answer.status_code == 200 else None
        if not all(items.values()):
            answer = await metadata.post("/latest/ready")
            answer.raise_for_status()
            return
    base = str(items["kv-url"]).rstrip("/")
    headers = {"Secret-Key": str(items["kv-secret-key"]), "Content-Type": "text/plain"}
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as kv:
        for key, value in ((USER_DATA_KEY, hashlib.sha256(fetched).hexdigest()), ("ready", "true")):
            answer = await kv.put(f"{base}/set/{items['kv-storage-id']}/{key}", content=value, headers=headers)
            answer.raise_for_status()
