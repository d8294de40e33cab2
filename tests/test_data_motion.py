"""Bytes really move on the simulated cloud: ROOT volumes copied from the template through the pool's
template cache, snapshots backed up as files in the image store, templates made from snapshots and
volumes, volumes made from snapshots (all through the API with the ``cs`` client on a sandbox server)."""

from __future__ import annotations

import os
import shutil
import time
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cs import CloudStack

from conftest import client
from servers import Server
from storage_helpers import Db, deploy, fails, root_volume

QEMU_IMG = shutil.which("qemu-img")
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def srv(server_factory: Any) -> Server:
    return server_factory(extra_args=["--sandbox"])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def api(srv: Server) -> CloudStack:
    return client(srv, srv.api_key, srv.secret_key)


@pytest.fixture(scope="module")
def sb(srv: Server) -> Any:
    from conftest import Sandbox

    return Sandbox(srv)


@pytest.fixture(scope="module")
def db(srv: Server) -> Iterator[Db]:
    db = Db(srv)
    yield db
    db.engine.dispose()


def pool_file(srv: Server, vol: dict[str, Any], db: Db) -> Path:
    path = db.scalar("SELECT path FROM volume WHERE uuid = :u", u=vol["id"]) or vol["id"]
    return srv.data_dir / "primary" / vol["storageid"] / path


def store_root(db: Db, zone_uuid: str) -> Path:
    url = db.scalar("SELECT s.url FROM image_store s JOIN zone z ON z.id = s.zone_id WHERE z.uuid = :z AND"
                    " s.removed IS NULL AND s.role = 'Image'", z=zone_uuid)
    assert url.startswith("file://")
    return Path(url[len("file://"):])


def content(path: Path) -> bytes:
    """A disk's guest-visible bytes: qcow2 images (overlays included) read through qemu-img."""
    with open(path, "rb") as f:
        qcow2 = f.read(4) == b"QFI\xfb"
    if not qcow2:
        return path.read_bytes()
    assert QEMU_IMG is not None
    out = path.with_name(path.name + ".raw-check")
    subprocess.run([QEMU_IMG, "convert", "-O", "raw", str(path), str(out)], check=True)
    try:
        return out.read_bytes()
    finally:
        out.unlink()


def test_deploy_makes_a_root_volume_file_even_without_template_bytes(srv: Server, api: CloudStack, sb: Any,
                                                                     db: Db) -> None:
    vm = deploy(api, sb)
    vol = root_volume(api, vm["id"])
    f = pool_file(srv, vol, db)
    assert f.is_file(), "the ROOT volume has no file on the simulated primary storage"
    assert f.stat().st_size == int(vol["size"])  # a blank (sparse) disk of the volume's size
    api.destroyVirtualMachine(id=vm["id"], expunge=True)
    assert not f.exists(), "expunging the VM left its ROOT volume's file behind"


