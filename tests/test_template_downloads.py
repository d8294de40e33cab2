"""Real template and ISO registration: downloads from a local HTTP server into a directory (NFS-kind)
image store, checksums, format checks, the SSRF guards, browser uploads, extraction and copyTemplate.

The server under test is a sandbox server of this module's own, with a real NFS image store added to
its advanced zone (a zone's real store takes new templates before the sandbox's simulated one).
Template files are served by a ThreadingHTTPServer started here; the images are built by hand.
"""

from __future__ import annotations

import hashlib
import http.server
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cs import CloudStack, CloudStackApiException

from conftest import Sandbox, client, unique
from servers import Server

MIB = 1024 * 1024


# -- images -------------------------------------------------------------------------------------


def qcow2(virtual: int = 8 * MIB * 128, *, backing: str | None = None, data_file: bool = False) -> bytes:
    head = bytearray(64 * 1024)
    struct.pack_into(">4sIQIIQ", head, 0, b"QFI\xfb", 3, 0, 0, 16, virtual)
    struct.pack_into(">Q", head, 72, 4 if data_file else 0)  # incompatible features: bit 2 = external data file
    struct.pack_into(">II", head, 96, 4, 104)  # refcount order, header length
    if backing:
        name = backing.encode()
        struct.pack_into(">QI", head, 8, 1024, len(name))
        head[1024:1024 + len(name)] = name
    return bytes(head) + b"\x00" * 4096


