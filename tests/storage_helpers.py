"""Helpers for the volume and snapshot tests: the server's database (pool capacity, resource counts,
limits, injections, schedules), VM deployment on the sandbox, and error assertions."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from cs import CloudStack, CloudStackApiException
from sqlalchemy import DateTime, bindparam, create_engine, text

from servers import Server

GB = 1024**3
#: resourcetype of updateResourceLimit (Resource.ResourceType ordinals).
RESOURCE_TYPES = {"volume": 2, "snapshot": 3, "primary_storage": 10, "secondary_storage": 11}


def utcnow() -> datetime:
    """Naive UTC, as the server stores times."""
    return datetime.now(UTC).replace(tzinfo=None)


class Db:
    """Direct reads (and a few writes) on a running server's database."""

    def __init__(self, server: Server) -> None:
        self.engine = create_engine(server.db_url or f"sqlite:///{server.data_dir / 'overcast.db'}")

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as c:
            return c.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as c:
            return list(c.execute(text(sql), params))

    def execute(self, sql: str, **params: Any) -> None:
        with self.engine.begin() as c:
            c.execute(text(sql), params)

    def next_run(self, policy_uuid: str) -> datetime:
        stmt = text("SELECT next_run FROM snapshot_policy WHERE uuid = :u").columns(next_run=DateTime)
        with self.engine.connect() as c:
            return c.execute(stmt, {"u": policy_uuid}).scalar_one()  # type: ignore[no-any-return]

    def set_next_run(self, policy_uuid: str, when: datetime) -> None:
        """Make a snapshot policy due (what time passing would do)."""
        stmt = text("UPDATE snapshot_policy SET next_run = :t WHERE uuid = :u").bindparams(
            bindparam("t", type_=DateTime))
        with self.engine.begin() as c:
            c.execute(stmt, {"t": when, "u": policy_uuid})

    def pool_used(self, pool_uuid: str) -> int:
        return int(self.scalar("SELECT used_bytes FROM storage_pool WHERE uuid = :u", u=pool_uuid))

    def zone_pools(self, zone_uuid: str) -> dict[str, int]:
        """uuid -> used bytes of every pool of a zone."""
        return {r[0]: int(r[1]) for r in self.rows(
            "SELECT p.uuid, p.used_bytes FROM storage_pool p JOIN zone z ON z.id = p.zone_id WHERE z.uuid = :z", z=zone_uuid)}

    def count(self, account_uuid: str, rtype: str) -> int:
        value = self.scalar("SELECT rc.count FROM resource_count rc JOIN account a ON a.id = rc.account_id"
                            " WHERE a.uuid = :a AND rc.resource_type = :t", a=account_uuid, t=rtype)
        return int(value or 0)

    def counts(self, account_uuid: str) -> dict[str, int]:
        return {t: self.count(account_uuid, t)
                for t in ("volume", "primary_storage", "snapshot", "secondary_storage")}

    def set_limit(self, admin: CloudStack, tenant: Any, rtype: str, value: int) -> None:
        """updateResourceLimit for an account (storage limits in GiB)."""
        admin.updateResourceLimit(account=tenant.name, domainid=tenant.domain_id, resourcetype=RESOURCE_TYPES[rtype],
                                  max=value)

    def recounted(self, admin: CloudStack, tenant: Any) -> dict[str, int]:
        """The counts updateResourceCount computes from the rows (what the live counts must equal)."""
        rows = admin.updateResourceCount(domainid=tenant.domain_id, account=tenant.name)["resourcecount"]
        return {r["resourcetypename"]: int(r["resourcecount"]) for r in rows
                if r["resourcetypename"] in ("volume", "primary_storage", "snapshot", "secondary_storage")}

    def inject(self, admin: CloudStack, command: str, value: str, *, count: int | None = None,
               zone: str | None = None) -> None:
        """A simulator injection: configureSimulator when the server has it, else the row it writes."""
        params: dict[str, Any] = {"name": command, "value": value}
        if count is not None:
            params["count"] = count
        if zone is not None:
            params["zoneid"] = zone
        try:
            admin.configureSimulator(**params)
            return
        except CloudStackApiException as exc:
            if exc.error.get("errorcode") not in (401, 405, 432):
                raise
        zone_id = self.scalar("SELECT id FROM zone WHERE uuid = :z", z=zone) if zone else None
        self.execute("INSERT INTO simulator_mock (uuid, command, value, zone_id, count, hits, created)"
                     " VALUES (:u, :c, :v, :z, :n, 0, CURRENT_TIMESTAMP)",
                     u=f"mock-{time.monotonic_ns()}", c=command, v=value, z=zone_id, n=count)


def fails(call: Callable[..., Any], code: int, cs_code: int | None = None, contains: str | None = None,
          **params: Any) -> dict[str, Any]:
    """``call(**params)`` fails (at once or as a job) with ``code`` (and ``cs_code``, and text)."""
    with pytest.raises(CloudStackApiException) as info:
        call(**params)
    error = info.value.error
    assert isinstance(error, dict), error
    assert error.get("errorcode") == code, error
    if cs_code is not None:
        assert error.get("cserrorcode") == cs_code, error
    if contains is not None:
        assert contains in error.get("errortext", ""), error
    return error


def deploy(api: CloudStack, sandbox: Any, **params: Any) -> dict[str, Any]:
    args = {"zoneid": sandbox.advanced_zone, "templateid": sandbox.template, "serviceofferingid": sandbox.small}
    args.update(params)
    return api.deployVirtualMachine(**args)["virtualmachine"]  # type: ignore[no-any-return]


def root_volume(api: CloudStack, vm_id: str) -> dict[str, Any]:
    vols = api.listVolumes(virtualmachineid=vm_id, type="ROOT", listall=True)["volume"]
    assert len(vols) == 1
    return vols[0]  # type: ignore[no-any-return]


def events(api: CloudStack, event_type: str, **params: Any) -> list[dict[str, Any]]:
    return api.listEvents(type=event_type, **params).get("event", [])  # type: ignore[no-any-return]


def wait_for(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)