def test_snapshot_template_and_volume_bytes(srv: Server, api: CloudStack, sb: Any, db: Db) -> None:
    vm = deploy(api, sb)
    api.stopVirtualMachine(id=vm["id"])
    vol = root_volume(api, vm["id"])
    disk = pool_file(srv, vol, db)
    payload = os.urandom(MIB) + b"overcast-data-motion" + bytes(3 * MIB)
    disk.write_bytes(payload)  # what the guest wrote on its disk

    snap = api.createSnapshot(volumeid=vol["id"])["snapshot"]
    assert snap["state"] == "BackedUp"
    path, size, fmt = db.rows("SELECT r.install_path, r.physical_size, r.format FROM snapshot_store_ref r JOIN"
                              " snapshot s ON s.id = r.snapshot_id WHERE s.uuid = :u AND r.removed IS NULL",
                              u=snap["id"])[0]
    backup = store_root(db, sb.advanced_zone) / path
    assert backup.is_file(), f"no snapshot file at {backup}"
    assert fmt == "RAW" and size == len(payload)
    assert backup.read_bytes() == payload

    # a template from the snapshot: a real file in the image store
    t = api.createTemplate(snapshotid=snap["id"], name="from-snap", displaytext="from-snap",
                           ostypeid=vm["guestosid"])["template"]
    tpath = db.scalar("SELECT r.install_path FROM template_zone_ref r JOIN vm_template t ON t.id = r.template_id"
                      " WHERE t.uuid = :u AND r.removed IS NULL", u=t["id"])
    tfile = store_root(db, sb.advanced_zone) / tpath
    assert tfile.is_file() and tfile.read_bytes() == payload

    # prepareTemplate copies it into every pool's cache of the zone
    api.prepareTemplate(templateid=t["id"], zoneid=sb.advanced_zone)
    pools = api.listStoragePools(zoneid=sb.advanced_zone)["storagepool"]
    for pool in pools:
        name = db.scalar("SELECT r.install_path FROM template_pool_ref r JOIN vm_template t ON t.id = r.template_id"
                         " JOIN storage_pool p ON p.id = r.pool_id WHERE t.uuid = :t AND p.uuid = :p",
                         t=t["id"], p=pool["id"])
        assert name and (srv.data_dir / "primary" / pool["id"] / name).read_bytes() == payload

    # deployable: the new ROOT volume's bytes are the template's, through the pool's template cache
    vm2 = deploy(api, sb, templateid=t["id"])
    vol2 = root_volume(api, vm2["id"])
    disk2 = pool_file(srv, vol2, db)
    cache = db.rows("SELECT install_path, ref_count FROM template_pool_ref r JOIN vm_template t ON t.id ="
                    " r.template_id JOIN storage_pool p ON p.id = r.pool_id WHERE t.uuid = :t AND p.uuid = :p",
                    t=t["id"], p=vol2["storageid"])
    assert len(cache) == 1 and cache[0][1] == 1, cache
    cached = disk2.parent / cache[0][0]
    assert cached.read_bytes() == payload
    if QEMU_IMG is None:
        assert disk2.read_bytes() == payload
    else:
        with open(disk2, "rb") as f:
            assert f.read(4) == b"QFI\xfb", "the ROOT volume is not a qcow2 overlay"
        info = subprocess.run([QEMU_IMG, "info", str(disk2)], capture_output=True, text=True, check=True).stdout
        assert str(cached.resolve()) in info, info
        assert content(disk2)[:len(payload)] == payload

    # a second VM on the same pool reuses the cache: one row, two references
    vm3 = deploy(api, sb, templateid=t["id"], hostid=vm2["hostid"])
    vol3 = root_volume(api, vm3["id"])
    if vol3["storageid"] == vol2["storageid"]:
        refs = db.scalar("SELECT ref_count FROM template_pool_ref r JOIN vm_template t ON t.id = r.template_id"
                         " JOIN storage_pool p ON p.id = r.pool_id WHERE t.uuid = :t AND p.uuid = :p",
                         t=t["id"], p=vol2["storageid"])
        assert refs == 2
    api.destroyVirtualMachine(id=vm3["id"], expunge=True)

    # a volume from the snapshot: a real copy on primary storage
    v = api.createVolume(snapshotid=snap["id"], name="from-snap")["volume"]
    assert v["state"] == "Ready"
    vfile = pool_file(srv, v, db)
    assert vfile.read_bytes() == payload

    # migrating it to another pool moves its bytes (primary to primary)
    other = next(p["id"] for p in api.listStoragePools(zoneid=sb.advanced_zone)["storagepool"]
                 if p["id"] != v["storageid"])
    moved = api.migrateVolume(volumeid=v["id"], storageid=other)["volume"]
    assert moved["storageid"] == other
    assert pool_file(srv, moved, db).read_bytes() == payload
    assert not vfile.exists(), "the source pool kept the migrated volume's file"

    # a template from a (stopped) volume
    t2 = api.createTemplate(volumeid=vol["id"], name="from-vol", displaytext="from-vol",
                            ostypeid=vm["guestosid"])["template"]
    t2path = db.scalar("SELECT r.install_path FROM template_zone_ref r JOIN vm_template t ON t.id = r.template_id"
                       " WHERE t.uuid = :u AND r.removed IS NULL", u=t2["id"])
    assert (store_root(db, sb.advanced_zone) / t2path).read_bytes() == payload

    # a stopped VM restored from the template: its new ROOT volume gets the template's bytes when first
    # needed (here: a snapshot before any start), not zeros
    api.restoreVirtualMachine(virtualmachineid=vm["id"], templateid=t["id"])
    new_root = root_volume(api, vm["id"])
    assert new_root["id"] != vol["id"]
    snap3 = api.createSnapshot(volumeid=new_root["id"])["snapshot"]
    path3 = db.scalar("SELECT r.install_path FROM snapshot_store_ref r JOIN snapshot s ON s.id = r.snapshot_id"
                      " WHERE s.uuid = :u", u=snap3["id"])
    assert content(store_root(db, sb.advanced_zone) / path3)[:len(payload)] == payload

    # deleting the snapshot removes its file from the store
    api.deleteSnapshot(id=snap["id"])
    assert not backup.exists()