def raw(size: int = 3 * MIB + 123) -> bytes:
    block = hashlib.sha256(b"overcast").digest() * 32
    return (block * (size // len(block) + 1))[:size]


def iso(blocks: int = 40) -> bytes:
    data = bytearray(blocks * 2048)
    pvd = 16 * 2048
    data[pvd] = 1
    data[pvd + 1:pvd + 6] = b"CD001"
    data[pvd + 6] = 1
    struct.pack_into("<I", data, pvd + 80, blocks)
    struct.pack_into(">I", data, pvd + 84, blocks)
    struct.pack_into("<H", data, pvd + 128, 2048)
    return bytes(data)


def vhd(size: int = 2 * MIB, disk_type: int = 2) -> bytes:
    footer = bytearray(512)
    footer[0:8] = b"conectix"
    struct.pack_into(">Q", footer, 40, size)  # original size
    struct.pack_into(">Q", footer, 48, size)  # current size
    struct.pack_into(">I", footer, 60, disk_type)
    return b"\x00" * size + bytes(footer)


# -- a local HTTP server for template URLs --------------------------------------------------------


class Files(http.server.ThreadingHTTPServer):
    daemon_threads = True
    files: dict[str, bytes]


class Handler(http.server.BaseHTTPRequestHandler):
    server: Files

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", "/" + self.path.split("/", 2)[2])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        # /slow/<file>: in 20 steps over five seconds; /short/<file>: the first 60 % (the Content-Length
        # promises all), then the connection closes; /extra/<file>: 3 MiB more than the Content-Length;
        # /huge/<file>: a Content-Length of 2 GiB
        mode = self.path.split("/", 2)[1] if self.path.count("/") >= 2 else ""
        special = mode in ("slow", "short", "extra", "huge")
        body = self.server.files.get("/" + self.path.split("/", 2)[2] if special else self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(2 * 1024 ** 3 if mode == "huge" else len(body)))
        self.end_headers()
        if mode != "slow":
            sent = {"short": body[:len(body) * 6 // 10], "extra": body + b"\xee" * (3 * MIB)}.get(mode, body)
            try:
                self.wfile.write(sent)
            except OSError:
                pass  # the downloader went away (huge)
            self.close_connection = True
            return
        step = len(body) // 20 + 1
        try:
            for i in range(0, len(body), step):  # about five seconds in all
                self.wfile.write(body[i:i + step])
                self.wfile.flush()
                time.sleep(0.25)
        except OSError:
            pass  # the downloader went away

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def files() -> Iterator[Files]:
    httpd = Files(("127.0.0.1", 0), Handler)
    httpd.files = {}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def serve(files: Files, name: str, body: bytes) -> str:
    files.files[f"/{name}"] = body
    return f"http://127.0.0.1:{files.server_address[1]}/{name}"


# -- the server -----------------------------------------------------------------------------------


class World:
    def __init__(self, server: Server, admin: CloudStack, sandbox: Sandbox, store_dir: Path) -> None:
        self.server, self.admin, self.sandbox, self.store_dir = server, admin, sandbox, store_dir
        self.zone = sandbox.advanced_zone
        self.os_id = str(admin.listOsTypes(description="CentOS 7")["ostype"][0]["id"])

    def allow_private(self, on: bool) -> None:
        self.admin.updateConfiguration(name="template.download.allow.private.addresses", value=str(on).lower())


@pytest.fixture(scope="module")
def world(server_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> World:
    server = server_factory(extra_args=["--sandbox"])
    admin = client(server, server.api_key, server.secret_key)
    store_dir = tmp_path_factory.mktemp("nfs-store")
    sandbox = Sandbox(server)
    admin.addImageStore(provider="NFS", name=unique("real"), url=f"file://{store_dir}", zoneid=sandbox.advanced_zone)
    w = World(server, admin, sandbox, store_dir)
    w.allow_private(True)
    return w


def register(w: World, url: str, *, fmt: str = "QCOW2", api: CloudStack | None = None, **params: Any
             ) -> dict[str, Any]:
    name = unique("dl")
    result = (api or w.admin).registerTemplate(name=name, displaytext=name, url=url, format=fmt,
                                                hypervisor="Simulator", ostypeid=w.os_id, zoneid=w.zone, **params)
    return result["template"][0]  # type: ignore[no-any-return]


def settle(api: CloudStack, template_id: str, *, iso: bool = False, timeout: float = 30, flt: str = "all"
           ) -> dict[str, Any]:
    """The template once its download has ended (ready or failed)."""
    deadline = time.monotonic() + timeout
    while True:
        if iso:
            t = api.listIsos(id=template_id, isofilter=flt)["iso"][0]
        else:
            t = api.listTemplates(id=template_id, templatefilter=flt)["template"][0]
        details = t.get("downloaddetails") or [{}]
        state = details[0].get("downloadState")
        if t["isready"] or state in ("DOWNLOAD_ERROR", "UPLOAD_ERROR", "ABANDONED"):
            return t  # type: ignore[no-any-return]
        if iso and t.get("status") not in (None, "Active") and "Downloaded" not in (t.get("status") or "") \
                and "Installing" not in (t.get("status") or ""):
            return t  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"download did not end: {t}"
        time.sleep(0.2)


def stored(w: World, t: dict[str, Any]) -> list[Path]:
    return [p for p in w.store_dir.rglob("*") if p.is_file() and t["id"] in p.name]


# -- downloads ------------------------------------------------------------------------------------


def test_private_address_refused_without_setting(world: World, files: Files) -> None:
    world.allow_private(False)
    try:
        t = register(world, serve(files, "private.qcow2", qcow2()))
        assert t["isready"] is False
        done = settle(world.admin, t["id"])
        assert done["isready"] is False
        assert done["downloaddetails"][0]["downloadState"] == "DOWNLOAD_ERROR"
        assert "127.0.0.1" in done["status"] and "loopback" in done["status"]
        assert "template.download.allow.private.addresses" in done["status"]
        assert not stored(world, t)
    finally:
        world.allow_private(True)


def test_good_qcow2_reaches_downloaded(world: World, files: Files) -> None:
    body = qcow2(virtual=5 * 1024 ** 3)
    t = register(world, serve(files, "good.qcow2", body), checksum="{SHA-256}" + hashlib.sha256(body).hexdigest())
    assert t["isready"] is False  # the command answers at once; the download runs in the background
    done = settle(world.admin, t["id"])
    assert done["isready"] is True and done["status"] == "Download Complete"
    assert done["downloaddetails"][0]["downloadState"] == "DOWNLOADED"
    assert done["size"] == 5 * 1024 ** 3 and done["physicalsize"] == len(body)
    paths = stored(world, t)
    assert len(paths) == 1 and paths[0].read_bytes() == body and paths[0].name.endswith(".qcow2")


@pytest.mark.parametrize("checksum", [None, "md5", "{MD5}", "{SHA-1}", "{SHA-512}"])
def test_raw_with_each_checksum_kind(world: World, files: Files, checksum: str | None) -> None:
    body = raw()
    params: dict[str, Any] = {}
    if checksum == "md5":
        params["checksum"] = hashlib.md5(body).hexdigest()
    elif checksum:
        algo = {"{MD5}": "md5", "{SHA-1}": "sha1", "{SHA-512}": "sha512"}[checksum]
        params["checksum"] = checksum + hashlib.new(algo, body).hexdigest()
    done = settle(world.admin, register(world, serve(files, unique("r") + ".img", body), fmt="RAW", **params)["id"])
    assert done["isready"] is True and done["size"] == len(body)


def test_checksum_mismatch_is_an_error(world: World, files: Files) -> None:
    body = raw(MIB)
    wrong = hashlib.sha256(b"something else").hexdigest()
    t = register(world, serve(files, "mismatch.img", body), fmt="RAW", checksum="{SHA-256}" + wrong)
    done = settle(world.admin, t["id"])
    assert done["isready"] is False and done["downloaddetails"][0]["downloadState"] == "DOWNLOAD_ERROR"
    assert "Checksum mismatch" in done["status"] and hashlib.sha256(body).hexdigest() in done["status"]
    assert not stored(world, t)


def test_redirect_is_refused(world: World, files: Files) -> None:
    serve(files, "target.qcow2", qcow2())
    url = f"http://127.0.0.1:{files.server_address[1]}/redirect/target.qcow2"
    done = settle(world.admin, register(world, url)["id"])
    assert done["isready"] is False and "HTTP 302" in done["status"] and "redirect" in done["status"]


@pytest.mark.parametrize("image, fmt, reason", [
    (qcow2(backing="/etc/passwd"), "QCOW2", "backing file (/etc/passwd)"),
    (qcow2(data_file=True), "QCOW2", "external data file"),
    (vhd(disk_type=4), "VHD", "differencing"),
    (qcow2(), "RAW", "is a QCOW2 image, not RAW"),
    (raw(), "QCOW2", "is a RAW image, not QCOW2"),
    (b"\x1f\x8b\x08" + raw(4096), "QCOW2", "gzip-compressed"),
], ids=["backing-file", "data-file", "vhd-parent", "qcow2-as-raw", "raw-as-qcow2", "gzip"])
def test_bad_images_refused(world: World, files: Files, image: bytes, fmt: str, reason: str) -> None:
    t = register(world, serve(files, unique("bad"), image), fmt=fmt)
    done = settle(world.admin, t["id"])
    assert done["isready"] is False and reason in done["status"], done["status"]
    assert not stored(world, t)


def test_vhd_template(world: World, files: Files) -> None:
    body = vhd(3 * MIB)
    done = settle(world.admin, register(world, serve(files, "disk.vhd", body), fmt="VHD")["id"])
    assert done["isready"] is True and done["size"] == 3 * MIB and done["physicalsize"] == len(body)


def test_iso_registered_and_attached(world: World, files: Files) -> None:
    body = iso(64)
    name = unique("iso")
    out = world.admin.registerIso(name=name, displaytext=name, url=serve(files, "boot.iso", body),
                                  zoneid=world.zone, ostypeid=world.os_id, ispublic=True)["iso"][0]
    assert out["isready"] is False
    deadline = time.monotonic() + 30
    while not (i := world.admin.listIsos(id=out["id"], isofilter="all")["iso"][0])["isready"]:
        assert time.monotonic() < deadline, i
        time.sleep(0.2)
    assert i["status"] == "Successfully Installed" and i["size"] == 64 * 2048
    vm = world.admin.deployVirtualMachine(zoneid=world.zone, templateid=world.sandbox.template,
                                          serviceofferingid=world.sandbox.small)["virtualmachine"]
    attached = world.admin.attachIso(id=out["id"], virtualmachineid=vm["id"])["virtualmachine"]
    assert attached["isoid"] == out["id"]


def test_iso_that_is_not_iso9660_refused(world: World, files: Files) -> None:
    name = unique("iso")
    out = world.admin.registerIso(name=name, displaytext=name, url=serve(files, "notiso.iso", raw(MIB)),
                                  zoneid=world.zone, bootable=False)["iso"][0]
    deadline = time.monotonic() + 30
    while True:
        i = world.admin.listIsos(id=out["id"], isofilter="all")["iso"][0]
        if i.get("status") and "not ISO" in i["status"]:
            break
        assert not i["isready"] and time.monotonic() < deadline, i
        time.sleep(0.2)


def test_missing_file_is_an_error(world: World, files: Files) -> None:
    url = f"http://127.0.0.1:{files.server_address[1]}/nothing-here.qcow2"
    done = settle(world.admin, register(world, url)["id"])
    assert done["isready"] is False and "HTTP 404" in done["status"]


def test_progress_in_status(world: World, files: Files) -> None:
    body = raw(4 * MIB)
    serve(files, "slow.img", body)
    url = f"http://127.0.0.1:{files.server_address[1]}/slow/slow.img"
    t = register(world, url, fmt="RAW")
    seen: set[str] = set()
    deadline = time.monotonic() + 30
    while True:
        cur = world.admin.listTemplates(id=t["id"], templatefilter="all")["template"][0]
        seen.add(cur["status"])
        if cur["isready"]:
            break
        assert time.monotonic() < deadline, cur
        time.sleep(0.1)
    partial = [x for x in seen if x.endswith("% Downloaded") and 0 < int(x.split("%")[0]) < 100]
    assert partial, seen
    assert cur["status"] == "Download Complete" and cur["size"] == len(body)


@pytest.mark.slow
def test_crash_mid_download_resumes(server_factory: Any, files: Files, tmp_path_factory: pytest.TempPathFactory
                                    ) -> None:
    server = server_factory(extra_args=["--sandbox"])
    admin = client(server, server.api_key, server.secret_key)
    sandbox = Sandbox(server)
    store_dir = tmp_path_factory.mktemp("nfs-crash")
    admin.addImageStore(provider="NFS", name=unique("crash"), url=f"file://{store_dir}", zoneid=sandbox.advanced_zone)
    w = World(server, admin, sandbox, store_dir)
    w.allow_private(True)
    body = raw(4 * MIB)
    serve(files, "crash.img", body)
    t = register(w, f"http://127.0.0.1:{files.server_address[1]}/slow/crash.img", fmt="RAW")
    deadline = time.monotonic() + 20
    while "% Downloaded" not in (admin.listTemplates(id=t["id"], templatefilter="all")["template"][0]["status"]
                                 or ""):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    server.kill()  # kill -9 mid-download
    server.start()
    admin = client(server, server.api_key, server.secret_key)
    done = settle(admin, t["id"], timeout=60)
    assert done["isready"] is True and done["size"] == len(body)
    objects = [p for p in store_dir.rglob("*") if p.is_file() and t["id"] in p.name and not p.name.endswith(".part")]
    assert [p.read_bytes() == body for p in objects] == [True]  # (the killed writer's temp .part file may stay)


# -- copies between zones -------------------------------------------------------------------------


def test_copy_template_to_another_zone(world: World, files: Files, tmp_path_factory: pytest.TempPathFactory
                                       ) -> None:
    body = qcow2()
    t = settle(world.admin, register(world, serve(files, "copy.qcow2", body))["id"])
    assert t["isready"]
    zone = world.admin.createZone(name=unique("z"), dns1="8.8.8.8", internaldns1="8.8.4.4",
                                  networktype="Advanced")["zone"]
    other_dir = tmp_path_factory.mktemp("nfs-other")
    world.admin.addImageStore(provider="NFS", name=unique("other"), url=f"file://{other_dir}", zoneid=zone["id"])
    files.files.pop("/copy.qcow2")  # the copy must come from the first store, not the URL
    copied = world.admin.copyTemplate(id=t["id"], sourcezoneid=world.zone, destzoneid=zone["id"])["template"]
    assert copied["zoneid"] == zone["id"] and copied["isready"] is True
    paths = [p for p in other_dir.rglob("*") if p.is_file() and t["id"] in p.name]
    assert len(paths) == 1 and paths[0].read_bytes() == body
    listed = world.admin.listTemplates(id=t["id"], templatefilter="all")["template"]
    assert {x["zoneid"] for x in listed} >= {world.zone, zone["id"]}


# -- browser uploads ------------------------------------------------------------------------------


def upload_params(w: World, fmt: str = "QCOW2", api: CloudStack | None = None, **extra: Any) -> dict[str, Any]:
    name = unique("up")
    return (api or w.admin).getUploadParamsForTemplate(  # type: ignore[no-any-return]
        name=name, displaytext=name, format=fmt, hypervisor="Simulator", zoneid=w.zone, ostypeid=w.os_id,
        **extra)["getuploadparams"]


def post(params: dict[str, Any], body: bytes, **headers: str) -> httpx.Response:
    sent = {"X-signature": params["signature"], "X-expires": params["expires"], "X-metadata": params["metadata"],
            **headers}
    return httpx.post(params["postURL"], headers=sent, files={"files[]": ("disk.qcow2", body)}, timeout=30)


def test_upload_template(world: World) -> None:
    body = qcow2(virtual=2 * 1024 ** 3)
    params = upload_params(world, checksum=hashlib.md5(body).hexdigest())
    assert set(params) >= {"id", "postURL", "metadata", "expires", "signature"}
    assert params["postURL"].endswith(f"/upload/{params['id']}")
    before = world.admin.listTemplates(id=params["id"], templatefilter="all")["template"][0]
    assert before["isready"] is False
    response = post(params, body)
    assert response.status_code == 200, response.text
    t = world.admin.listTemplates(id=params["id"], templatefilter="all")["template"][0]
    assert t["isready"] is True and t["size"] == 2 * 1024 ** 3 and t["status"] == "Download Complete"
    assert post(params, body).status_code == 409  # once only


def test_upload_raw_body_and_iso(world: World) -> None:
    name = unique("upiso")
    params = world.admin.getUploadParamsForIso(name=name, format="ISO", zoneid=world.zone,
                                               bootable=False)["getuploadparams"]
    body = iso(20)
    headers = {"X-signature": params["signature"], "X-expires": params["expires"], "X-metadata": params["metadata"],
               "Content-Type": "application/octet-stream"}
    assert httpx.post(params["postURL"], headers=headers, content=body, timeout=30).status_code == 200
    i = world.admin.listIsos(id=params["id"], isofilter="all")["iso"][0]
    assert i["isready"] is True and i["status"] == "Successfully Installed"


def test_upload_signature_checks(world: World) -> None:
    params = upload_params(world)
    body = qcow2()
    tampered = params["signature"][:-2] + ("AA" if not params["signature"].endswith("AA") else "BB")
    assert post(params, body, **{"X-signature": tampered}).status_code == 403
    assert post(params, body, **{"X-expires": "2099-01-01T00:00:00Z"}).status_code == 403  # signed expiry only
    other = upload_params(world)
    assert post(params, body, **{"X-metadata": other["metadata"]}).status_code == 403
    response = httpx.post(params["postURL"], files={"files[]": ("x", body)}, timeout=30)
    assert response.status_code == 403
    assert world.admin.listTemplates(id=params["id"], templatefilter="all")["template"][0]["isready"] is False


@pytest.mark.slow
@pytest.mark.backends("sqlite")  # a minute of waiting for a signature's expiry, which no database decides
def test_upload_expired(world: World) -> None:
    world.admin.updateConfiguration(name="upload.operation.timeout", value="1")  # minutes, the smallest
    try:
        params = upload_params(world)
        assert post(params, qcow2(), **{"X-expires": "2000-01-01T00:00:00Z"}).status_code == 403  # not the signed one
        time.sleep(61)
        response = post(params, qcow2())
        assert response.status_code == 403 and "expired" in response.text
        deadline = time.monotonic() + 15  # nothing came in time: the template is abandoned
        while (t := world.admin.listTemplates(id=params["id"], templatefilter="all")["template"][0]
               )["downloaddetails"][0]["downloadState"] != "ABANDONED":
            assert time.monotonic() < deadline, t
            time.sleep(0.5)
        assert t["isready"] is False and "upload.operation.timeout" in t["status"]
    finally:
        world.admin.updateConfiguration(name="upload.operation.timeout", value="60")


def test_upload_bad_format_refused(world: World) -> None:
    params = upload_params(world, fmt="QCOW2")
    response = post(params, qcow2(backing="base.qcow2"))
    assert response.status_code == 400 and "backing file" in response.text
    t = world.admin.listTemplates(id=params["id"], templatefilter="all")["template"][0]
    assert t["isready"] is False and "backing file" in t["status"]


def test_upload_needs_a_real_store(world: World) -> None:
    with pytest.raises(CloudStackApiException) as err:
        world.admin.getUploadParamsForTemplate(name="x", displaytext="x", format="QCOW2", hypervisor="Simulator",
                                               zoneid=world.sandbox.basic_zone, ostypeid=world.os_id)
    assert err.value.error["errorcode"] == 431 and "simulated" in err.value.error["errortext"]


# -- extraction -----------------------------------------------------------------------------------


def test_extract_template_url(world: World, files: Files) -> None:
    body = raw(2 * MIB)
    t = settle(world.admin, register(world, serve(files, "extract.img", body), fmt="RAW", isextractable=True)["id"])
    world.admin.updateConfiguration(name="extract.url.expiration.interval", value="3")
    try:
        out = world.admin.extractTemplate(id=t["id"], mode="HTTP_DOWNLOAD", zoneid=world.zone)["template"]
    finally:
        world.admin.updateConfiguration(name="extract.url.expiration.interval", value="14400")
    assert out["extractMode"] == "HTTP_DOWNLOAD" and out["state"] == "DOWNLOAD_URL_CREATED"
    got = httpx.get(out["url"], timeout=30)
    assert got.status_code == 200 and got.content == body
    broken = out["url"][:-3] + ("xyz" if not out["url"].endswith("xyz") else "abc")
    assert httpx.get(broken, timeout=30).status_code == 403
    time.sleep(4.2)
    assert httpx.get(out["url"], timeout=30).status_code == 403  # expired


def test_private_address_check_unit() -> None:
    """The address classification itself (no server): what the SSRF guard refuses."""
    import ipaddress

    from overcast.storage.download import address_refusal

    refused = ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "169.254.1.1", "::1",
               "fd00:ec2::254", "fe80::1", "0.0.0.0", "::ffff:127.0.0.1", "100.64.0.1", "224.0.0.1"]
    for text in refused:
        assert address_refusal(ipaddress.ip_address(text)) is not None, text
    for text in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]:
        assert address_refusal(ipaddress.ip_address(text)) is None, text


def test_formats_unit() -> None:
    from overcast.storage.formats import FormatError, Sniffer, check

    def sniff(body: bytes, chunk: int = 7000) -> Any:
        s = Sniffer()
        for i in range(0, len(body), chunk):
            s.feed(body[i:i + chunk])
        return s.result()

    assert sniff(qcow2(virtual=12345 * 512)).virtual_size == 12345 * 512
    assert sniff(iso(33)).format == "ISO" and sniff(iso(33)).virtual_size == 33 * 2048
    assert sniff(vhd(MIB)).format == "VHD"
    check("RAW", sniff(iso(20)))  # a hybrid ISO is a valid raw disk
    with pytest.raises(FormatError):
        check("VHD", sniff(raw()))
    with pytest.raises(FormatError, match="empty"):
        Sniffer().result()


def test_extract_volume(world: World, files: Files) -> None:
    t = settle(world.admin, register(world, serve(files, "vmroot.img", raw(MIB)), fmt="RAW", isextractable=True)["id"])
    vm = world.admin.deployVirtualMachine(zoneid=world.zone, templateid=t["id"],
                                          serviceofferingid=world.sandbox.small)["virtualmachine"]
    root = world.admin.listVolumes(virtualmachineid=vm["id"], type="ROOT")["volume"][0]
    with pytest.raises(CloudStackApiException) as err:
        world.admin.extractVolume(id=root["id"], mode="HTTP_DOWNLOAD", zoneid=world.zone)
    assert "stop the VM first" in err.value.error["errortext"]
    world.admin.stopVirtualMachine(id=vm["id"])
    out = world.admin.extractVolume(id=root["id"], mode="HTTP_DOWNLOAD", zoneid=world.zone)["volume"]
    assert out["id"] == root["id"] and out["state"] == "DOWNLOAD_URL_CREATED"
    got = httpx.get(out["url"], timeout=30)
    assert got.status_code == 200 and len(got.content) > 0
    copies = [p for p in world.store_dir.rglob("*") if p.is_file() and root["id"] in p.name]
    assert len(copies) == 1 and copies[0].read_bytes() == got.content


# -- region-wide templates on an S3 store (moto's server mode: a real S3 protocol server) -------------


@pytest.fixture(scope="module")
def s3_world(server_factory: Any, files: Files) -> Iterator[dict[str, Any]]:
    """A plain server (no sandbox: image store providers can't be mixed) with two zones, one with a
    cluster (listTemplates lists nothing in a cloud without hypervisors), and an S3 image store."""
    import boto3
    from moto.server import ThreadedMotoServer

    from servers import free_port

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                     region_name="us-east-1").create_bucket(Bucket="templates")
        server = server_factory()
        admin = client(server, server.api_key, server.secret_key)
        zones = []
        for octet in (30, 31):
            zone = admin.createZone(name=unique("s3z"), networktype="Advanced", dns1="8.8.8.8",
                                    internaldns1="10.0.0.2", guestcidraddress="10.1.1.0/24")["zone"]
            zones.append(zone["id"])
            if octet == 30:
                pod = admin.createPod(zoneid=zone["id"], name=unique("pod"), gateway=f"172.16.{octet}.1",
                                      netmask="255.255.255.0", startip=f"172.16.{octet}.10",
                                      endip=f"172.16.{octet}.50")["pod"]
                admin.addCluster(zoneid=zone["id"], podid=pod["id"], clustername=unique("cl"),
                                 clustertype="CloudManaged", hypervisor="Simulator")
        admin.addImageStoreS3(accesskey="testing", secretkey="testing", endpoint=endpoint, bucket="templates",
                              usehttps=False)
        admin.updateConfiguration(name="template.download.allow.private.addresses", value="true")
        os_id = str(admin.listOsTypes(description="CentOS 7")["ostype"][0]["id"])
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                          region_name="us-east-1")
        yield {"admin": admin, "zones": zones, "os": os_id, "s3": s3, "server": server}
    finally:
        moto.stop()


def test_region_wide_template_on_s3(s3_world: dict[str, Any], files: Files) -> None:
    admin, zones, s3 = s3_world["admin"], s3_world["zones"], s3_world["s3"]
    body = qcow2(virtual=3 * 1024 ** 3)
    name = unique("s3t")
    out = admin.registerTemplate(name=name, displaytext=name, url=serve(files, "s3.qcow2", body), format="QCOW2",
                                 hypervisor="Simulator", ostypeid=s3_world["os"], zoneid=-1, isextractable=True)
    rows = out["template"]
    assert {r["zoneid"] for r in rows} == set(zones) and all(r["crossZones"] for r in rows)
    done = settle(admin, rows[0]["id"])
    assert done["isready"] is True and done["size"] == 3 * 1024 ** 3
    listed = admin.listTemplates(id=done["id"], templatefilter="all")["template"]
    assert {x["zoneid"] for x in listed} == set(zones) and all(x["isready"] for x in listed)  # usable everywhere
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="templates").get("Contents", []) if done["id"] in o["Key"]]
    assert len(keys) == 1 and keys[0].startswith("template/tmpl/")  # stored once, for every zone
    assert s3.get_object(Bucket="templates", Key=keys[0])["Body"].read() == body
    # copyTemplate: nothing to copy for a region-wide template, and a success
    copied = admin.copyTemplate(id=done["id"], sourcezoneid=zones[0], destzoneid=zones[1])["template"]
    assert copied["id"] == done["id"]
    assert len([o for o in s3.list_objects_v2(Bucket="templates").get("Contents", [])
                if done["id"] in o["Key"]]) == 1
    # extractTemplate: a presigned S3 URL
    extracted = admin.extractTemplate(id=done["id"], mode="HTTP_DOWNLOAD", zoneid=zones[1])["template"]
    assert "X-Amz-Signature" in extracted["url"] or "Signature=" in extracted["url"]
    assert httpx.get(extracted["url"], timeout=30).content == body


