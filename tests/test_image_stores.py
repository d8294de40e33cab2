"""Image store providers (NFS, S3, Swift) against real servers, and the image store commands.

- The driver contract is exercised on a local directory (NFS), on moto's S3 server through boto3, and on
  a one-node Swift cluster from PyPI's ``swift`` package (tests/object_servers.py).
- Through the API (``cs`` client, sandbox servers): adding, listing, updating and deleting stores of each
  kind, staging stores and their selection policy, snapshot backups and templates on S3 and Swift.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from cs import CloudStack

from conftest import Sandbox, client
from object_servers import S3Server, SwiftCluster, moto_s3, swift_cluster, swift_unavailable
from servers import Server
from storage_helpers import Db, deploy, fails, root_volume

from overcast.errors import InvalidParameterValue
from overcast.plugins.storage import ImageStoreDriver, ImageStoreError, provider_class
from overcast.plugins.stores import s3 as s3_module
from overcast.plugins.stores.nfs import NfsImageStore

MIB = 1024 * 1024


# -- real servers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_s3() as server:
        yield server


def bucket(s3: S3Server, name: str) -> Any:
    res = boto3.resource("s3", endpoint_url=s3.endpoint, aws_access_key_id=s3.access_key,
                         aws_secret_access_key=s3.secret_key, region_name="us-east-1")
    b = res.Bucket(name)
    if not b.creation_date:
        b.create()
    return b


def s3_details(s3: S3Server, name: str) -> dict[str, str]:
    bucket(s3, name)
    return {"accesskey": s3.access_key, "secretkey": s3.secret_key, "bucket": name,
            "endpoint": s3.endpoint.split("://", 1)[1], "usehttps": "false"}


@pytest.fixture(scope="module")
def swift(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwiftCluster]:
    reason = swift_unavailable()
    if reason:
        pytest.skip(reason)
    with swift_cluster(tmp_path_factory.mktemp("swift")) as cluster:
        yield cluster


def swift_details(sw: SwiftCluster, container: str) -> dict[str, str]:
    return {"account": sw.account, "username": sw.user, "key": sw.key, "container": container,
            "tempurlkey": "overcast-temp-url-key"}


# -- the driver contract, on each provider ----------------------------------------------------------


def exercise(driver: ImageStoreDriver) -> None:
    """What every provider must do (plugins/storage.py)."""
    driver.probe()
    big = os.urandom(MIB)
    assert driver.put("template/tmpl/2/7/t.qcow2", (big for _ in range(3))) == 3 * MIB
    assert driver.size("template/tmpl/2/7/t.qcow2") == 3 * MIB
    with driver.open("template/tmpl/2/7/t.qcow2") as f:
        assert f.read() == big * 3
    assert driver.size("template/tmpl/2/7/missing") is None
    with pytest.raises(ImageStoreError):
        driver.open("template/tmpl/2/7/missing")
    driver.put("snapshots/2/9/s.raw", [b"snap"])
    assert sorted(driver.list("template/")) == [("template/tmpl/2/7/t.qcow2", 3 * MIB)]
    assert sorted(p for p, _ in driver.list("")) == ["snapshots/2/9/s.raw", "template/tmpl/2/7/t.qcow2"]

    def broken() -> Iterator[bytes]:
        yield b"partial"
        raise RuntimeError("the source went away")

    with pytest.raises(RuntimeError):
        driver.put("template/tmpl/2/8/half.qcow2", broken())
    assert driver.size("template/tmpl/2/8/half.qcow2") is None, "a failed upload left an object behind"
    assert [p for p, _ in driver.list("template/tmpl/2/8")] == []
    used, _total = driver.usage()
    assert used >= 3 * MIB
    driver.delete("template/tmpl/2/7/t.qcow2")
    driver.delete("template/tmpl/2/7/t.qcow2")  # absent is fine
    assert driver.size("template/tmpl/2/7/t.qcow2") is None
    assert driver.delete_prefix("snapshots/") == 1
    assert list(driver.list("")) == []


def test_unknown_provider_is_an_error_not_nfs() -> None:
    with pytest.raises(InvalidParameterValue, match="Unknown image store provider SMB"):
        provider_class("SMB")
    assert provider_class("nfs") is NfsImageStore
    assert provider_class("s3").region_wide and provider_class("Swift").region_wide


def test_nfs_driver(tmp_path: Path) -> None:
    store = NfsImageStore(f"file://{tmp_path}/secondary", {})
    exercise(store)
    assert not [p for p in (tmp_path / "secondary").rglob("*") if p.is_file()], "temporary files left behind"
    assert store.download_url("x", 60) is None  # Overcast serves NFS objects itself
    with pytest.raises(ImageStoreError):
        store.put("../escape", [b"x"])
    # an nfs:// export not mounted here: the simulator keeps it under the data directory
    try:
        NfsImageStore.data_dir = tmp_path / "data"
        unmounted = NfsImageStore("nfs://10.1.1.2/export/secondary", {})
        assert unmounted.root == tmp_path / "data" / "nfs" / "10.1.1.2" / "export" / "secondary"
        mounted = NfsImageStore("nfs://10.1.1.2/export/secondary", {"mountpoint": str(tmp_path / "mnt")})
        assert mounted.root == tmp_path / "mnt"
    finally:
        NfsImageStore.data_dir = None
    for url, details, param in (("ftp://host/x", {}, "parameter url"), ("nfs://host", {}, "parameter url"),
                                ("nfs://h/x", {"mountpoint": "rel"}, "details[mountpoint]")):
        with pytest.raises(InvalidParameterValue, match=param.replace("[", r"\[").replace("]", r"\]")):
            NfsImageStore.validate(url, details)


def test_s3_driver_against_moto(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    details = s3_details(s3, "contract")
    exercise(s3_module.S3ImageStore("", details))
    # multipart: 11 MiB in 5 MiB parts (S3's minimum part size), streamed, completed at the end
    monkeypatch.setattr(s3_module, "PART", 5 * MIB)
    store = s3_module.S3ImageStore("", details)
    chunk = os.urandom(MIB)
    assert store.put("template/tmpl/2/9/big.qcow2", (chunk for _ in range(11))) == 11 * MIB
    head = bucket(s3, "contract").Object("template/tmpl/2/9/big.qcow2")
    assert head.content_length == 11 * MIB and head.e_tag.strip('"').endswith("-3"), head.e_tag

    def broken() -> Iterator[bytes]:
        for _ in range(7):
            yield chunk
        raise RuntimeError("the source went away")

    with pytest.raises(RuntimeError):
        store.put("template/tmpl/2/9/broken.qcow2", broken())
    client_ = store.client
    assert store.size("template/tmpl/2/9/broken.qcow2") is None
    assert not client_.list_multipart_uploads(Bucket="contract").get("Uploads"), "a failed upload was not aborted"
    # a presigned GET URL any HTTP client can use
    url = store.download_url("template/tmpl/2/9/big.qcow2", 300)
    assert url and "X-Amz-Signature=" in url and "X-Amz-Expires=300" in url
    got = httpx.get(url)  # (moto doesn't check presigned signatures: that they are right is boto3's business)
    assert got.status_code == 200 and got.content == chunk * 11
    store.delete_prefix("")


def test_s3_configuration_errors(s3: S3Server, tmp_path: Path) -> None:
    base = s3_details(s3, "conf")
    for missing in ("accesskey", "secretkey", "bucket"):
        with pytest.raises(InvalidParameterValue, match=rf"details\[{missing}\]"):
            s3_module.S3ImageStore.validate("", {k: v for k, v in base.items() if k != missing})
    for key, value in (("usehttps", "maybe"), ("s3signer", "Bogus"), ("cabundle", str(tmp_path / "none.pem")),
                       ("connectiontimeout", "-1")):
        with pytest.raises(InvalidParameterValue, match=rf"details\[{key}\]"):
            s3_module.S3ImageStore.validate("", {**base, key: value})
    wrong = s3_module.S3ImageStore("", {**base, "bucket": "no-such-bucket"})
    with pytest.raises(InvalidParameterValue, match="can't be used"):
        wrong.probe()
    # TLS options reach boto3: verification off, or a CA bundle
    pem = tmp_path / "ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    assert s3_module.S3ImageStore("", {**base, "verifyssl": "false"}).client._endpoint.http_session._verify is False
    assert s3_module.S3ImageStore("", {**base, "cabundle": str(pem)}).client._endpoint.http_session._verify == str(pem)


def test_swift_driver_against_a_swift_cluster(swift: SwiftCluster) -> None:
    from overcast.plugins.stores.swift import SwiftImageStore

    store = SwiftImageStore(swift.auth_url, swift_details(swift, "contract"))
    exercise(store)
    store.put("template/tmpl/2/3/t.raw", [b"temp-url-bytes"])
    url = store.download_url("template/tmpl/2/3/t.raw", 120)
    assert url and "temp_url_sig" in url
    assert httpx.get(url).content == b"temp-url-bytes"
    bad = SwiftImageStore(swift.auth_url, {**swift_details(swift, "contract"), "key": "wrong"})
    with pytest.raises(InvalidParameterValue, match="can't be used"):
        bad.probe()
    with pytest.raises(InvalidParameterValue, match=r"details\[username\]"):
        SwiftImageStore.validate(swift.auth_url, {"account": "a", "key": "k"})


# -- the commands -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def srv(server_factory: Any) -> Server:
    return server_factory(extra_args=["--sandbox"])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def api(srv: Server) -> CloudStack:
    return client(srv, srv.api_key, srv.secret_key)


def details_params(details: dict[str, str]) -> dict[str, str]:
    out = {}
    for i, (k, v) in enumerate(details.items()):
        out[f"details[{i}].key"] = k
        out[f"details[{i}].value"] = v
    return out


def test_nfs_store_commands(srv: Server, api: CloudStack, tmp_path: Path) -> None:
    sb = Sandbox(srv)
    fails(api.addImageStore, 431, contains="Unknown image store provider SMB", provider="SMB",
          url=f"file://{tmp_path}/x", zoneid=sb.advanced_zone)
    fails(api.addImageStore, 431, contains="zoneid", provider="NFS", url=f"file://{tmp_path}/x")
    fails(api.addImageStore, 431, contains="parameter url", provider="NFS", url="ftp://h/x", zoneid=sb.advanced_zone)
    store = api.addImageStore(provider="NFS", name="extra-nfs", url=f"file://{tmp_path}/extra",
                              zoneid=sb.advanced_zone)["imagestore"]
    assert (store["providername"], store["scope"], store["protocol"], store["readonly"]) == ("NFS", "ZONE", "file",
                                                                                            False)
    assert (tmp_path / "extra").is_dir() and not list((tmp_path / "extra").iterdir())  # probed, then tidied
    fails(api.addImageStore, 431, contains="already exists", provider="NFS", name="extra-nfs",
          url=f"file://{tmp_path}/other", zoneid=sb.advanced_zone)
    fails(api.addImageStore, 431, contains="same provider NFS", provider="S3",
          **details_params({"accesskey": "a", "secretkey": "b", "bucket": "bkt", "endpoint": "127.0.0.1:1"}))
    listed = api.listImageStores(name="extra-nfs")["imagestore"]
    assert [s["id"] for s in listed] == [store["id"]]
    updated = api.updateImageStore(id=store["id"], readonly=True)["imagestore"]
    assert updated["readonly"] is True
    assert store["id"] in [s["id"] for s in api.listImageStores(readonly=True)["imagestore"]]
    assert store["id"] not in [s["id"] for s in api.listImageStores(readonly=False)["imagestore"]]
    api.updateImageStore(id=store["id"], readonly=False, name="extra-nfs-2", capacitybytes=10 * MIB)
    again = api.listImageStores(id=store["id"])["imagestore"][0]
    assert (again["name"], again["disksizetotal"]) == ("extra-nfs-2", 10 * MIB)
    fails(api.updateImageStore, 431, contains="capacitybytes", id=store["id"], capacitybytes=0)
    assert api.deleteImageStore(id=store["id"])["success"]
    assert not api.listImageStores(id=store["id"]).get("imagestore")

    providers = api.listStorageProviders(type="image")["dataStoreProvider"]
    assert sorted(p["name"] for p in providers) == ["NFS", "S3", "Swift"]
    assert [p["name"] for p in api.listStorageProviders(type="ImageCache")["dataStoreProvider"]] == ["NFS"]
    assert [p["name"] for p in api.listStorageProviders(type="primary")["dataStoreProvider"]] == ["DefaultPrimary"]
    fails(api.listStorageProviders, 431, contains="parameter type", type="bogus")


def test_delete_refused_while_the_store_holds_backups(srv: Server, api: CloudStack, tmp_path: Path) -> None:
    sb = Sandbox(srv)
    db = Db(srv)
    store_id = db.scalar("SELECT s.uuid FROM image_store s JOIN zone z ON z.id = s.zone_id WHERE z.uuid = :z AND"
                         " s.role = 'Image' AND s.removed IS NULL", z=sb.basic_zone)
    db.engine.dispose()
    vm = deploy(api, sb, zoneid=sb.basic_zone)
    snap = api.createSnapshot(volumeid=root_volume(api, vm["id"])["id"])["snapshot"]
    fails(api.deleteImageStore, 536, contains="active snapshots", id=store_id)
    api.deleteSnapshot(id=snap["id"])
    api.destroyVirtualMachine(id=vm["id"], expunge=True)


def test_staging_store_commands(srv: Server, api: CloudStack, tmp_path: Path, s3: S3Server) -> None:
    sb = Sandbox(srv)
    st = api.createSecondaryStagingStore(url=f"file://{tmp_path}/stage", zoneid=sb.advanced_zone)["secondarystorage"]
    assert (st["providername"], st["scope"]) == ("NFS", "ZONE")
    fails(api.createSecondaryStagingStore, 431, contains="parameter scope", url=f"file://{tmp_path}/s2",
          zoneid=sb.advanced_zone, scope="region")
    fails(api.createSecondaryStagingStore, 431, contains="directory store", url=f"file://{tmp_path}/s3",
          zoneid=sb.advanced_zone, provider="S3", **details_params(s3_details(s3, "stage")))
    fails(api.createSecondaryStagingStore, 431, contains="Unknown image store provider", url=f"file://{tmp_path}/s4",
          zoneid=sb.advanced_zone, provider="Bogus")
    listed = api.listSecondaryStagingStores(zoneid=sb.advanced_zone)["secondarystagingstore"]
    assert [s["id"] for s in listed] == [st["id"]]
    assert st["id"] not in [s["id"] for s in api.listImageStores().get("imagestore", [])]
    fails(api.deleteImageStore, 431, contains="not an image store", id=st["id"])
    assert api.deleteSecondaryStagingStore(id=st["id"])["success"]
    assert not api.listSecondaryStagingStores(zoneid=sb.advanced_zone).get("secondarystagingstore")


# -- object stores through the API -------------------------------------------------------------------


@contextmanager
def object_store_server(server_factory: Any) -> Iterator[tuple[Server, CloudStack, Sandbox, Db]]:
    """A sandbox server whose NFS image stores are removed, so an object store can be its image store
    (as in CloudStack, one provider at a time)."""
    srv = server_factory(extra_args=["--sandbox", "--log-level", "DEBUG"])  # DEBUG logs request parameters
    api = client(srv, srv.api_key, srv.secret_key)
    for store in api.listImageStores()["imagestore"]:
        api.deleteImageStore(id=store["id"])
    db = Db(srv)
    try:
        yield srv, api, Sandbox(srv), db
    finally:
        db.engine.dispose()


def pool_file(srv: Server, db: Db, vol: dict[str, Any]) -> Path:
    path = db.scalar("SELECT path FROM volume WHERE uuid = :u", u=vol["id"]) or vol["id"]
    return srv.data_dir / "primary" / vol["storageid"] / path


@pytest.mark.slow
def test_s3_image_store_through_the_api(server_factory: Any, s3: S3Server, tmp_path: Path) -> None:
    with object_store_server(server_factory) as (srv, api, sb, db):
        details = s3_details(s3, "images")
        fails(api.addImageStore, 431, contains="region-wide", provider="S3", zoneid=sb.advanced_zone,
              **details_params(details))
        fails(api.addImageStore, 431, contains="can't be used", provider="S3",
              **details_params({**details, "bucket": "no-such-bucket"}))  # (moto accepts any key pair)
        fails(api.addImageStore, 431, contains="details[bucket]", provider="S3",
              **details_params({k: v for k, v in details.items() if k != "bucket"}))
        assert not api.listImageStores().get("imagestore"), "a failed addImageStore left a store behind"
        store = api.addImageStore(provider="S3", name="s3-images", **details_params(details))["imagestore"]
        assert (store["providername"], store["scope"], store["protocol"]) == ("S3", "REGION", "http")
        assert "zoneid" not in store
        second = api.addImageStoreS3(accesskey=s3.access_key, secretkey=s3.secret_key, bucket=bucket(s3, "more").name,
                                     endpoint=details["endpoint"], usehttps=False)["imagestore"]
        assert (second["providername"], second["scope"]) == ("S3", "REGION")
        api.updateImageStore(id=second["id"], readonly=True)  # new objects go to the writable one
        assert "details[0].value=*****" in srv.log()  # parameters are logged (DEBUG), masked
        assert s3.secret_key not in srv.log(), "the S3 secret key reached the server log"

        # two staging stores, round robin
        stages = [api.createSecondaryStagingStore(url=f"file://{tmp_path}/stage{i}", zoneid=sb.advanced_zone)
                  ["secondarystorage"]["id"] for i in range(2)]
        api.updateConfiguration(name="staging.store.selection.policy", value="roundrobin")
        try:
            vm = deploy(api, sb)
            api.stopVirtualMachine(id=vm["id"])
            vol = root_volume(api, vm["id"])
            payload = os.urandom(2 * MIB)
            pool_file(srv, db, vol).write_bytes(payload)
            chosen = []
            snaps = []
            for _ in range(2):
                snaps.append(api.createSnapshot(volumeid=vol["id"])["snapshot"])
                chosen.append(db.scalar("SELECT uuid FROM image_store WHERE role = 'ImageCache' AND removed IS NULL"
                                        " ORDER BY selection_order DESC LIMIT 1"))
            assert sorted(chosen) == sorted(stages), "round robin did not take each staging store in turn"
            for snap in snaps:
                key = db.scalar("SELECT r.install_path FROM snapshot_store_ref r JOIN snapshot s ON s.id = r.snapshot_id"
                                " WHERE s.uuid = :u", u=snap["id"])
                assert bucket(s3, "images").Object(key).get()["Body"].read() == payload
            for i in range(2):  # a backup passes through staging and leaves nothing there
                assert not [p for p in (tmp_path / f"stage{i}").rglob("*") if p.is_file()]

            # a template from the snapshot lives in the bucket; deploying it goes S3 -> staging -> primary
            api.updateConfiguration(name="staging.store.selection.policy", value="leastused")
            t = api.createTemplate(snapshotid=snaps[0]["id"], name="s3-tmpl", displaytext="s3-tmpl",
                                   ostypeid=vm["guestosid"])["template"]
            tkey = db.scalar("SELECT r.install_path FROM template_zone_ref r JOIN vm_template t ON t.id = r.template_id"
                             " WHERE t.uuid = :u AND r.removed IS NULL", u=t["id"])
            assert bucket(s3, "images").Object(tkey).get()["Body"].read() == payload
            vm2 = deploy(api, sb, templateid=t["id"])
            disk = pool_file(srv, db, root_volume(api, vm2["id"]))
            assert disk.is_file()
            staged = [p for i in range(2) for p in (tmp_path / f"stage{i}").rglob("*") if p.is_file()]
            assert len(staged) == 1 and staged[0].read_bytes() == payload, "the template was not cached on staging"
            first_stage = staged[0].relative_to(tmp_path).parts[0]
            # least used: a second template lands on the other staging store
            t2 = api.createTemplate(snapshotid=snaps[1]["id"], name="s3-tmpl2", displaytext="s3-tmpl2",
                                    ostypeid=vm["guestosid"])["template"]
            deploy(api, sb, templateid=t2["id"])
            staged2 = {p.relative_to(tmp_path).parts[0] for i in range(2) for p in (tmp_path / f"stage{i}").rglob("*")
                       if p.is_file()}
            assert staged2 == {"stage0", "stage1"} and first_stage in staged2
            # a volume from the snapshot, from the bucket
            v = api.createVolume(snapshotid=snaps[0]["id"], name="from-s3")["volume"]
            assert pool_file(srv, db, v).read_bytes() == payload
            fails(api.deleteImageStore, 536, contains="active", id=store["id"])
        finally:
            api.updateConfiguration(name="staging.store.selection.policy", value="leastused")


@pytest.mark.slow
def test_swift_image_store_through_the_api(server_factory: Any, swift: SwiftCluster) -> None:
    with object_store_server(server_factory) as (srv, api, sb, db):
        details = swift_details(swift, "images")
        fails(api.addImageStore, 431, contains="can't be used", provider="Swift", url=swift.auth_url,
              **details_params({**details, "key": "wrong"}))
        store = api.addImageStore(provider="Swift", url=swift.auth_url, **details_params(details))["imagestore"]
        assert (store["providername"], store["scope"], store["protocol"]) == ("Swift", "REGION", "http")
        vm = deploy(api, sb)
        api.stopVirtualMachine(id=vm["id"])
        vol = root_volume(api, vm["id"])
        payload = os.urandom(MIB)
        pool_file(srv, db, vol).write_bytes(payload)
        snap = api.createSnapshot(volumeid=vol["id"])["snapshot"]  # no staging store: streamed straight to Swift
        from overcast.plugins.stores.swift import SwiftImageStore

        reader = SwiftImageStore(swift.auth_url, details)
        key = db.scalar("SELECT r.install_path FROM snapshot_store_ref r JOIN snapshot s ON s.id = r.snapshot_id"
                        " WHERE s.uuid = :u", u=snap["id"])
        with reader.open(key) as f:
            assert f.read() == payload
        t = api.createTemplate(snapshotid=snap["id"], name="sw-tmpl", displaytext="sw-tmpl",
                               ostypeid=vm["guestosid"])["template"]
        vm2 = deploy(api, sb, templateid=t["id"])
        disk = pool_file(srv, db, root_volume(api, vm2["id"]))
        assert disk.is_file()
        v = api.createVolume(snapshotid=snap["id"], name="from-swift")["volume"]
        assert pool_file(srv, db, v).read_bytes() == payload
        api.deleteSnapshot(id=snap["id"])
        assert reader.size(key) is None


def test_migrate_secondary_storage_data(srv: Server, api: CloudStack, tmp_path: Path) -> None:
    sb = Sandbox(srv)
    db = Db(srv)
    try:
        src_id, src_url = db.rows("SELECT s.uuid, s.url FROM image_store s JOIN zone z ON z.id = s.zone_id WHERE"
                                  " z.uuid = :z AND s.role = 'Image' AND s.removed IS NULL ORDER BY s.id",
                                  z=sb.advanced_zone)[0]
        src_root = Path(src_url[len("file://"):])
        vm = deploy(api, sb)
        api.stopVirtualMachine(id=vm["id"])
        vol = root_volume(api, vm["id"])
        payload = os.urandom(MIB)
        (srv.data_dir / "primary" / vol["storageid"] / vol["id"]).write_bytes(payload)
        snap = api.createSnapshot(volumeid=vol["id"])["snapshot"]
        key = db.scalar("SELECT r.install_path FROM snapshot_store_ref r JOIN snapshot s ON s.id = r.snapshot_id"
                        " WHERE s.uuid = :u", u=snap["id"])
        assert (src_root / key).read_bytes() == payload
        dest = api.addImageStore(provider="NFS", name="migration-dest", url=f"file://{tmp_path}/dest",
                                 zoneid=sb.advanced_zone)["imagestore"]
        fails(api.migrateSecondaryStorageData, 431, contains="destpools", srcpool=src_id, destpools=src_id)
        result = api.migrateSecondaryStorageData(srcpool=src_id, destpools=dest["id"], migrationtype="Complete")
        assert result["storagemigration"]["success"] is True, result
        assert (tmp_path / "dest" / key).read_bytes() == payload
        assert not (src_root / key).exists()
        assert db.scalar("SELECT s.uuid FROM snapshot_store_ref r JOIN image_store s ON s.id = r.store_id JOIN"
                         " snapshot n ON n.id = r.snapshot_id WHERE n.uuid = :u", u=snap["id"]) == dest["id"]
        assert api.listImageStores(id=src_id)["imagestore"][0]["readonly"] is True
        # the snapshot is still usable from its new store
        v = api.createVolume(snapshotid=snap["id"], name="after-migration")["volume"]
        assert (srv.data_dir / "primary" / v["storageid"] / v["id"]).read_bytes() == payload
        # and back: the emptied source takes everything again once writable
        api.updateImageStore(id=src_id, readonly=False)
        api.migrateSecondaryStorageData(srcpool=dest["id"], destpools=src_id)
        assert (src_root / key).read_bytes() == payload
        api.updateImageStore(id=dest["id"], readonly=False)
        api.deleteSnapshot(id=snap["id"])
        assert api.deleteImageStore(id=dest["id"])["success"]
    finally:
        db.engine.dispose()


def test_a_zone_whose_stores_are_all_read_only_takes_no_templates(srv: Server, api: CloudStack) -> None:
    sb = Sandbox(srv)
    stores = [s["id"] for s in api.listImageStores(zoneid=sb.basic_zone)["imagestore"] if not s["readonly"]]
    assert stores
    os_id = api.listOsTypes()["ostype"][0]["id"]
    try:
        for store in stores:
            api.updateImageStore(id=store, readonly=True)
        fails(api.registerTemplate, 431, contains="read-only", name="ro", displaytext="ro", format="QCOW2",
              hypervisor="Simulator", url="http://203.0.113.9/ro.qcow2", ostypeid=os_id, zoneid=sb.basic_zone)
    finally:
        for store in stores:
            api.updateImageStore(id=store, readonly=False)
    assert not api.listTemplates(templatefilter="self", name="ro").get("template")