def test_snapshot_of_an_overlay_is_flattened(srv: Server, api: CloudStack, sb: Any, db: Db) -> None:
    if QEMU_IMG is None:
        pytest.skip("qemu-img is not installed (apt-get install qemu-utils)")
    vm = deploy(api, sb)
    api.stopVirtualMachine(id=vm["id"])
    vol = root_volume(api, vm["id"])
    payload = b"flatten-me" * 1000
    pool_file(srv, vol, db).write_bytes(payload)
    snap = api.createSnapshot(volumeid=vol["id"])["snapshot"]
    t = api.createTemplate(snapshotid=snap["id"], name="ovl", displaytext="ovl", ostypeid=vm["guestosid"])["template"]
    vm2 = deploy(api, sb, templateid=t["id"])
    api.stopVirtualMachine(id=vm2["id"])
    vol2 = root_volume(api, vm2["id"])
    snap2 = api.createSnapshot(volumeid=vol2["id"])["snapshot"]
    path, fmt = db.rows("SELECT r.install_path, r.format FROM snapshot_store_ref r JOIN snapshot s ON"
                        " s.id = r.snapshot_id WHERE s.uuid = :u", u=snap2["id"])[0]
    backup = store_root(db, sb.advanced_zone) / path
    assert fmt == "QCOW2"
    info = subprocess.run([QEMU_IMG, "info", str(backup)], capture_output=True, text=True, check=True).stdout
    assert "backing file" not in info, info  # standalone: the pool's cache stays behind
    assert content(backup)[:len(payload)] == payload
    v = api.createVolume(snapshotid=snap2["id"], name="from-overlay")["volume"]
    assert content(pool_file(srv, v, db))[:len(payload)] == payload


def test_revert_snapshot_restores_the_bytes(srv: Server, api: CloudStack, sb: Any, db: Db) -> None:
    vm = deploy(api, sb)
    api.stopVirtualMachine(id=vm["id"])
    vol = root_volume(api, vm["id"])
    disk = pool_file(srv, vol, db)
    before = os.urandom(64 * 1024)
    disk.write_bytes(before)
    snap = api.createSnapshot(volumeid=vol["id"])["snapshot"]
    disk.write_bytes(b"the guest wrote something else")
    api.revertSnapshot(id=snap["id"])
    assert disk.read_bytes() == before
    api.destroyVirtualMachine(id=vm["id"], expunge=True)


def test_snapshot_fails_cleanly_when_the_store_cannot_be_written(srv: Server, api: CloudStack, sb: Any,
                                                                 db: Db) -> None:
    vm = deploy(api, sb)
    vol = root_volume(api, vm["id"])
    api.stopVirtualMachine(id=vm["id"])
    root = store_root(db, sb.advanced_zone)
    snaps_dir = root / "snapshots"
    snaps_dir.mkdir(parents=True, exist_ok=True)
    blocker = snaps_dir / str(db.scalar("SELECT account_id FROM volume WHERE uuid = :u", u=vol["id"]))
    if blocker.is_dir():
        shutil.rmtree(blocker)
    blocker.write_bytes(b"not a directory")  # the snapshot's folder can't be made
    try:
        fails(api.createSnapshot, 534, contains="Unable to back the snapshot up to the image store", volumeid=vol["id"])
    finally:
        blocker.unlink()
    assert root_volume(api, vm["id"])["state"] == "Ready"
    # the volume is usable again: a new snapshot works
    assert api.createSnapshot(volumeid=vol["id"])["snapshot"]["state"] == "BackedUp"