def test_delete_removes_the_file(world: World, files: Files) -> None:
    t = settle(world.admin, register(world, serve(files, "deleteme.qcow2", qcow2()))["id"])
    assert t["isready"] and len(stored(world, t)) == 1
    world.admin.deleteTemplate(id=t["id"])
    assert stored(world, t) == []


def test_user_registers_and_uploads(world: World, files: Files) -> None:
    from conftest import tenant_factory

    user = tenant_factory(world.server, world.admin)()
    t = register(world, serve(files, "user.qcow2", qcow2()), api=user.api)
    done = settle(user.api, t["id"], flt="self")
    assert done["isready"] is True and done["account"] == user.name and done["status"] == "Download Complete"
    params = upload_params(world, api=user.api)
    assert post(params, qcow2()).status_code == 200
    mine = user.api.listTemplates(templatefilter="self", id=params["id"])["template"][0]
    assert mine["isready"] is True
    other = tenant_factory(world.server, world.admin)()
    seen = other.api.listTemplates(templatefilter="executable").get("template", [])
    assert params["id"] not in {x["id"] for x in seen} and t["id"] not in {x["id"] for x in seen}


def test_bad_qcow2_stops_early(world: World, files: Files) -> None:
    """A qcow2 naming a backing file is refused from its header, not after the whole (slow) download."""
    serve(files, "early.qcow2", qcow2(backing="/dev/sda") + b"\x00" * (8 * MIB))
    started = time.monotonic()
    t = register(world, f"http://127.0.0.1:{files.server_address[1]}/slow/early.qcow2")
    done = settle(world.admin, t["id"])
    assert "backing file (/dev/sda)" in done["status"]
    assert time.monotonic() - started < 4  # the server takes five seconds to send it all


