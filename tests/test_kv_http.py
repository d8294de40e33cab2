"""Conformance of the KV storages' secret-key HTTP service (spec section 4) over real HTTP (httpx),
against a real ``overcast serve`` of this module (the service mounted at ``/kv/``) and a second node,
``overcast kv serve``, on the same database. Storages are made through the API (``cs``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cs import CloudStack

from conftest import client
from servers import Server, free_port

JSON_CT = "application/json;charset=utf-8"
TEXT_CT = "text/plain;charset=utf-8"


# -- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kv_server(server_factory: Any) -> Server:
    return server_factory()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def admin(kv_server: Server) -> CloudStack:
    return client(kv_server, kv_server.api_key, kv_server.secret_key)


@pytest.fixture(scope="module")
def account_id(admin: CloudStack) -> str:
    return next(a["id"] for a in admin.listAccounts(listall=True)["account"] if a["name"] == "admin")


@pytest.fixture(scope="module")
def http(kv_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{kv_server.port}/kv", timeout=30) as c:
        yield c


class Storage:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.id: str = data["id"]
        self.secret: str = data["secretkey"]
        self.url: str = data["url"]

    @property
    def auth(self) -> dict[str, str]:
        return {"Secret-Key": self.secret}


@pytest.fixture
def make_storage(admin: CloudStack, account_id: str) -> Any:
    def make(*, history: bool = True, temp_ttl: int | None = None) -> Storage:
        if temp_ttl is not None:
            return Storage(admin.createTempKvStorage(ttl=temp_ttl)["kvstorage"])
        return Storage(admin.createAccountKvStorage(accountid=account_id, name="conformance",
                                                    historyenabled=str(history).lower())["kvstorage"])

    return make


@pytest.fixture
def storage(make_storage: Any) -> Storage:
    return make_storage()  # type: ignore[no-any-return]


def put_text(http: httpx.Client, s: Storage, key: str, value: str, ctype: str = "text/plain") -> httpx.Response:
    return http.put(f"/set/{s.id}/{key}", content=value.encode(), headers={**s.auth, "Content-Type": ctype})


def send_json(http: httpx.Client, method: str, path: str, s: Storage, body: Any, ctype: str = "application/json"
              ) -> httpx.Response:
    import json

    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http.request(method, path, content=raw, headers={**s.auth, "Content-Type": ctype})


def empty(r: httpx.Response, status: int) -> None:
    """``status`` with the empty body every error (and every plain success) of the service has."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.content == b""


def history_items(http: httpx.Client, s: Storage, query: str = "") -> list[dict[str, Any]]:
    r = http.get(f"/history/{s.id}?size=1000{query}", headers=s.auth)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


# -- the routes ------------------------------------------------------------------------------------------


def test_url_is_the_mount(kv_server: Server, storage: Storage) -> None:
    assert storage.url == f"http://127.0.0.1:{kv_server.port}/kv/"


def test_single_key_set_get_delete(http: httpx.Client, storage: Storage) -> None:
    for ctype in ("text/plain", "text/plain; charset=utf-8", "Text/Plain;charset=UTF-8"):
        empty(put_text(http, storage, "greeting", f"héllo wörld ✓ {ctype}", ctype), 200)
        r = http.get(f"/get/{storage.id}/greeting", headers=storage.auth)
        assert r.status_code == 200
        assert r.headers["content-type"] == TEXT_CT
        assert r.content.decode("utf-8") == f"héllo wörld ✓ {ctype}"
    # Wrong or missing content type, a charset that is not UTF-8, a body that is not UTF-8: 400.
    empty(put_text(http, storage, "k", "v", "application/json"), 400)
    empty(put_text(http, storage, "k", "v", "text/plain; charset=iso-8859-1"), 400)
    empty(http.put(f"/set/{storage.id}/k", content=b"v", headers=storage.auth), 400)
    empty(http.put(f"/set/{storage.id}/k", content=b"\xff\xfe", headers={**storage.auth, "Content-Type": "text/plain"}),
          400)
    empty(http.get(f"/get/{storage.id}/k", headers=storage.auth), 404)  # none of them was written
    # An empty value is a value; a key may hold "/" when encoded, and spaces.
    empty(put_text(http, storage, "empty", ""), 200)
    r = http.get(f"/get/{storage.id}/empty", headers=storage.auth)
    assert (r.status_code, r.content) == (200, b"")
    empty(put_text(http, storage, "a%2Fb c", "slash"), 200)
    assert http.post(f"/get/{storage.id}", json=["a/b c"], headers=storage.auth).json() == {"a/b c": "slash"}
    # Delete: 200, then the key is gone; deleting a missing key is 200 too.
    empty(http.delete(f"/delete/{storage.id}/greeting", headers=storage.auth), 200)
    empty(http.get(f"/get/{storage.id}/greeting", headers=storage.auth), 404)
    empty(http.delete(f"/delete/{storage.id}/never-was", headers=storage.auth), 200)


