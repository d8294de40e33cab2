"""Volumes on the simulated cloud: the lifecycle through ``cs``, exact pool capacity and resource counts
afterwards, limits, tenant isolation, failure injection and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cs import CloudStack

from storage_helpers import GB, Db, deploy, events, fails, root_volume, wait_for


@pytest.fixture(scope="module")
def db(sandbox_server: Any) -> Iterator[Db]:
    handle = Db(sandbox_server)
    yield handle
    handle.engine.dispose()


def test_volume_lifecycle(sandbox: Any, sandbox_admin: CloudStack, make_sandbox_tenant: Any, db: Db) -> None:
    tenant = make_sandbox_tenant()
    api = tenant.api
    vm = deploy(api, sandbox)
    assert vm["state"] == "Running"
    root = root_volume(sandbox_admin, vm["id"])
    assert root["state"] == "Ready" and root["deviceid"] == 0 and root["storage"] != "none"
    pools = db.zone_pools(sandbox.advanced_zone)
    before = db.counts(tenant.id)

    # create: Allocated, counted, not placed yet
    vol = api.createVolume(name="data-1", zoneid=sandbox.advanced_zone, diskofferingid=sandbox.disk_small)["volume"]
    assert vol["state"] == "Allocated" and vol["size"] == 5 * GB and vol["type"] == "DATADISK"
    assert vol["diskofferingname"] == "Small" and vol["storagetype"] == "shared" and vol["destroyed"] is False
    assert "storage" not in vol and "virtualmachineid" not in vol  # tenants don't see pools
    assert db.counts(tenant.id)["volume"] == before["volume"] + 1
    assert db.counts(tenant.id)["primary_storage"] == before["primary_storage"] + 5 * GB
    assert db.zone_pools(sandbox.advanced_zone) == pools

    # attach to the running VM: created on the ROOT's pool, device 1
    att = api.attachVolume(id=vol["id"], virtualmachineid=vm["id"])["volume"]
    assert att["state"] == "Ready" and att["deviceid"] == 1 and att["virtualmachineid"] == vm["id"]
    assert att["vmname"] == vm["name"] and att["vmstate"] == "Running" and "attached" in att
    seen = sandbox_admin.listVolumes(id=vol["id"])["volume"][0]  # by id, an admin finds it without listall
    assert seen["storage"] == root["storage"] and seen["storageid"] == root["storageid"]
    pool = root["storageid"]
    assert db.pool_used(pool) == pools[pool] + 5 * GB
    listed = api.listVolumes(virtualmachineid=vm["id"])
    assert listed["count"] == 2 and {v["type"] for v in listed["volume"]} == {"ROOT", "DATADISK"}

    # resize: 5 -> 10 GB grows pool and count; shrinking needs shrinkok
    big = api.resizeVolume(id=vol["id"], size=10)["volume"]
    assert big["size"] == 10 * GB
    assert db.pool_used(pool) == pools[pool] + 10 * GB
    assert db.counts(tenant.id)["primary_storage"] == before["primary_storage"] + 10 * GB
    fails(api.resizeVolume, 431, 4350, "shrinkok", id=vol["id"], size=8)
    small = api.resizeVolume(id=vol["id"], size=8, shrinkok=True)["volume"]
    assert small["size"] == 8 * GB and db.pool_used(pool) == pools[pool] + 8 * GB

    # detach, migrate to the other pool of the zone, delete
    det = api.detachVolume(id=vol["id"])["volume"]
    assert "virtualmachineid" not in det and "deviceid" not in det and det["state"] == "Ready"
    other = next(p for p in pools if p != pool)
    moved = sandbox_admin.migrateVolume(volumeid=vol["id"], storageid=other)["volume"]
    assert moved["storageid"] == other and moved["state"] == "Ready"
    assert db.pool_used(pool) == pools[pool] and db.pool_used(other) == pools[other] + 8 * GB
    fails(sandbox_admin.migrateVolume, 431, 4350, "already on the destination", volumeid=vol["id"], storageid=other)
    assert api.deleteVolume(id=vol["id"])["success"] is True
    assert api.listVolumes(id=vol["id"]).get("count", 0) == 0
    assert db.zone_pools(sandbox.advanced_zone) == pools
    assert db.counts(tenant.id) == before
    assert db.recounted(sandbox_admin, tenant) == before  # a recount from the rows agrees

    for kind in ("VOLUME.CREATE", "VOLUME.ATTACH", "VOLUME.RESIZE", "VOLUME.DETACH", "VOLUME.DELETE"):
        assert any(e["state"] == "Completed" for e in events(api, kind)), kind
    assert events(sandbox_admin, "VOLUME.MIGRATE", listall=True)


def test_attach_to_a_vm_that_never_started(sandbox: Any, make_sandbox_tenant: Any, sandbox_admin: CloudStack,
                                           db: Db) -> None:
    tenant = make_sandbox_tenant()
    api = tenant.api
    vm = deploy(api, sandbox, startvm=False)
    assert vm["state"] == "Stopped"
    pools = db.zone_pools(sandbox.advanced_zone)
    vol = api.createVolume(zoneid=sandbox.advanced_zone, diskofferingid=sandbox.disk_custom, size=3)["volume"]
    assert vol["size"] == 3 * GB and vol["name"]  # a random name when none is given
    att = api.attachVolume(id=vol["id"], virtualmachineid=vm["id"])["volume"]
    assert att["state"] == "Allocated" and att["deviceid"] == 1  # made when the VM starts
    assert db.zone_pools(sandbox.advanced_zone) == pools
    api.startVirtualMachine(id=vm["id"])
    vols = sandbox_admin.listVolumes(virtualmachineid=vm["id"], listall=True)["volume"]
    assert {v["state"] for v in vols} == {"Ready"} and len({v["storageid"] for v in vols}) == 1
    pool = vols[0]["storageid"]
    assert db.pool_used(pool) == pools[pool] + sum(v["size"] for v in vols)


def test_device_ids_and_the_data_disk_limit(sandbox: Any, make_sandbox_tenant: Any) -> None:
    api = make_sandbox_tenant().api
    vm = deploy(api, sandbox)
    vols = [api.createVolume(zoneid=sandbox.advanced_zone, diskofferingid=sandbox.disk_custom, size=1)["volume"]
            for _ in range(7)]
    fails(api.attachVolume, 431, 4350, "deviceid", id=vols[0]["id"], virtualmachineid=vm["id"], deviceid=3)
    fails(api.attachVolume, 431, 4350, "Root volume", id=vols[0]["id"], virtualmachineid=vm["id"], deviceid=0)
    devices = [api.attachVolume(id=v["id"], virtualmachineid=vm["id"])["volume"]["deviceid"] for v in vols[:6]]
    assert devices == [1, 2, 4, 5, 6, 7]  # 3 is the CD-ROM's
    fails(api.attachVolume, 431, 4350, "maximum number of data disks (6)", id=vols[6]["id"],
          virtualmachineid=vm["id"])
    fails(api.attachVolume, 431, 4350, "not attached to any VM", id=vols[0]["id"], virtualmachineid=vm["id"])
    # detach by VM and device id
    det = api.detachVolume(virtualmachineid=vm["id"], deviceid=4)["volume"]
    assert det["id"] == vols[2]["id"]
    again = api.attachVolume(id=vols[6]["id"], virtualmachineid=vm["id"], deviceid=4)["volume"]
    assert again["deviceid"] == 4


def test_bad_input(sandbox: Any, make_sandbox_tenant: Any, sandbox_admin: CloudStack) -> None:
    api = make_sandbox_tenant().api
    zone, small, custom = sandbox.advanced_zone, sandbox.disk_small, sandbox.disk_custom
    fails(api.createVolume, 431, 4350, "At least one of disk Offering ID or snapshot ID", zoneid=zone)
    fails(api.createVolume, 431, 4350, "requires a custom size", zoneid=zone, diskofferingid=custom)
    fails(api.createVolume, 431, 4350, "does not allow custom size", zoneid=zone, diskofferingid=small, size=5)
    fails(api.createVolume, 431, 4350, "larger than 0", zoneid=zone, diskofferingid=custom, size=0)
    fails(api.createVolume, 431, 4350, "out of allowed range", zoneid=zone, diskofferingid=custom, size=5000)
    fails(api.createVolume, 431, 4350, "zoneid", diskofferingid=small)
    fails(api.createVolume, 431, 9999, "diskofferingid", zoneid=zone, diskofferingid="not-a-uuid")
    fails(api.createVolume, 431, 9999, "size", zoneid=zone, diskofferingid=custom, size="ten")
    fails(api.attachVolume, 431, 9999, "missing parameter id")
    vm = deploy(api, sandbox)
    root = root_volume(api, vm["id"])
    fails(api.detachVolume, 431, 4350, "ROOT", id=root["id"])
    fails(api.detachVolume, 431, 4350, "either a volume id, or a tuple")
    fails(api.detachVolume, 431, 4350, "either a volume id, or a tuple", virtualmachineid=vm["id"])
    fails(api.deleteVolume, 431, 4350, "not attached to any VM", id=root["id"])
    vol = api.createVolume(zoneid=zone, diskofferingid=small)["volume"]
    fails(api.detachVolume, 431, 4350, "not attached to a VM", id=vol["id"])
    fails(api.resizeVolume, 431, 4350, "size", id=vol["id"])
    fails(api.destroyVolume, 431, 4350, "Allocated/Uploaded state can only be expunged", id=vol["id"])
    fails(api.recoverVolume, 431, 4350, "Destroy state", id=vol["id"])
    pool = root_volume(sandbox_admin, vm["id"])["storageid"]
    fails(sandbox_admin.migrateVolume, 431, 4350, "ready state", volumeid=vol["id"], storageid=pool)


def test_destroy_recover_and_expunge(sandbox: Any, sandbox_admin: CloudStack, make_sandbox_tenant: Any,
                                     db: Db) -> None:
    tenant = make_sandbox_tenant()
    api = tenant.api
    vm = deploy(api, sandbox)
    before, pools = db.counts(tenant.id), db.zone_pools(sandbox.advanced_zone)
    vol = api.createVolume(zoneid=sandbox.advanced_zone, diskofferingid=sandbox.disk_small, virtualmachineid=vm["id"])
    vol = sandbox_admin.listVolumes(id=vol["volume"]["id"], listall=True)["volume"][0]
    assert vol["state"] == "Ready" and vol["virtualmachineid"] == vm["id"]  # created, then attached
    pool = vol["storageid"]
    api.detachVolume(id=vol["id"])
    gone = api.destroyVolume(id=vol["id"])["volume"]
    assert gone["state"] == "Destroy" and gone["destroyed"] is True
    assert db.counts(tenant.id) == before  # counts given back at once
    assert db.pool_used(pool) == pools[pool] + 5 * GB  # the space until it is expunged
    back = api.recoverVolume(id=vol["id"])["volume"]
    assert back["state"] == "Ready" and db.counts(tenant.id)["volume"] == before["volume"] + 1
    api.destroyVolume(id=vol["id"], expunge=True)
    assert api.listVolumes(id=vol["id"]).get("count", 0) == 0
    assert db.counts(tenant.id) == before and db.zone_pools(sandbox.advanced_zone) == pools

    # the cleanup task expunges destroyed volumes after storage.cleanup.delay
    vol2 = api.createVolume(zoneid=sandbox.advanced_zone, diskofferingid=sandbox.disk_small, virtualmachineid=vm["id"])
    api.detachVolume(id=vol2["volume"]["id"])
    api.destroyVolume(id=vol2["volume"]["id"])
    sandbox_admin.updateConfiguration(name="storage.cleanup.delay", value="0")
    sandbox_admin.updateConfiguration(name="storage.cleanup.interval", value="1")
    try:
        wait_for(lambda: sandbox_admin.listVolumes(id=vol2["volume"]["id"], listall=True).get("count", 0) == 0)
    finally:
        sandbox_admin.updateConfiguration(name="storage.cleanup.interval", value="86400")
        sandbox_admin.updateConfiguration(name="storage.cleanup.delay", value="86400")
    assert db.counts(tenant.id) == before and db.zone_pools(sandbox.advanced_zone) == pools
    assert db.recounted(sandbox_admin, tenant) == before
    assert events(api, "VOLUME.EXPUNGE")


def test_limits_are_enforced(sandbox: Any, sandbox_admin: CloudStack, make_sandbox_tenant: Any, db: Db) -> None:
    tenant = make_sandbox_tenant()
    api = tenant.api
    vm = deploy(api, sandbox)
    counts = db.counts(tenant.id)
    db.set_limit(sandbox_admin, tenant, "volume", counts["volume"] + 1)
    vol = api.createVolume(zoneid=sandbox.advanced_zone, diskofferingid=sandbox.disk_custom, size=2)["volume"]
    fails(api.createVolume, 532, 4280, "'volume'", zoneid=sandbox.advanced_zone, diskofferingid=sandbox.disk_small)
    assert db.counts(tenant.id)["volume"] == counts["volume"] + 1
    # primary storage in GiB: what is used now plus 3 GiB
    used_gb = db.counts(tenant.id)["primary_storage"] // GB
    db.set_limit(sandbox_admin, tenant, "volume", -1)
    db.set_limit(sandbox_admin, tenant, "primary_storage", used_gb + 3)
    fails(api.createVolume, 532, 4280, "primary_storage", zoneid=sandbox.advanced_zone,
          diskofferingid=sandbox.disk_custom, size=4)
    api.attachVolume(id=vol["id"], virtualmachineid=vm["id"])
    fails(api.resizeVolume, 532, 4280, "primary_storage", id=vol["id"], size=6)
    assert api.listVolumes(id=vol["id"])["volume"][0]["size"] == 2 * GB
    assert api.resizeVolume(id=vol["id"], size=5)["volume"]["size"] == 5 * GB
    assert db.counts(tenant.id)["primary_storage"] == (used_gb + 3) * GB


def test_tenant_isolation(sandbox: Any, sandbox_admin: CloudStack, make_sandbox_tenant: Any) -> None:
    alice, bob = make_sandbox_tenant(), make_sandbox_tenant()
    vol = alice.api.createVolume(zoneid=sandbox.advanced_zone, diskofferingid=sandbox.disk_small)["volume"]
    bob_vm = deploy(bob.api, sandbox)
    fails(bob.api.attachVolume, 531, 4365, id=vol["id"], virtualmachineid=bob_vm["id"])
    fails(bob.api.deleteVolume, 531, 4365, id=vol["id"])
    fails(bob.api.resizeVolume, 531, 4365, id=vol["id"], size=10)
    assert bob.api.listVolumes(id=vol["id"]).get("count", 0) == 0
    assert vol["id"] not in {v["id"] for v in bob.api.listVolumes(listall=True).get("volume", [])}
    # not even an admin puts one account's disk into another account's VM
    fails(sandbox_admin.attachVolume, 531, 4365, "different accounts", id=vol["id"], virtualmachineid=bob_vm["id"])
    assert alice.api.listVolumes(id=vol["id"])["volume"][0]["state"] == "Allocated"


def test_create_command_failure_is_clean(sandbox: Any, sandbox_admin: CloudStack, make_sandbox_tenant: Any,
                                         db: Db) -> None:
    tenant = make_sandbox_tenant()
    vm = deploy(tenant.api, sandbox)
    before, pools = db.counts(tenant.id), db.zone_pools(sandbox.advanced_zone)
    db.inject(sandbox_admin, "CreateCommand", "result:fail", count=1, zone=sandbox.advanced_zone)
    err = fails(tenant.api.createVolume, 534, 4380, zoneid=sandbox.advanced_zone, diskofferingid=sandbox.disk_small,
                virtualmachineid=vm["id"])
    assert "Internal error" in err["errortext"]  # hidden from tenants, as CloudStack does
    failed = tenant.api.listVolumes(virtualmachineid=vm["id"])["volume"]
    assert [v["type"] for v in failed] == ["ROOT"]
    assert db.counts(tenant.id) == before and db.zone_pools(sandbox.advanced_zone) == pools
    assert db.recounted(sandbox_admin, tenant) == before
    # an attach to a running VM fails cleanly too, and the volume stays usable
    vol = tenant.api.createVolume(zoneid=sandbox.advanced_zone, diskofferingid=sandbox.disk_small)["volume"]
    db.inject(sandbox_admin, "CreateCommand", "result:fail", count=1, zone=sandbox.advanced_zone)
    err = fails(sandbox_admin.attachVolume, 534, 4380, "simulated failure", id=vol["id"], virtualmachineid=vm["id"])
    still = tenant.api.listVolumes(id=vol["id"])["volume"][0]
    assert still["state"] == "Allocated" and "virtualmachineid" not in still
    assert db.zone_pools(sandbox.advanced_zone) == pools
    assert tenant.api.attachVolume(id=vol["id"], virtualmachineid=vm["id"])["volume"]["state"] == "Ready"


def test_concurrent_attaches_get_distinct_devices(sandbox: Any, make_sandbox_tenant: Any, db: Db) -> None:
    tenant = make_sandbox_tenant()
    api = tenant.api
    vm = deploy(api, sandbox)
    pools = db.zone_pools(sandbox.advanced_zone)
    vols = [api.createVolume(zoneid=sandbox.advanced_zone, diskofferingid=sandbox.disk_custom, size=1)["volume"]
            for _ in range(5)]
    jobs = [api.attachVolume(id=v["id"], virtualmachineid=vm["id"], fetch_result=False)["jobid"] for v in vols]

    def done() -> list[dict[str, Any]] | None:
        results = [api.queryAsyncJobResult(jobid=j, fetch_result=False) for j in jobs]
        return results if all(r["jobstatus"] != 0 for r in results) else None

    results = wait_for(done)
    assert all(r["jobstatus"] == 1 for r in results), results
    devices = sorted(r["jobresult"]["volume"]["deviceid"] for r in results)
    assert devices == [1, 2, 4, 5, 6]
    assert sum(db.zone_pools(sandbox.advanced_zone).values()) == sum(pools.values()) + 5 * GB