# -- the zero-copy path (an NFS-kind store, plain HTTP, a Content-Length, no checksum) ---------------


def spliced_bytes(w: World, t: dict[str, Any]) -> int:
    """How many bytes of ``t``'s download the server moved from the socket to the file in the kernel
    (its log line says so), 0 when it logged none."""
    for line in w.server.log().splitlines():
        if f"/{t['id']}." in line and "moved from the socket to the file in the kernel" in line:
            return int(line.split("Download of ", 1)[1].split(": ", 1)[1].split(" of ", 1)[0])
    return 0


def test_large_download_moves_in_the_kernel(world: World, files: Files) -> None:
    body = raw(24 * MIB + 4321)
    t = register(world, serve(files, "big.img", body), fmt="RAW")
    done = settle(world.admin, t["id"])
    assert done["isready"] is True and done["size"] == len(body) and done["physicalsize"] == len(body)
    paths = stored(world, t)
    assert len(paths) == 1 and paths[0].read_bytes() == body
    assert spliced_bytes(world, t) >= len(body) - 2 * MIB  # all but the first chunk (and what was buffered)
    # with a checksum every byte must pass the hash: no splicing
    t = register(world, serve(files, "big-summed.img", body), fmt="RAW",
                 checksum="{SHA-256}" + hashlib.sha256(body).hexdigest())
    assert settle(world.admin, t["id"])["isready"] is True
    assert stored(world, t)[0].read_bytes() == body and spliced_bytes(world, t) == 0