def test_secret_key_401_and_404(http: httpx.Client, storage: Storage, make_storage: Any) -> None:
    empty(put_text(http, storage, "k", "v"), 200)
    missing = "00000000-0000-4000-8000-000000000000"
    routes = [("GET", "/get/{id}/k", None), ("POST", "/get/{id}", b'["k"]'), ("PUT", "/set/{id}/k", b"v"),
              ("PUT", "/set/{id}", b'{"k":"v"}'), ("DELETE", "/delete/{id}/k", None), ("POST", "/delete/{id}", b'["k"]'),
              ("GET", "/list/{id}", None), ("POST", "/clear/{id}", None), ("GET", "/history/{id}", None),
              ("PUT", "/storage/{id}?ttl=1000", None), ("DELETE", "/storage/{id}", None)]
    for method, path, body in routes:
        ctype = {"/set/{id}/k": "text/plain"}.get(path, "application/json")
        headers = {"Content-Type": ctype} if body is not None else {}
        # No Secret-Key: 401 before anything else, even for a storage that does not exist.
        empty(http.request(method, path.format(id=storage.id), content=body, headers=headers), 401)
        empty(http.request(method, path.format(id=missing), content=body, headers=headers), 401)
        # A wrong key: 401 for a storage that exists, 404 for one that does not.
        wrong = {**headers, "Secret-Key": "not-" + storage.secret}
        empty(http.request(method, path.format(id=storage.id), content=body, headers=wrong), 401)
        empty(http.request(method, path.format(id=missing), content=body, headers=wrong), 404)
    # The right key still reads what nothing above could change.
    assert http.get(f"/get/{storage.id}/k", headers=storage.auth).content == b"v"
    # A key of another storage is a wrong key here.
    other = make_storage()
    empty(http.get(f"/get/{storage.id}/k", headers=other.auth), 401)
    # A missing key of an existing storage: 404.
    empty(http.get(f"/get/{storage.id}/nope", headers=storage.auth), 404)


def test_batch_routes(http: httpx.Client, storage: Storage) -> None:
    long_key = "k" * 513
    r = send_json(http, "PUT", f"/set/{storage.id}", storage, {"a": "1", "b": "2", "ü": "3", long_key: "x"})
    assert r.status_code == 200 and r.headers["content-type"] == JSON_CT
    assert r.json() == {"a": True, "b": True, "ü": True, long_key: False}
    r = send_json(http, "POST", f"/get/{storage.id}", storage, ["a", "ü", "zz", long_key],
                  ctype="application/json; charset=utf-8")
    assert r.status_code == 200 and r.headers["content-type"] == JSON_CT
    assert r.json() == {"a": "1", "ü": "3", "zz": None, long_key: None}
    r = send_json(http, "POST", f"/delete/{storage.id}", storage, ["a", "never-was"])
    assert r.status_code == 200 and r.headers["content-type"] == JSON_CT
    assert r.json() == {"a": True, "never-was": True}  # as the original answers for a missing key
    assert send_json(http, "POST", f"/get/{storage.id}", storage, ["a", "b"]).json() == {"a": None, "b": "2"}
    # Bad requests: wrong content type, bad JSON, the wrong JSON shape.
    for method, path, good in [("POST", f"/get/{storage.id}", ["a"]), ("PUT", f"/set/{storage.id}", {"a": "1"}),
                               ("POST", f"/delete/{storage.id}", ["a"])]:
        empty(send_json(http, method, path, storage, good, ctype="text/plain"), 400)
        empty(send_json(http, method, path, storage, good, ctype="application/json; charset=latin1"), 400)
        empty(send_json(http, method, path, storage, b"{not json"), 400)
        empty(send_json(http, method, path, storage, {"key1": "value1"} if isinstance(good, list) else ["a"]), 400)
        empty(send_json(http, method, path, storage, [1, 2] if isinstance(good, list) else {"a": 1}), 400)
    assert send_json(http, "POST", f"/get/{storage.id}", storage, ["b"]).json() == {"b": "2"}