def test_registered_template_is_copied_to_the_root_volume(srv: Server, api: CloudStack, sb: Any, db: Db,
                                                          tmp_path: Path) -> None:
    """registerTemplate from a URL (the download pipeline) puts a real file in the store; a VM deployed
    from it gets those bytes on primary storage."""
    import http.server
    import threading

    payload = os.urandom(MIB) + b"registered-template"
    raw = tmp_path / "disk.raw"
    raw.write_bytes(payload)
    if QEMU_IMG is not None:
        image, fmt = tmp_path / "disk.qcow2", "QCOW2"
        subprocess.run([QEMU_IMG, "convert", "-O", "qcow2", str(raw), str(image)], check=True)
    else:
        image, fmt = raw, "RAW"
    body = image.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    api.updateConfiguration(name="template.download.allow.private.addresses", value="true")
    # the sandbox's own stores simulate downloads (templates Ready without bytes): a real one
    store = api.addImageStore(provider="NFS", name="real-downloads", url=f"file://{tmp_path}/store",
                              zoneid=sb.advanced_zone)["imagestore"]
    try:
        os_id = api.listOsTypes(description="CentOS 7")["ostype"][0]["id"]
        t = api.registerTemplate(name="dl", displaytext="dl", format=fmt, hypervisor="Simulator", ostypeid=os_id,
                                 zoneid=sb.advanced_zone,
                                 url=f"http://127.0.0.1:{httpd.server_address[1]}/disk")["template"][0]
        deadline = time.monotonic() + 60
        while not (cur := api.listTemplates(id=t["id"], templatefilter="all")["template"][0])["isready"]:
            assert time.monotonic() < deadline and "rror" not in (cur.get("status") or ""), cur
            time.sleep(0.2)
        assert [p.name for p in (tmp_path / "store").rglob("*") if p.is_file()], "no template file in the store"
        vm = deploy(api, sb, templateid=t["id"])
        disk = pool_file(srv, root_volume(api, vm["id"]), db)
        assert content(disk)[:len(payload)] == payload
        api.destroyVirtualMachine(id=vm["id"], expunge=True)
        api.deleteTemplate(id=t["id"])
        api.deleteImageStore(id=store["id"])
    finally:
        api.updateConfiguration(name="template.download.allow.private.addresses", value="false")
        httpd.shutdown()
        httpd.server_close()


def test_the_highest_priority_strategy_wins() -> None:
    """CloudStack's bestMatch: strictly highest wins, the first on a tie, none answering is an error."""
    from overcast.storage.motion import (
        DataMotionService,
        DataMotionStrategy,
        DataObject,
        MotionEnv,
        MotionError,
        Priority,
    )

    class Fixed(DataMotionStrategy):
        def __init__(self, name: str, priority: Priority) -> None:
            self.name, self.priority = name, priority  # type: ignore[misc]

        def can_handle(self, src: DataObject, dst: DataObject, env: MotionEnv) -> Priority:
            return self.priority

        def copy(self, src: DataObject, dst: DataObject, env: MotionEnv, staging: DataObject | None = None) -> int:
            return 0

    a = DataObject(kind="template", location="store", path="a")
    b = DataObject(kind="volume", location="pool", path="b", pool_dir=Path("/nonexistent"))
    env = MotionEnv()
    pick = DataMotionService([Fixed("d", Priority.DEFAULT), Fixed("h", Priority.HYPERVISOR),
                              Fixed("h2", Priority.HYPERVISOR)]).choose(a, b, env)
    assert pick.name == "h"
    assert DataMotionService([Fixed("x", Priority.HIGHEST), Fixed("y", Priority.DEFAULT)]).choose(a, b, env).name == "x"
    with pytest.raises(MotionError, match="Can't find strategy to move data"):
        DataMotionService([Fixed("n", Priority.CANT_HANDLE)]).choose(a, b, env)
    # the built-in strategies come from the entry points
    assert sorted(s.name for s in DataMotionService().strategies) == ["local", "qcow2overlay", "staged"]