def test_zero_copy_never_takes_more_than_the_content_length(world: World, files: Files) -> None:
    body = raw(6 * MIB + 11)
    serve(files, "extra.img", body)
    t = register(world, f"http://127.0.0.1:{files.server_address[1]}/extra/extra.img", fmt="RAW")
    done = settle(world.admin, t["id"])
    assert done["isready"] is True and done["size"] == len(body)
    assert stored(world, t)[0].read_bytes() == body and spliced_bytes(world, t) > 4 * MIB


def test_size_cap_before_any_byte(world: World, files: Files) -> None:
    serve(files, "huge.img", raw(4 * MIB))
    world.admin.updateConfiguration(name="max.template.iso.size", value="1")
    try:
        t = register(world, f"http://127.0.0.1:{files.server_address[1]}/huge/huge.img", fmt="RAW")
        done = settle(world.admin, t["id"])
    finally:
        world.admin.updateConfiguration(name="max.template.iso.size", value="50")
    assert done["downloaddetails"][0]["downloadState"] == "DOWNLOAD_ERROR"
    assert "more than the limit of 1073741824 bytes" in done["status"] and not stored(world, t)


def test_truncated_body_is_an_error(world: World, files: Files) -> None:
    body = raw(8 * MIB)
    serve(files, "short.img", body)
    t = register(world, f"http://127.0.0.1:{files.server_address[1]}/short/short.img", fmt="RAW")
    done = settle(world.admin, t["id"])
    assert done["isready"] is False and done["downloaddetails"][0]["downloadState"] == "DOWNLOAD_ERROR"
    assert f"closed after {len(body) * 6 // 10} of {len(body)} bytes" in done["status"], done["status"]
    assert not stored(world, t) and not list(world.store_dir.rglob("*.part"))
    assert spliced_bytes(world, t) > 2 * MIB  # the body broke off in the kernel copy