def test_key_limits(http: httpx.Client, storage: Storage) -> None:
    key512 = "é" * 256  # 512 UTF-8 bytes
    key513 = "é" * 256 + "x"
    empty(put_text(http, storage, key512, "ok"), 200)
    assert http.get(f"/get/{storage.id}/{key512}", headers=storage.auth).content == b"ok"
    empty(put_text(http, storage, key513, "no"), 400)
    empty(put_text(http, storage, "x" * 513, "no"), 400)
    empty(http.put(f"/set/{storage.id}/", content=b"v", headers={**storage.auth, "Content-Type": "text/plain"}), 400)
    r = send_json(http, "PUT", f"/set/{storage.id}", storage, {key512: "a", key513: "b", "": "c", "x": "d"})
    assert r.json() == {key512: True, key513: False, "": False, "x": True}
    # NUL can't be stored on every database: refused on set, never found, on each backend alike.
    empty(put_text(http, storage, "a%00b", "v"), 400)
    empty(put_text(http, storage, "nul", "a\x00b"), 400)
    empty(http.get(f"/get/{storage.id}/a%00b", headers=storage.auth), 404)
    assert send_json(http, "PUT", f"/set/{storage.id}", storage, {"a\x00b": "v", "y": "a\x00"}).json() == {
        "a\x00b": False, "y": False}
    assert send_json(http, "POST", f"/get/{storage.id}", storage, ["a\x00b"]).json() == {"a\x00b": None}
    assert send_json(http, "POST", f"/delete/{storage.id}", storage, ["a\x00b"]).json() == {"a\x00b": False}
    empty(http.delete(f"/delete/{storage.id}/a%00b", headers=storage.auth), 200)
    assert http.get(f"/history/{storage.id}?keys=a%00b", headers=storage.auth).json()["total"] == 0
    keys = http.get(f"/list/{storage.id}", headers=storage.auth).json()
    assert sorted(keys) == sorted([key512, "x"])


def test_limit_settings(http: httpx.Client, admin: CloudStack, storage: Storage) -> None:
    """The original's e2e limits: key 20 bytes, value 20 bytes; a 21-byte key and a 23-byte value give
    400 on single set and false on batch set."""
    try:
        admin.updateConfiguration(name="storage.kv.key.max.bytes", value="20")
        admin.updateConfiguration(name="storage.kv.value.max.bytes", value="20")
        empty(put_text(http, storage, "key123456789123456789", "v"), 400)
        empty(put_text(http, storage, "k", "value123456789123456789"), 400)
        empty(put_text(http, storage, "key12345678912345678", "value123456789123456"), 200)  # 20 and 20
        r = send_json(http, "PUT", f"/set/{storage.id}", storage,
                      {"key123456789123456789": "v", "k": "value123456789123456789", "ok": "fine"})
        assert r.json() == {"key123456789123456789": False, "k": False, "ok": True}
        admin.updateConfiguration(name="storage.kv.value.max.bytes", value="-1")  # unlimited
        empty(put_text(http, storage, "big", "x" * 2_000_000), 200)
        assert len(http.get(f"/get/{storage.id}/big", headers=storage.auth).content) == 2_000_000
    finally:
        admin.updateConfiguration(name="storage.kv.key.max.bytes", value="512")
        admin.updateConfiguration(name="storage.kv.value.max.bytes", value="1048576")
    empty(put_text(http, storage, "key123456789123456789", "v"), 200)
    empty(put_text(http, storage, "big", "x" * 1_048_577), 400)  # the default limit, 1 MiB
    empty(put_text(http, storage, "big", "é" * 524_289), 400)  # 1 MiB + 2 bytes in UTF-8
    empty(put_text(http, storage, "big", "é" * 524_288), 200)


