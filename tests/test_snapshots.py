"""Volume snapshots, snapshot policies (and the task that runs them) and VM snapshots."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from cs import CloudStack

from overcast.engine.snapshots import next_run, parse_schedule, resolve_timezone
from storage_helpers import GB, Db, deploy, events, fails, utcnow, wait_for


@pytest.fixture(scope="module")
def db(sandbox_server: Any) -> Iterator[Db]:
    handle = Db(sandbox_server)
    yield handle
    handle.engine.dispose()


def data_volume(api: CloudStack, sandbox: Any, vm: dict[str, Any], size: int = 2) -> dict[str, Any]:
    vol = api.createVolume(zoneid=sandbox.advanced_zone, diskofferingid=sandbox.disk_custom, size=size)["volume"]
    return api.attachVolume(id=vol["id"], virtualmachineid=vm["id"])["volume"]  # type: ignore[no-any-return]


# -- schedules (no server) ----------------------------------------------------------------------


def test_next_run_follows_cloudstack_schedules() -> None:
    at = datetime(2024, 3, 30, 23, 50)  # a Saturday, UTC; Paris moves to summer time at 02:00 next night
    assert next_run("HOURLY", "15", "UTC", at) == datetime(2024, 3, 31, 0, 15)
    assert next_run("HOURLY", "55", "UTC", at) == datetime(2024, 3, 30, 23, 55)
    assert next_run("HOURLY", "15", "Asia/Kolkata", at) == datetime(2024, 3, 31, 0, 45)  # +05:30
    assert next_run("DAILY", "30:2", "UTC", at) == datetime(2024, 3, 31, 2, 30)
    assert next_run("DAILY", "0:9", "Europe/Paris", at) == datetime(2024, 3, 31, 7, 0)  # CEST already
    assert next_run("DAILY", "0:9", "America/New_York", at) == datetime(2024, 3, 31, 13, 0)
    assert next_run("WEEKLY", "0:9:1", "UTC", at) == datetime(2024, 3, 31, 9, 0)  # 1 = Sunday
    assert next_run("WEEKLY", "0:9:7", "UTC", at) == datetime(2024, 4, 6, 9, 0)  # 7 = Saturday, passed today
    assert next_run("MONTHLY", "0:0:28", "UTC", at) == datetime(2024, 4, 28, 0, 0)
    assert next_run("MONTHLY", "0:0:1", "Europe/Paris", at) == datetime(2024, 3, 31, 22, 0)
    # strictly after: a run exactly at the scheduled minute schedules the following one
    assert next_run("HOURLY", "0", "UTC", datetime(2024, 1, 1, 10, 0)) == datetime(2024, 1, 1, 11, 0)
    assert next_run("MONTHLY", "0:0:1", "UTC", datetime(2024, 12, 5)) == datetime(2025, 1, 1)
    # extra fields are ignored, as CloudStack's parser does
    assert parse_schedule("HOURLY", "5:10:3") == (5, 0, 0)
    for interval, schedule in (("HOURLY", ""), ("HOURLY", "x"), ("HOURLY", "60"), ("DAILY", "30"),
                               ("DAILY", "0:24"), ("WEEKLY", "0:1"), ("WEEKLY", "0:1:8"), ("MONTHLY", "0:1:29"),
                               ("MONTHLY", "0:1:0")):
        with pytest.raises(ValueError):
            parse_schedule(interval, schedule)
    assert resolve_timezone("Europe/Paris") == "Europe/Paris"
    assert resolve_timezone("GMT+5") == "GMT+05:00"
    assert next_run("HOURLY", "0", "GMT+05:30", datetime(2024, 1, 1, 10, 0)) == datetime(2024, 1, 1, 10, 30)
    assert resolve_timezone("Not/AZone") == "GMT"  # Java's TimeZone.getTimeZone falls back to GMT


# -- volume snapshots ---------------------------------------------------------------------------


def test_volume_snapshot_lifecycle(sandbox: Any, sandbox_admin: CloudStack, make_sandbox_tenant: Any, db: Db) -> None:
    tenant = make_sandbox_tenant()
    api = tenant.api
    vm = deploy(api, sandbox)
    vol = data_volume(api, sandbox, vm)
    before, pools = db.counts(tenant.id), db.zone_pools(sandbox.advanced_zone)

    snap = api.createSnapshot(volumeid=vol["id"], name="first", tags=[{"key": "env", "value": "test"}])
    snap = snap["snapshot"]
    assert snap["state"] == "BackedUp" and snap["snapshottype"] == "MANUAL" and snap["intervaltype"] == "MANUAL"
    assert snap["name"] == "first" and snap["volumeid"] == vol["id"] and snap["volumetype"] == "DATADISK"
    assert snap["physicalsize"] == 2 * GB and snap["revertable"] is True
    assert snap["tags"][0]["key"] == "env"
    assert db.counts(tenant.id)["snapshot"] == before["snapshot"] + 1
    assert db.counts(tenant.id)["secondary_storage"] == before["secondary_storage"] + 2 * GB
    auto = api.createSnapshot(volumeid=vol["id"])["snapshot"]
    assert auto["name"].startswith(f"{vm['name']}_{vol['name']}_")  # CloudStack's default name
    listed = api.listSnapshots(volumeid=vol["id"])
    assert listed["count"] == 2
    assert api.listSnapshots(tags=[{"key": "env", "value": "test"}])["count"] == 1
    assert api.listSnapshots(snapshottype="MANUAL", volumeid=vol["id"])["count"] == 2
    assert api.listSnapshots(snapshottype="RECURRING", volumeid=vol["id"]).get("count", 0) == 0

    # a volume from the snapshot is created on primary storage at once
    copy = api.createVolume(snapshotid=snap["id"], name="from-snap")["volume"]
    assert copy["state"] == "Ready" and copy["size"] == 2 * GB and copy["zoneid"] == sandbox.advanced_zone
    placed = sandbox_admin.listVolumes(id=copy["id"], listall=True)["volume"][0]
    assert db.pool_used(placed["storageid"]) == pools[placed["storageid"]] + 2 * GB
    assert db.counts(tenant.id)["volume"] == before["volume"] + 1
    api.deleteVolume(id=copy["id"])

    # revert: only with the VM stopped
    fails(api.revertSnapshot, 431, 4350, "shutdown state", id=snap["id"])
    api.stopVirtualMachine(id=vm["id"])
    reverted = api.revertSnapshot(id=snap["id"])["snapshot"]
    assert reverted["id"] == snap["id"] and reverted["volumestate"] == "Ready"
    assert events(api, "SNAPSHOT.REVERT")

    for s in (snap, auto):
        assert api.deleteSnapshot(id=s["id"])["success"] is True
    assert api.listSnapshots(volumeid=vol["id"]).get("count", 0) == 0
    assert db.counts(tenant.id) == before and db.zone_pools(sandbox.advanced_zone) == pools
    assert db.recounted(sandbox_admin, tenant) == before
    assert len(events(api, "SNAPSHOT.CREATE")) >= 2 and len(events(api, "SNAPSHOT.DELETE")) >= 2


def test_snapshot_bad_input_and_failures(sandbox: Any, sandbox_admin: CloudStack, make_sandbox_tenant: Any,
                                         db: Db) -> None:
    tenant = make_sandbox_tenant()
    api = tenant.api
    vm = deploy(api, sandbox)
    fails(api.createSnapshot, 431, 9999, "missing parameter volumeid")
    allocated = api.createVolume(zoneid=sandbox.advanced_zone, diskofferingid=sandbox.disk_small)["volume"]
    fails(api.createSnapshot, 431, 4350, "not in Ready state but Allocated", volumeid=allocated["id"])
    fails(api.createVolume, 431, 9999, "snapshotid", snapshotid=allocated["id"])
    vol = data_volume(api, sandbox, vm)
    fails(api.createSnapshot, 431, 4350, "zoneids", volumeid=vol["id"], zoneids=sandbox.basic_zone)
    before = db.counts(tenant.id)
    db.inject(sandbox_admin, "CreateObjectCommand", "result:fail", count=1, zone=sandbox.advanced_zone)
    fails(api.createSnapshot, 534, 4380, volumeid=vol["id"])
    assert api.listSnapshots(volumeid=vol["id"]).get("count", 0) == 0
    assert db.counts(tenant.id) == before and db.recounted(sandbox_admin, tenant) == before
    assert api.listVolumes(id=vol["id"])["volume"][0]["state"] == "Ready"
    snap = api.createSnapshot(volumeid=vol["id"])["snapshot"]
    fails(api.createVolume, 431, 4350, "snapshot other than ROOT", snapshotid=snap["id"],
          diskofferingid=sandbox.disk_small)
    fails(api.listSnapshots, 431, 4350, "intervaltype", intervaltype="YEARLY")


def test_snapshots_are_private(sandbox: Any, make_sandbox_tenant: Any) -> None:
    alice, bob = make_sandbox_tenant(), make_sandbox_tenant()
    vm = deploy(alice.api, sandbox)
    vol = data_volume(alice.api, sandbox, vm)
    snap = alice.api.createSnapshot(volumeid=vol["id"])["snapshot"]
    assert bob.api.listSnapshots(listall=True).get("count", 0) == 0
    assert bob.api.listSnapshots(id=snap["id"]).get("count", 0) == 0
    fails(bob.api.deleteSnapshot, 531, 4365, id=snap["id"])
    fails(bob.api.revertSnapshot, 531, 4365, id=snap["id"])
    fails(bob.api.createVolume, 531, 4365, snapshotid=snap["id"])
    fails(bob.api.createSnapshot, 531, 4365, volumeid=vol["id"])
    fails(bob.api.createSnapshotPolicy, 531, 4365, volumeid=vol["id"], intervaltype="DAILY", schedule="0:1",
          timezone="UTC", maxsnaps=1)
    policy = alice.api.createSnapshotPolicy(volumeid=vol["id"], intervaltype="DAILY", schedule="0:1",
                                            timezone="UTC", maxsnaps=1)["snapshotpolicy"]
    assert bob.api.listSnapshotPolicies(listall=True).get("count", 0) == 0
    fails(bob.api.deleteSnapshotPolicies, 531, 4365, id=policy["id"])
    fails(bob.api.listSnapshotPolicies, 531, 4365, volumeid=vol["id"])


# -- snapshot policies --------------------------------------------------------------------------


def test_snapshot_policies(sandbox: Any, sandbox_admin: CloudStack, make_sandbox_tenant: Any, db: Db) -> None:
    tenant = make_sandbox_tenant()
    api = tenant.api
    vm = deploy(api, sandbox)
    vol = data_volume(api, sandbox, vm)
    create = api.createSnapshotPolicy
    base = {"volumeid": vol["id"], "timezone": "Europe/Paris", "maxsnaps": 3}
    fails(create, 431, 4350, "Unsupported interval type", intervaltype="YEARLY", schedule="0", **base)
    fails(create, 431, 4350, "Invalid schedule: 61 for interval type: HOURLY", intervaltype="HOURLY", schedule="61",
          **base)
    fails(create, 431, 4350, "Invalid schedule", intervaltype="WEEKLY", schedule="0:5", **base)
    fails(create, 431, 4350, "Invalid schedule", intervaltype="MONTHLY", schedule="0:5:30", **base)
    fails(create, 431, 4350, "maxSnaps should be greater than 0", intervaltype="DAILY", schedule="0:5",
          **{**base, "maxsnaps": 0})
    fails(create, 431, 4350, "maxSnaps exceeds limit: 8 for interval type: DAILY", intervaltype="DAILY",
          schedule="0:5", **{**base, "maxsnaps": 9})
    fails(create, 431, 9999, "missing parameter timezone", volumeid=vol["id"], intervaltype="DAILY",
          schedule="0:5", maxsnaps=1)

    daily = create(intervaltype="daily", schedule="30:2", **base)["snapshotpolicy"]
    assert daily["intervaltype"] == 1 and daily["schedule"] == "30:2" and daily["maxsnaps"] == 3
    assert daily["timezone"] == "Europe/Paris" and daily["volumeid"] == vol["id"] and "fordisplay" not in daily
    stored = db.next_run(daily["id"])
    assert stored == next_run("DAILY", "30:2", "Europe/Paris", utcnow())
    # one policy per interval type and volume: creating again replaces its schedule
    again = create(intervaltype="DAILY", schedule="0:4", **base)["snapshotpolicy"]
    assert again["id"] == daily["id"] and again["schedule"] == "0:4"
    weekly = create(intervaltype="WEEKLY", schedule="0:4:2", volumeid=vol["id"], timezone="Nowhere/Else",
                    maxsnaps=2)["snapshotpolicy"]
    assert weekly["timezone"] == "GMT" and weekly["intervaltype"] == 2
    assert api.listSnapshotPolicies(volumeid=vol["id"])["count"] == 2

    hidden = sandbox_admin.updateSnapshotPolicy(id=weekly["id"], fordisplay=False)["snapshotpolicy"]
    assert hidden["fordisplay"] is False
    assert api.listSnapshotPolicies(volumeid=vol["id"])["count"] == 1  # users see displayed policies only
    assert sandbox_admin.listSnapshotPolicies(volumeid=vol["id"])["count"] == 2

    fails(api.deleteSnapshotPolicies, 431, 4350, "No policy id")
    assert api.deleteSnapshotPolicies(ids=f"{daily['id']},{weekly['id']}")["success"] is True
    assert sandbox_admin.listSnapshotPolicies(volumeid=vol["id"]).get("count", 0) == 0
    for kind in ("SNAPSHOTPOLICY.CREATE", "SNAPSHOTPOLICY.DELETE"):
        assert events(api, kind), kind
    assert events(sandbox_admin, "SNAPSHOTPOLICY.UPDATE", listall=True)

    # deleting the volume removes its policies
    policy = create(intervaltype="HOURLY", schedule="5", **base)["snapshotpolicy"]
    api.detachVolume(id=vol["id"])
    api.deleteVolume(id=vol["id"])
    assert sandbox_admin.listSnapshotPolicies(id=policy["id"], listall=True).get("count", 0) == 0


def test_scheduled_snapshots_run_and_keep_maxsnaps(sandbox: Any, sandbox_admin: CloudStack,
                                                   make_sandbox_tenant: Any, db: Db) -> None:
    tenant = make_sandbox_tenant()
    api = tenant.api
    vm = deploy(api, sandbox)
    vol = data_volume(api, sandbox, vm)
    policy = api.createSnapshotPolicy(volumeid=vol["id"], intervaltype="HOURLY", schedule="7", timezone="UTC",
                                      maxsnaps=2)["snapshotpolicy"]
    before = db.counts(tenant.id)

    def recurring() -> list[dict[str, Any]]:
        return api.listSnapshots(volumeid=vol["id"], snapshottype="RECURRING").get("snapshot", [])

    def fire() -> None:
        db.set_next_run(policy["id"], utcnow() - timedelta(minutes=1))

    sandbox_admin.updateConfiguration(name="snapshot.poll.interval", value="1")
    try:
        seen: list[str] = []
        def settled(expected: int) -> bool:  # one listing: a second one could see a newer state
            listed = {s["id"] for s in recurring()}
            return len(listed) == expected and bool(listed - set(seen))

        for expected in (1, 2, 2):
            fire()
            wait_for(lambda: settled(expected))
            seen.extend(s["id"] for s in recurring() if s["id"] not in seen)
    finally:
        sandbox_admin.updateConfiguration(name="snapshot.poll.interval", value="30")
    snaps = recurring()
    assert len(snaps) == 2 and seen[0] not in {s["id"] for s in snaps}  # the oldest went
    assert {s["snapshottype"] for s in snaps} == {"HOURLY"} and {s["intervaltype"] for s in snaps} == {"HOURLY"}
    assert api.listSnapshots(intervaltype="HOURLY", volumeid=vol["id"])["count"] == 2
    # the next run is the next hh:07 (UTC), in the future
    stored = db.next_run(policy["id"])
    assert stored.minute == 7 and stored > utcnow() and stored - utcnow() <= timedelta(hours=1)
    assert db.counts(tenant.id)["snapshot"] == before["snapshot"] + 2
    assert db.counts(tenant.id)["secondary_storage"] == before["secondary_storage"] + 4 * GB
    assert db.recounted(sandbox_admin, tenant) == db.counts(tenant.id)
    assert len(events(api, "SNAPSHOT.CREATE")) >= 3 and events(api, "SNAPSHOT.DELETE")


# -- VM snapshots -------------------------------------------------------------------------------


def test_vm_snapshots(sandbox: Any, sandbox_admin: CloudStack, make_sandbox_tenant: Any) -> None:
    tenant = make_sandbox_tenant()
    api = tenant.api
    vm = deploy(api, sandbox)
    first = api.createVMSnapshot(virtualmachineid=vm["id"], name="first", description="disk only")["vmsnapshot"]
    assert first["state"] == "Ready" and first["type"] == "Disk" and first["current"] is True
    assert first["displayname"] == "first" and re.match(r"^i-\d+-\d+-VM_VS_\d{14}$", first["name"])
    assert first["virtualmachineid"] == vm["id"] and "parent" not in first and first["hypervisor"] == "Simulator"
    fails(api.createVMSnapshot, 431, 4350, "already exists", virtualmachineid=vm["id"], name="first")
    second = api.createVMSnapshot(virtualmachineid=vm["id"], name="second", snapshotmemory=True)["vmsnapshot"]
    assert second["type"] == "DiskAndMemory" and second["parent"] == first["id"] and second["parentName"] == "first"
    listed = {s["id"]: s for s in api.listVMSnapshot(virtualmachineid=vm["id"])["vmSnapshot"]}
    assert listed[first["id"]]["current"] is False and listed[second["id"]]["current"] is True

    # disks can't change while VM snapshots exist
    vol = api.createVolume(zoneid=sandbox.advanced_zone, diskofferingid=sandbox.disk_small)["volume"]
    fails(api.attachVolume, 431, 4350, "does not have VM snapshots", id=vol["id"], virtualmachineid=vm["id"])

    # revert: a running VM to a memory snapshot, a stopped VM to a disk one
    fails(api.revertToVMSnapshot, 431, 4350, "revert not allowed", vmsnapshotid=first["id"])
    back = api.revertToVMSnapshot(vmsnapshotid=second["id"])["virtualmachine"]
    assert back["id"] == vm["id"] and back["state"] == "Running"
    api.stopVirtualMachine(id=vm["id"])
    fails(api.createVMSnapshot, 431, 4350, "memory", virtualmachineid=vm["id"], snapshotmemory=True)
    api.revertToVMSnapshot(vmsnapshotid=first["id"])
    now = {s["id"]: s for s in api.listVMSnapshot(virtualmachineid=vm["id"])["vmSnapshot"]}
    assert now[first["id"]]["current"] is True and now[second["id"]]["current"] is False
    third = api.createVMSnapshot(virtualmachineid=vm["id"])["vmsnapshot"]
    assert third["parent"] == first["id"] and third["displayname"] == third["name"]  # CloudStack's default name

    # deleting the parent re-links its children; deleting the current one makes its parent current
    api.deleteVMSnapshot(vmsnapshotid=third["id"])
    now = {s["id"]: s for s in api.listVMSnapshot(virtualmachineid=vm["id"])["vmSnapshot"]}
    assert set(now) == {first["id"], second["id"]} and now[first["id"]]["current"] is True
    api.deleteVMSnapshot(vmsnapshotid=first["id"])
    now = {s["id"]: s for s in api.listVMSnapshot(virtualmachineid=vm["id"])["vmSnapshot"]}
    assert set(now) == {second["id"]} and "parent" not in now[second["id"]]
    api.deleteVMSnapshot(vmsnapshotid=second["id"])
    assert api.listVMSnapshot(virtualmachineid=vm["id"]).get("count", 0) == 0
    assert api.attachVolume(id=vol["id"], virtualmachineid=vm["id"])["volume"]["state"] == "Ready"
    for kind in ("VMSNAPSHOT.CREATE", "VMSNAPSHOT.REVERTTOSNAPSHOT", "VMSNAPSHOT.DELETE"):
        assert events(api, kind), kind


def test_vm_snapshot_failures_and_isolation(sandbox: Any, sandbox_admin: CloudStack, make_sandbox_tenant: Any,
                                            db: Db) -> None:
    alice, bob = make_sandbox_tenant(), make_sandbox_tenant()
    vm = deploy(alice.api, sandbox)
    never = deploy(alice.api, sandbox, startvm=False)
    fails(alice.api.createVMSnapshot, 431, 4350, "not in Ready state", virtualmachineid=never["id"])
    fails(alice.api.createVMSnapshot, 431, 9999, "virtualmachineid")
    db.inject(sandbox_admin, "CreateVMSnapshotCommand", "result:fail", count=1, zone=sandbox.advanced_zone)
    fails(alice.api.createVMSnapshot, 534, 4380, virtualmachineid=vm["id"], name="doomed")
    assert alice.api.listVMSnapshot(virtualmachineid=vm["id"]).get("count", 0) == 0
    ok = alice.api.createVMSnapshot(virtualmachineid=vm["id"], name="doomed")["vmsnapshot"]  # the name is free again
    assert ok["state"] == "Ready"
    db.inject(sandbox_admin, "DeleteVMSnapshotCommand", "result:fail", count=1, zone=sandbox.advanced_zone)
    fails(sandbox_admin.deleteVMSnapshot, 534, 4380, "simulated failure", vmsnapshotid=ok["id"])
    assert alice.api.listVMSnapshot(vmsnapshotid=ok["id"])["vmSnapshot"][0]["state"] == "Ready"

    assert bob.api.listVMSnapshot(listall=True).get("count", 0) == 0
    fails(bob.api.revertToVMSnapshot, 531, 4365, vmsnapshotid=ok["id"])
    fails(bob.api.deleteVMSnapshot, 531, 4365, vmsnapshotid=ok["id"])
    fails(bob.api.createVMSnapshot, 531, 4365, virtualmachineid=vm["id"])
    # expunging the VM takes its snapshots with it
    sandbox_admin.destroyVirtualMachine(id=vm["id"], expunge=True)
    assert sandbox_admin.listVMSnapshot(vmsnapshotid=ok["id"], listall=True).get("count", 0) == 0


def test_listed_fields_match_the_declarations(sandbox: Any, sandbox_admin: CloudStack, make_sandbox_tenant: Any) -> None:
    """Every key of every listed volume, snapshot, policy and VM snapshot is declared, with its JSON type
    (Go clients are generated from listApis), for a tenant and for the root admin."""
    from overcast.api.declare import registry
    from test_response_shapes import check_object

    tenant = make_sandbox_tenant()
    api = tenant.api
    vm = deploy(api, sandbox)
    vol = data_volume(api, sandbox, vm)
    api.createVolume(zoneid=sandbox.advanced_zone, diskofferingid=sandbox.disk_small)
    api.createSnapshot(volumeid=vol["id"], tags=[{"key": "k", "value": "v"}])
    api.createSnapshotPolicy(volumeid=vol["id"], intervaltype="WEEKLY", schedule="0:3:1", timezone="UTC", maxsnaps=2)
    api.createVMSnapshot(virtualmachineid=vm["id"])
    for client in (api, sandbox_admin):
        for command in ("listVolumes", "listSnapshots", "listSnapshotPolicies", "listVMSnapshot"):
            cls = registry.get(command)
            assert cls is not None
            params: dict[str, Any] = {"listall": True}
            if command == "listSnapshotPolicies":
                params = {"volumeid": vol["id"]}
            result = getattr(client, command)(**params)
            items = result.get(cls.response.object_name, [])
            assert items, command
            fields = {f.name: f for f in cls.response.all_fields()}
            for item in items:
                check_object(item, fields, command)