@pytest.mark.parametrize("image, fmt, reason", [
    (qcow2(backing="/etc/passwd") + b"\x00" * (6 * MIB), "QCOW2", "backing file (/etc/passwd)"),
    (qcow2() + b"\x00" * (6 * MIB), "RAW", "is a QCOW2 image, not RAW"),
    (vhd(6 * MIB, disk_type=4), "VHD", "differencing"),
    (raw(6 * MIB), "VHD", "is a RAW image, not VHD"),
], ids=["qcow2-backing-file", "qcow2-as-raw", "vhd-parent", "raw-as-vhd"])
def test_large_bad_images_refused(world: World, files: Files, image: bytes, fmt: str, reason: str) -> None:
    t = register(world, serve(files, unique("bigbad"), image), fmt=fmt)
    done = settle(world.admin, t["id"])
    assert done["isready"] is False and reason in done["status"], done["status"]
    assert not stored(world, t) and not list(world.store_dir.rglob("*.part"))


def test_large_vhd_footer_read_from_the_file(world: World, files: Files) -> None:
    body = vhd(6 * MIB)
    t = register(world, serve(files, "big.vhd", body), fmt="VHD")
    done = settle(world.admin, t["id"])
    assert done["isready"] is True and done["size"] == 6 * MIB and done["physicalsize"] == len(body)
    assert spliced_bytes(world, t) > 4 * MIB  # the footer itself went by in the kernel


def test_download_splice_unit(files: Files, tmp_path: Path) -> None:
    """Download.chunks(into=fd) itself against the module's HTTP server: the caller sees the first chunk and
    what http.client had buffered; the file gets every byte, and no more than the Content-Length."""
    import os

    from overcast.storage.download import SPLICE_AFTER, Checksum, Download, FetchLimits

    body = raw(9 * MIB + 5)
    serve(files, "unit.img", body)
    for prefix, checksum in (("", None), ("extra/", None), ("", "{SHA-256}" + hashlib.sha256(body).hexdigest())):
        url = f"http://127.0.0.1:{files.server_address[1]}/{prefix}unit.img"
        download = Download(url, FetchLimits(max_bytes=10 * MIB, allow_private=True), Checksum.parse(checksum))
        target = tmp_path / "unit.out"
        with open(target, "wb", buffering=0) as out:
            seen = sum(out.write(chunk) or 0 for chunk in download.chunks(into=out.fileno()))
        assert target.read_bytes() == body and download.received == len(body)
        if checksum is None:
            assert SPLICE_AFTER <= seen <= SPLICE_AFTER + 64 * 1024 and download.spliced == len(body) - seen
        else:
            assert seen == len(body) and download.spliced == 0
        os.unlink(target)