def test_list_streams_every_key_and_clear(http: httpx.Client, storage: Storage) -> None:
    keys = [f"key-{i:05d}" for i in range(2503)]  # past the 1,000-key pages of the listing
    for i in range(0, len(keys), 500):
        r = send_json(http, "PUT", f"/set/{storage.id}", storage, {k: "v" for k in keys[i:i + 500]})
        assert all(r.json().values())
    r = http.get(f"/list/{storage.id}", headers=storage.auth)
    assert r.status_code == 200 and r.headers["content-type"] == JSON_CT
    assert sorted(r.json()) == keys
    empty(http.post(f"/clear/{storage.id}", headers=storage.auth), 200)
    assert http.get(f"/list/{storage.id}", headers=storage.auth).json() == []
    empty(http.post(f"/clear/{storage.id}", headers=storage.auth), 200)  # clearing an empty storage


def test_history_records_as_spec(http: httpx.Client, storage: Storage) -> None:
    """Spec 3.5: what each operation records; one timestamp per request; get and list record nothing."""
    before = int(time.time() * 1000)
    empty(put_text(http, storage, "k1", "v1"), 200)
    send_json(http, "PUT", f"/set/{storage.id}", storage, {"k2": "v2", "k3": "v3", "x" * 513: "bad"})
    empty(http.delete(f"/delete/{storage.id}/k1", headers=storage.auth), 200)
    empty(http.delete(f"/delete/{storage.id}/ghost", headers=storage.auth), 200)
    send_json(http, "POST", f"/delete/{storage.id}", storage, ["k2", "ghost2"])
    http.get(f"/get/{storage.id}/k3", headers=storage.auth)
    send_json(http, "POST", f"/get/{storage.id}", storage, ["k3"])
    http.get(f"/list/{storage.id}", headers=storage.auth)
    empty(http.post(f"/clear/{storage.id}", headers=storage.auth), 200)
    after = int(time.time() * 1000)
    items = history_items(http, storage)
    assert [(i["key"], i["value"], i["operation"]) for i in items] == [
        ("k1", "v1", "set"), ("k2", "v2", "set"), ("k3", "v3", "set"), ("k1", None, "delete"),
        ("ghost", None, "delete"), ("ghost2", None, "delete"), ("k2", None, "delete"), (None, None, "clear"),
    ]
    assert all(set(i) == {"key", "value", "timestamp", "operation"} for i in items)
    assert all(before <= i["timestamp"] <= after for i in items)
    assert items[1]["timestamp"] == items[2]["timestamp"]  # one batch, one timestamp
    assert items[5]["timestamp"] == items[6]["timestamp"]


def test_history_query(http: httpx.Client, storage: Storage) -> None:
    for i in range(6):
        empty(put_text(http, storage, f"k{i % 3}", f"v{i}"), 200)
        time.sleep(0.003)
    empty(http.delete(f"/delete/{storage.id}/k0", headers=storage.auth), 200)
    items = history_items(http, storage)
    assert len(items) == 7
    # No parameters: page 1, size 50 (the default), size = the items in this response.
    r = http.get(f"/history/{storage.id}", headers=storage.auth)
    assert r.headers["content-type"] == JSON_CT
    assert r.json() == {"total": 7, "size": 7, "page": 1, "items": items}
    # Paging.
    page = http.get(f"/history/{storage.id}?size=2&page=3", headers=storage.auth).json()
    assert page == {"total": 7, "size": 2, "page": 3, "items": items[4:6]}
    # Filters: keys (empty items dropped, duplicates once), operations, time range, combined.
    got = history_items(http, storage, "&keys=k1,,k1,k2")
    assert {i["key"] for i in got} == {"k1", "k2"} and len(got) == 4
    assert [i["key"] for i in history_items(http, storage, "&operations=delete")] == ["k0"]
    assert len(history_items(http, storage, "&operations=set,delete&keys=k0")) == 3
    t = items[3]["timestamp"]
    assert history_items(http, storage, f"&start={t}&end={t}") == [i for i in items if i["timestamp"] == t]
    assert history_items(http, storage, f"&start={t}") == [i for i in items if i["timestamp"] >= t]
    assert history_items(http, storage, f"&end={t}") == [i for i in items if i["timestamp"] <= t]
    # Sorting: descending with "-", several fields, exact duplicates allowed.
    desc = history_items(http, storage, "&sort=-timestamp")
    assert [i["timestamp"] for i in desc] == sorted((i["timestamp"] for i in items), reverse=True)
    by_key = history_items(http, storage, "&sort=key,-value,key")
    by_value = sorted((i for i in items if i["value"] is not None), key=lambda i: i["value"], reverse=True)
    by_value += [i for i in items if i["value"] is None]  # missing values last, either way
    assert by_key == sorted(by_value, key=lambda i: i["key"])
    assert [i["operation"] for i in history_items(http, storage, "&sort=operation")][0] == "delete"
    # Bad parameters: 400 with an empty body.
    for bad in ["operations=set,bogus", "start=0", "end=-5", "start=abc", f"start={t + 1}&end={t}", "sort=size",
                "sort=key,-key", "page=0", "page=x", "size=0", "size=-1", "size=1.5", "scroll=0", "scroll=soon",
                "page=99999999999"]:
        empty(http.get(f"/history/{storage.id}?{bad}", headers=storage.auth), 400)


def test_history_refused_without_history_and_for_temp(http: httpx.Client, make_storage: Any) -> None:
    plain = make_storage(history=False)
    empty(put_text(http, plain, "k", "v"), 200)
    empty(http.get(f"/history/{plain.id}", headers=plain.auth), 400)
    temp = make_storage(temp_ttl=600_000)
    empty(put_text(http, temp, "k", "v"), 200)
    empty(http.get(f"/history/{temp.id}", headers=temp.auth), 400)


def test_history_scroll(http: httpx.Client, storage: Storage) -> None:
    send_json(http, "PUT", f"/set/{storage.id}", storage, {f"k{i}": f"v{i}" for i in range(5)})
    first = http.get(f"/history/{storage.id}?scroll=60000&size=2&page=7", headers=storage.auth)  # page ignored
    assert first.status_code == 200 and first.headers["content-type"] == JSON_CT
    body = first.json()
    assert set(body) == {"total", "size", "scrollId", "items"} and body["total"] == 5 and body["size"] == 2
    seen = body["items"]
    empty(put_text(http, storage, "late", "after the scroll opened"), 200)  # not part of the snapshot
    ids = {body["scrollId"]}
    scroll_id = body["scrollId"]
    while True:
        # No Secret-Key needed; a charset parameter is accepted.
        r = http.post("/history", content=f'{{"scrollId":"{scroll_id}","timeout":60000}}'.encode(),
                      headers={"Content-Type": "application/json; charset=utf-8"})
        assert r.status_code == 200 and r.headers["content-type"] == JSON_CT, r.text
        page = r.json()
        assert page["total"] == 5 and page["scrollId"] not in ids
        ids.add(page["scrollId"])
        spent, scroll_id = scroll_id, page["scrollId"]
        empty(http.post("/history", json={"scrollId": spent, "timeout": 1000}), 400)  # each id is used once
        if not page["items"]:
            break
        seen += page["items"]
    assert [i["key"] for i in seen] == [f"k{i}" for i in range(5)]
    # Bad requests.
    empty(http.post("/history", content=b'{"scrollId":"x","timeout":1000}', headers={"Content-Type": "text/plain"}),
          400)
    empty(http.post("/history", content=b"{nope", headers={"Content-Type": "application/json"}), 400)
    for bad in [{"scrollId": scroll_id}, {"timeout": 1000}, {"scrollId": scroll_id, "timeout": 0},
                {"scrollId": scroll_id, "timeout": -1}, {"scrollId": scroll_id, "timeout": "1000"},
                {"scrollId": 5, "timeout": 1000}, ["x"], {"scrollId": "unknown-id", "timeout": 1000}]:
        empty(http.post("/history", json=bad), 400)
    # A scroll expires after its keep-alive.
    r = http.get(f"/history/{storage.id}?scroll=300&size=1", headers=storage.auth).json()
    time.sleep(0.5)
    empty(http.post("/history", json={"scrollId": r["scrollId"], "timeout": 60000}), 400)


def test_temp_storage_ttl_and_delete(http: httpx.Client, admin: CloudStack, make_storage: Any) -> None:
    temp = make_storage(temp_ttl=600_000)
    created = admin.getKvStorage(storageid=temp.id)["kvstorage"]
    expires = created["expirationtimestamp"]
    # expires - old ttl + new ttl: counted from creation (spec 4.4, e2e: 1010000 -> 1565656).
    empty(http.put(f"/storage/{temp.id}?ttl=565656", headers=temp.auth), 200)
    updated = admin.getKvStorage(storageid=temp.id)["kvstorage"]
    assert (updated["ttl"], updated["expirationtimestamp"]) == (565656, expires - 600_000 + 565656)
    assert updated["lastupdated"] >= created["lastupdated"]
    for bad in ["", "?ttl=", "?ttl=10.seconds", "?ttl=abc", "?ttl=0", "?ttl=-5", "?other=1"]:
        empty(http.put(f"/storage/{temp.id}{bad}", headers=temp.auth), 400)
    # Not TEMP: 400 for both storage routes.
    account = make_storage()
    empty(http.put(f"/storage/{account.id}?ttl=1000", headers=account.auth), 400)
    empty(http.delete(f"/storage/{account.id}", headers=account.auth), 400)
    empty(put_text(http, account, "still", "here"), 200)
    # Delete a TEMP storage: at once every route answers 404.
    empty(put_text(http, temp, "k", "v"), 200)
    empty(http.delete(f"/storage/{temp.id}", headers=temp.auth), 200)
    empty(http.get(f"/get/{temp.id}/k", headers=temp.auth), 404)
    empty(http.delete(f"/storage/{temp.id}", headers=temp.auth), 404)
    empty(http.put(f"/storage/{temp.id}?ttl=1000", headers=temp.auth), 404)


def test_expired_temp_storage_refused_at_once(http: httpx.Client, make_storage: Any) -> None:
    temp = make_storage(temp_ttl=2500)
    empty(put_text(http, temp, "k", "v"), 200)
    assert http.get(f"/get/{temp.id}/k", headers=temp.auth).content == b"v"
    deadline = temp.data["expirationtimestamp"] / 1000
    time.sleep(max(0.0, deadline - time.time()) + 0.05)
    empty(http.get(f"/get/{temp.id}/k", headers=temp.auth), 404)  # no sweep needed first
    empty(put_text(http, temp, "k", "v"), 404)
    empty(http.put(f"/storage/{temp.id}?ttl=600000", headers=temp.auth), 404)  # too late to extend


def test_health(http: httpx.Client) -> None:
    r = http.get("/health")
    empty(r, 200)
    r = http.get("/health?detailed=false")
    empty(r, 200)
    r = http.get("/health?detailed=true")
    assert r.status_code == 200 and r.headers["content-type"] == JSON_CT
    body = r.json()
    assert body["status"] == "HEALTHY"
    assert {c["name"] for c in body["checks"]} == {"KV_STORAGE", "KV_ENTRY", "KV_HISTORY", "KV_SCROLL"}
    assert all(c["status"] == "HEALTHY" and c["message"] == "OK" for c in body["checks"])
    empty(http.get("/health?detailed=maybe"), 400)


def test_unknown_routes(http: httpx.Client, storage: Storage) -> None:
    empty(http.get("/nothing/here", headers=storage.auth), 404)
    empty(http.get(f"/get/{storage.id}", headers=storage.auth), 405)  # POST only without a key
    empty(http.post(f"/clear/{storage.id}/k", headers=storage.auth), 405)
    empty(http.post("/health"), 405)


# -- several nodes on one database -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def second_node(kv_server: Server) -> Iterator[str]:
    """``overcast kv serve --processes 2`` on the module server's database: the base URL of its service
    (it answers at ``/`` and ``/kv/`` alike)."""
    port = free_port()
    args = [sys.executable, "-m", "overcast.cli.main", "kv", "serve", "--port", str(port), "--processes", "2",
            "--data-dir", str(kv_server.data_dir)]
    if kv_server.db_url:
        args += ["--db", kv_server.db_url]
    log_path = kv_server.data_dir / f"kv-node-{port}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"kv serve exited:\n{log_path.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"kv serve did not start:\n{log_path.read_text()}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_second_node_and_changes_at_once(http: httpx.Client, admin: CloudStack, account_id: str,
                                         second_node: str, make_storage: Any) -> None:
    """Secret regeneration and deletes through the API take effect at once on another process sharing
    the database (the original's nodes lagged about a minute)."""
    s = make_storage()
    empty(put_text(http, s, "shared", "one database"), 200)
    for base in (second_node, second_node + "/kv"):
        r = httpx.get(f"{base}/get/{s.id}/shared", headers=s.auth)
        assert (r.status_code, r.text, r.headers["content-type"]) == (200, "one database", TEXT_CT)
    r = httpx.put(f"{second_node}/set/{s.id}/from-b", content=b"b", headers={**s.auth, "Content-Type": "text/plain"})
    empty(r, 200)
    assert http.get(f"/get/{s.id}/from-b", headers=s.auth).text == "b"
    # Warm every process up with the old key (connections spread over the node's two), then regenerate.
    for _ in range(6):
        assert httpx.get(f"{second_node}/get/{s.id}/shared", headers=s.auth).status_code == 200
    new = admin.regenerateKvStorageSecretKey(storageid=s.id)["kvstorage"]["secretkey"]
    assert new != s.secret
    for base in (f"http://127.0.0.1:{http.base_url.port}/kv", second_node, second_node, second_node):
        empty(httpx.get(f"{base}/get/{s.id}/shared", headers=s.auth), 401)
        r = httpx.get(f"{base}/get/{s.id}/shared", headers={"Secret-Key": new})
        assert (r.status_code, r.text) == (200, "one database")
    # Deleting the storage through the API: 404 at once on both nodes.
    admin.deleteAccountKvStorage(accountid=account_id, storageid=s.id)
    for base in (f"http://127.0.0.1:{http.base_url.port}/kv", second_node):
        empty(httpx.get(f"{base}/get/{s.id}/shared", headers={"Secret-Key": new}), 404)
    # The second node's own health.
    r = httpx.get(f"{second_node}/health?detailed=true")
    assert r.status_code == 200 and r.json()["status"] == "HEALTHY"


def test_concurrent_writes_keep_every_record(http: httpx.Client, storage: Storage) -> None:
    """Sets of one key and overlapping batches from many clients at once: every request succeeds (the
    upsert is atomic on every database) and every change has its history record."""
    from concurrent.futures import ThreadPoolExecutor

    base = str(http.base_url).rstrip("/")

    def single(i: int) -> int:
        r = httpx.put(f"{base}/set/{storage.id}/hot", content=f"v{i}".encode(),
                      headers={**storage.auth, "Content-Type": "text/plain"}, timeout=60)
        return r.status_code

    def batch(i: int) -> int:
        r = httpx.put(f"{base}/set/{storage.id}", json={"hot": f"b{i}", f"own{i}": "x", "shared": f"s{i}"},
                      headers=storage.auth, timeout=60)
        return r.status_code if r.status_code != 200 or all(r.json().values()) else -1

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(single, range(60))) + list(pool.map(batch, range(30)))
    assert statuses == [200] * 90
    items = history_items(http, storage)
    assert len(items) == 60 + 30 * 3
    assert sum(1 for i in items if i["key"] == "hot") == 90
    assert sorted(i["value"] for i in items if i["key"] == "hot") == sorted(
        [f"v{i}" for i in range(60)] + [f"b{i}" for i in range(30)])
    final = http.get(f"/get/{storage.id}/hot", headers=storage.auth).text
    assert final in {f"v{i}" for i in range(60)} | {f"b{i}" for i in range(30)}
