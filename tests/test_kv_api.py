"""The KV storage API (the 18 commands of the Generic KV Storage extension) and the storages' lifecycle,
through the `cs` client and the KV HTTP service (httpx) against a real sandbox server of this module's own
(its KV settings are changed here)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cs import CloudStack, CloudStackApiException
from sqlalchemy import create_engine, text

from conftest import Tenant, client, tenant_factory, unique
from overcast.api.commands import load_all
from overcast.api.declare import registry
from servers import Server

load_all()

COMMANDS = {  # name -> async
    "createAccountKvStorage": True, "deleteAccountKvStorage": True, "listAccountKvStorages": False,
    "createTempKvStorage": True, "updateTempKvStorage": False, "deleteTempKvStorage": True, "getKvStorage": False,
    "regenerateKvStorageSecretKey": False, "getKvStorageValue": False, "getKvStorageValues": False,
    "setKvStorageValue": False, "setKvStorageValues": False, "deleteKvStorageKey": False,
    "deleteKvStorageKeys": False, "listKvStorageKeys": False, "clearKvStorage": False, "getKvStorageHistory": False,
    "scrollKvStorageHistory": False,
}
STORAGE_FIELDS = {"id", "type", "deleted", "secretkey", "account", "name", "description", "historyenabled", "ttl",
                  "expirationtimestamp", "lastupdated", "url"}


# -- fixtures and helpers ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kv_server(server_factory: Any) -> Server:
    return server_factory(extra_args=["--sandbox"])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def admin(kv_server: Server) -> CloudStack:
    return client(kv_server, kv_server.api_key, kv_server.secret_key)


@pytest.fixture(scope="module")
def make_user(kv_server: Server, admin: CloudStack) -> Callable[..., Tenant]:
    return tenant_factory(kv_server, admin)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def user(make_user: Callable[..., Tenant]) -> Tenant:
    return make_user()


@pytest.fixture(scope="module")
def catalog(admin: CloudStack) -> dict[str, str]:
    zone = next(z["id"] for z in admin.listZones()["zone"] if z["networktype"] == "Advanced")
    template = next(t["id"] for t in admin.listTemplates(templatefilter="featured")["template"]
                    if t["name"].startswith("CentOS"))
    small = next(o["id"] for o in admin.listServiceOfferings()["serviceoffering"] if o["name"] == "Small Instance")
    return {"zone": zone, "template": template, "small": small}


def db_rows(server: Server, sql: str, **params: Any) -> list[Any]:
    """Run one statement on the server's database (rows for a SELECT), as a crash or an operator might."""
    engine = create_engine(server.db_url or f"sqlite:///{server.data_dir / 'overcast.db'}")
    with engine.begin() as c:
        result = c.execute(text(sql), params)
        rows = [tuple(r) for r in result] if result.returns_rows else []
    engine.dispose()
    return rows


def error_of(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(CloudStackApiException) as err:
        call()
    return err.value.error  # type: ignore[no-any-return]


def wait_for(check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def not_exist(call: Callable[[], Any]) -> None:
    err = error_of(call)
    assert err["errorcode"] == 431 and err["cserrorcode"] == 4350, err
    assert err["errortext"] == "The KV storage does not exist", err


def check_shape(command: str, body: dict[str, Any]) -> None:
    """Every field of the answer is declared for the command, with its declared JSON type."""
    cls = registry.get(command)
    assert cls is not None
    fields = {f.name: f for f in cls.response.all_fields()}
    for key, value in body.items():
        assert key in fields, f"{command}: undeclared field {key}"
        jtype = fields[key].type
        if jtype == "string":
            assert isinstance(value, str), (command, key, value)
        elif jtype in ("integer", "long"):
            assert isinstance(value, int) and not isinstance(value, bool), (command, key, value)
        elif jtype == "boolean":
            assert isinstance(value, bool), (command, key, value)
        elif jtype == "map":
            assert isinstance(value, dict), (command, key, value)
        elif jtype == "list":
            assert isinstance(value, list), (command, key, value)


def check_storage(storage: dict[str, Any], kind: str, server: Server) -> None:
    check_shape("getKvStorage", storage)
    assert set(storage) <= STORAGE_FIELDS
    assert storage["type"] == kind
    assert len(storage["secretkey"]) == 86
    assert storage["url"] == f"http://127.0.0.1:{server.port}/kv/"
    assert ("ttl" in storage) == ("expirationtimestamp" in storage) == (kind == "TEMP")
    assert ("name" in storage) == ("account" in storage) == (kind == "ACCOUNT")


def kv_http(storage: dict[str, Any]) -> httpx.Client:
    return httpx.Client(base_url=storage["url"], headers={"Secret-Key": storage["secretkey"]}, timeout=10,
                        follow_redirects=False)


# -- the commands ---------------------------------------------------------------------------------------------


def test_listapis_declares_the_18_commands(user: Tenant) -> None:
    apis = {a["name"]: a for a in user.api.listApis()["api"]}
    for name, is_async in COMMANDS.items():
        assert name in apis, name
        assert apis[name]["isasync"] is is_async, name
    params = {p["name"]: p for p in apis["setKvStorageValues"]["params"]}
    assert params["items"]["type"] == "map" and params["items"]["required"] is True
    params = {p["name"]: p for p in apis["getKvStorageHistory"]["params"]}
    assert {params[n]["type"] for n in ("keys", "operations", "sort")} == {"list"}
    assert {params[n]["type"] for n in ("start", "end", "scroll")} == {"long"}
    assert {params[n]["type"] for n in ("page", "size")} == {"integer"}
    assert params["storageid"]["type"] == "string" and params["storageid"]["required"] is True
    create = {p["name"]: p for p in apis["createAccountKvStorage"]["params"]}
    assert create["accountid"]["type"] == "uuid" and create["historyenabled"]["type"] == "boolean"
    assert {p["name"] for p in apis["scrollKvStorageHistory"]["params"]} == {"scrollid", "timeout"}
    response_names = {f["name"] for f in apis["getKvStorage"]["response"]}
    assert STORAGE_FIELDS <= response_names


def test_account_storage_commands(user: Tenant, kv_server: Server) -> None:
    api = user.api
    created = api.createAccountKvStorage(accountid=user.id, name="app", description="settings",
                                         historyenabled=True)["kvstorage"]
    check_storage(created, "ACCOUNT", kv_server)
    assert created["account"] == user.id and created["name"] == "app" and created["description"] == "settings"
    assert created["historyenabled"] is True and created["deleted"] is False and created["lastupdated"] == 0
    sid = created["id"]
    assert api.getKvStorage(storageid=sid)["kvstorage"] == created
    listed = api.listAccountKvStorages(accountid=user.id)
    assert listed["count"] == 1 and listed["kvstorage"] == [created]

    pair = api.setKvStorageValue(storageid=sid, key="colour", value="blue")["kvresult"]
    assert pair == {"key": "colour", "value": "blue"}
    check_shape("setKvStorageValue", pair)
    value = api.getKvStorageValue(storageid=sid, key="colour")
    assert value == {"kvresult": {"value": "blue"}}
    assert api.getKvStorageValue(storageid=sid, key="missing") == {"kverror": {"code": 404}}
    many = api.setKvStorageValues(storageid=sid, items={"a": "1", "b": "two words", "c": "é"})["kvresult"]
    assert many == {"items": {"a": True, "b": True, "c": True}}
    check_shape("setKvStorageValues", many)
    # Only the first map group counts (items[1].* is ignored, as in the original).
    raw = api.setKvStorageValues(storageid=sid, items=[{"d": "4"}, {"e": "5"}])["kvresult"]
    assert raw == {"items": {"d": True}}
    values = api.getKvStorageValues(storageid=sid, keys="a,b,c,nope")["kvresult"]
    assert values == {"items": {"a": "1", "b": "two words", "c": "é"}}  # a missing key has no entry
    check_shape("getKvStorageValues", values)
    keys = api.listKvStorageKeys(storageid=sid)["kvresult"]
    assert sorted(keys["items"]) == ["a", "b", "c", "colour", "d"]
    check_shape("listKvStorageKeys", keys)
    assert api.deleteKvStorageKey(storageid=sid, key="d")["kvresult"] == {"key": "d"}
    deleted = api.deleteKvStorageKeys(storageid=sid, keys="a,b")["kvresult"]
    assert deleted == {"items": {"a": True, "b": True}}
    assert sorted(api.listKvStorageKeys(storageid=sid)["kvresult"]["items"]) == ["c", "colour"]

    # The HTTP service sees what the API wrote, with the secret the API returned.
    with kv_http(created) as http:
        got = http.get(f"get/{sid}/colour")
        assert got.status_code == 200 and got.text == "blue"

    history = api.getKvStorageHistory(storageid=sid)["kvresult"]
    check_shape("getKvStorageHistory", history)
    ops = [(i["operation"], i.get("key"), i.get("value")) for i in history["items"]]
    assert ops == [("set", "colour", "blue"), ("set", "a", "1"), ("set", "b", "two words"), ("set", "c", "é"),
                   ("set", "d", "4"), ("delete", "d", None), ("delete", "a", None), ("delete", "b", None)]
    assert history["total"] == 8 and history["size"] == 8 and history["page"] == 1
    page = api.getKvStorageHistory(storageid=sid, operations="delete", sort="-key", size=2, page=1)["kvresult"]
    assert [i["key"] for i in page["items"]] == ["d", "b"] and page["total"] == 3 and page["size"] == 2
    scroll = api.getKvStorageHistory(storageid=sid, keys="a,b", size=3, scroll=60000)["kvresult"]
    assert scroll["total"] == 4 and scroll["size"] == 3 and "page" not in scroll
    more = api.scrollKvStorageHistory(scrollid=scroll["scrollid"], timeout=60000)["kvresult"]
    check_shape("scrollKvStorageHistory", more)
    assert more["size"] == 1 and more["total"] == 4 and more["scrollid"] != scroll["scrollid"]
    err = error_of(lambda: api.scrollKvStorageHistory(scrollid=scroll["scrollid"], timeout=60000))
    assert err["errorcode"] == 431 and err["errortext"].startswith("Scroll id is invalid or expired"), err
    err = error_of(lambda: api.getKvStorageHistory(storageid=sid, operations="rename"))
    assert err["errorcode"] == 431 and err["errortext"].startswith("Invalid KV history request"), err

    cleared = api.clearKvStorage(storageid=sid)
    assert cleared == {"kvresult": {"success": True}}
    assert api.listKvStorageKeys(storageid=sid)["kvresult"]["items"] == []
    last = api.getKvStorageHistory(storageid=sid, sort="-timestamp", size=1)["kvresult"]["items"][0]
    assert last["operation"] == "clear" and "key" not in last and "value" not in last

    renewed = api.regenerateKvStorageSecretKey(storageid=sid)["kvstorage"]
    assert renewed["secretkey"] != created["secretkey"] and renewed["lastupdated"] > 0
    with kv_http(created) as http:  # the old secret stops working at once
        assert http.get(f"list/{sid}").status_code == 401
    with kv_http(renewed) as http:
        assert http.get(f"list/{sid}").status_code == 200

    assert api.deleteAccountKvStorage(accountid=user.id, storageid=sid) == {"success": True}
    not_exist(lambda: api.getKvStorage(storageid=sid))
    not_exist(lambda: api.setKvStorageValue(storageid=sid, key="k", value="v"))
    listed = api.listAccountKvStorages(accountid=user.id)["kvstorage"]
    assert [(s["id"], s["deleted"]) for s in listed] == [(sid, True)]  # listed until purged
    assert api.deleteAccountKvStorage(accountid=user.id, storageid=sid) == {"success": True}  # again: fine
    events = api.listEvents(resourceid=sid).get("event", [])
    assert {(e["type"], e["state"]) for e in events} >= {("STORAGE.KV.CREATE", "Completed"),
                                                         ("STORAGE.KV.DELETE", "Completed")}, events
    with kv_http(renewed) as http:
        assert http.get(f"list/{sid}").status_code == 404


def test_bad_input_is_refused_cloudstack_style(user: Tenant, make_user: Callable[..., Tenant]) -> None:
    api = user.api
    plain = api.createAccountKvStorage(accountid=user.id, name="plain")["kvstorage"]
    assert plain["historyenabled"] is False
    sid = plain["id"]
    err = error_of(lambda: api.getKvStorageHistory(storageid=sid))
    assert (err["errorcode"], err["errortext"]) == (431, "The KV storage does not support history"), err
    err = error_of(lambda: api.createAccountKvStorage(accountid=user.id, name=" "))
    assert err["errorcode"] == 431 and "name" in err["errortext"], err
    err = error_of(lambda: api.createTempKvStorage(ttl=0))
    assert err["errorcode"] == 431 and "ttl" in err["errortext"], err
    err = error_of(lambda: api.createTempKvStorage(ttl="soon"))
    assert err["errorcode"] == 431 and "ttl" in err["errortext"], err
    err = error_of(lambda: api.setKvStorageValue(storageid=sid, key="é" * 300, value="v"))  # 600 UTF-8 bytes
    assert err["errorcode"] == 431 and err["errortext"].startswith("Key/value pair is invalid"), err
    assert api.setKvStorageValues(storageid=sid, items={"ok": "1", "é" * 300: "2"})["kvresult"]["items"] == {
        "ok": True, "é" * 300: False}
    err = error_of(lambda: api.setKvStorageValues(storageid=sid))
    assert err["errorcode"] == 431 and "items" in err["errortext"], err
    err = error_of(lambda: api.updateTempKvStorage(storageid=sid, ttl=1000))
    assert (err["errorcode"], err["errortext"]) == (431, "The storage type is not temp"), err
    page = api.listAccountKvStorages(accountid=user.id, page=2, pagesize=1)
    assert page["count"] == 2 and len(page["kvstorage"]) == 1  # "app" (deleted, listed) and "plain"
    err = error_of(lambda: api.listAccountKvStorages(accountid=user.id, pagesize=0))
    assert err["errorcode"] == 431, err
    not_exist(lambda: api.getKvStorage(storageid="00000000-0000-0000-0000-000000000000"))
    not_exist(lambda: api.getKvStorageValue(storageid="not-a-storage", key="k"))
    other = make_user()
    err = error_of(lambda: api.deleteAccountKvStorage(accountid=other.id, storageid=sid))
    assert err["errorcode"] == 531, err  # not the caller's account: refused before anything is queued
    err = error_of(lambda: other.api.deleteAccountKvStorage(accountid=other.id, storageid=sid))
    assert err["errortext"] == "The storage does not belong to the specified account", err


def test_temp_storage_ttl_owner_and_immediate_expiry(user: Tenant, make_user: Callable[..., Tenant],
                                                     admin: CloudStack, kv_server: Server) -> None:
    api = user.api
    temp = api.createTempKvStorage(ttl=60000)["kvstorage"]
    check_storage(temp, "TEMP", kv_server)
    assert temp["ttl"] == 60000 and temp["historyenabled"] is False
    created_at = temp["expirationtimestamp"] - 60000
    assert abs(created_at - time.time() * 1000) < 10000
    sid = temp["id"]
    # The new TTL counts from creation, not from now (spec 4.4).
    updated = api.updateTempKvStorage(storageid=sid, ttl=120000)["kvstorage"]
    assert updated["ttl"] == 120000 and updated["expirationtimestamp"] == created_at + 120000
    assert updated["lastupdated"] > 0
    api.setKvStorageValue(storageid=sid, key="k", value="v")
    err = error_of(lambda: api.getKvStorageHistory(storageid=sid))
    assert err["errortext"] == "The KV storage does not support history", err
    # Only the owner (or an admin over it) reaches it through the API; the original let anyone.
    stranger = make_user()
    for call in (lambda: stranger.api.getKvStorage(storageid=sid),
                 lambda: stranger.api.deleteTempKvStorage(storageid=sid),
                 lambda: stranger.api.updateTempKvStorage(storageid=sid, ttl=1),
                 lambda: stranger.api.getKvStorageValue(storageid=sid, key="k")):
        err = error_of(call)
        assert err["errorcode"] == 531 and err["cserrorcode"] == 4365, err
    assert admin.getKvStorage(storageid=sid)["kvstorage"]["id"] == sid
    assert api.deleteTempKvStorage(storageid=sid) == {"success": True}
    not_exist(lambda: api.getKvStorage(storageid=sid))

    # Expiry refuses at once, through the API and over HTTP, before any sweep has run.
    short = api.createTempKvStorage(ttl=1500)["kvstorage"]
    with kv_http(short) as http:
        assert http.put(f"set/{short['id']}/k", content="v", headers={"Content-Type": "text/plain"}).status_code == 200
        assert api.getKvStorageValue(storageid=short["id"], key="k") == {"kvresult": {"value": "v"}}
        time.sleep(max(0.0, (short["expirationtimestamp"] - time.time() * 1000) / 1000) + 0.1)
        assert http.get(f"get/{short['id']}/k").status_code == 404
    not_exist(lambda: api.getKvStorage(storageid=short["id"]))
    not_exist(lambda: api.updateTempKvStorage(storageid=short["id"], ttl=600000))


def test_vm_storage_end_to_end(make_user: Callable[..., Tenant], admin: CloudStack, kv_server: Server,
                               catalog: dict[str, str]) -> None:
    admin.updateConfiguration(name="storage.kv.vm.history.enabled", value="true")
    owner = make_user()
    vm = owner.api.deployVirtualMachine(zoneid=catalog["zone"], templateid=catalog["template"],
                                        serviceofferingid=catalog["small"], name=unique("kv"))["virtualmachine"]
    # Made by the VM.CREATE event (the VM code does not call the KV code).
    storage = wait_for(lambda: _try_get(owner.api, vm["id"]), "the VM storage")
    check_storage(storage, "VM", kv_server)
    assert storage["id"] == vm["id"] and storage["historyenabled"] is True and storage["deleted"] is False
    # A client holding the secret (the VM) writes through the HTTP service...
    with kv_http(storage) as http:
        put = http.put(f"set/{vm['id']}/status", content="ready", headers={"Content-Type": "text/plain"})
        assert put.status_code == 200
        assert http.put(f"set/{vm['id']}/status", content="ready", headers={"Secret-Key": "wrong",
                                                                           "Content-Type": "text/plain"}).status_code == 401
    # ...and the owner reads it, and its history, through the API.
    assert owner.api.getKvStorageValue(storageid=vm["id"], key="status") == {"kvresult": {"value": "ready"}}
    history = owner.api.getKvStorageHistory(storageid=vm["id"])["kvresult"]
    assert [(i["key"], i["value"], i["operation"]) for i in history["items"]] == [("status", "ready", "set")]
    # Stop and start: the same storage (VM.START creates one only when missing).
    owner.api.stopVirtualMachine(id=vm["id"])
    owner.api.startVirtualMachine(id=vm["id"])
    assert owner.api.getKvStorage(storageid=vm["id"])["kvstorage"]["secretkey"] == storage["secretkey"]
    # Expunged: gone through the API and over HTTP.
    admin.destroyVirtualMachine(id=vm["id"], expunge=True)
    with kv_http(storage) as http:
        wait_for(lambda: http.get(f"get/{vm['id']}/status").status_code == 404, "404 after expunge")
    not_exist(lambda: admin.getKvStorage(storageid=vm["id"]))
    err = error_of(lambda: owner.api.getKvStorageValue(storageid=vm["id"], key="status"))
    assert err["errorcode"] == 431, err
    assert db_rows(kv_server, "SELECT deleted FROM kv_storage WHERE uuid = :u", u=vm["id"]) == [(True,)]


def _try_get(api: CloudStack, storage_id: str) -> dict[str, Any] | None:
    try:
        return api.getKvStorage(storageid=storage_id)["kvstorage"]  # type: ignore[no-any-return]
    except CloudStackApiException:
        return None


def test_vm_start_and_reconcile_repair_lost_events(make_user: Callable[..., Tenant], admin: CloudStack,
                                                   kv_server: Server, catalog: dict[str, str]) -> None:
    owner = make_user()
    vm = owner.api.deployVirtualMachine(zoneid=catalog["zone"], templateid=catalog["template"],
                                        serviceofferingid=catalog["small"], startvm=False)["virtualmachine"]
    wait_for(lambda: _try_get(owner.api, vm["id"]), "the VM storage")
    # As if the VM.CREATE event had been lost in a crash: VM.START makes the storage.
    db_rows(kv_server, "DELETE FROM kv_storage WHERE uuid = :u", u=vm["id"])
    assert _try_get(owner.api, vm["id"]) is None
    owner.api.startVirtualMachine(id=vm["id"])
    wait_for(lambda: _try_get(owner.api, vm["id"]), "the VM storage made on start")
    # Lost again, and no event comes: the reconcile task makes it; and it deletes the storage of a VM
    # that no longer exists (a lost VM.EXPUNGE).
    db_rows(kv_server, "DELETE FROM kv_storage WHERE uuid = :u", u=vm["id"])
    ghost = "6f1c1d9e-0000-4000-8000-000000000001"
    acct_id = db_rows(kv_server, "SELECT id, domain_id FROM account WHERE uuid = :u", u=owner.id)[0]
    db_rows(kv_server, "INSERT INTO kv_storage (uuid, kind, account_id, domain_id, history_enabled, secret_key,"
                       " deleted, last_updated_ms, created) VALUES (:u, 'VM', :a, :d, :f, 'x', :f, 0, :c)",
            u=ghost, a=acct_id[0], d=acct_id[1], f=False, c=datetime.now(UTC).replace(tzinfo=None))
    admin.updateConfiguration(name="storage.kv.reconcile.interval", value="1")
    try:
        fresh = wait_for(lambda: _try_get(owner.api, vm["id"]), "the reconcile task")
        assert fresh["type"] == "VM"
        wait_for(lambda: db_rows(kv_server, "SELECT deleted FROM kv_storage WHERE uuid = :u", u=ghost) == [(True,)],
                 "the ghost storage deleted")
    finally:
        admin.resetConfiguration(name="storage.kv.reconcile.interval")
    admin.destroyVirtualMachine(id=vm["id"], expunge=True)


def test_account_deletion_deletes_its_storages_and_purge_removes_them(
        make_user: Callable[..., Tenant], admin: CloudStack, kv_server: Server, catalog: dict[str, str]) -> None:
    doomed = make_user()
    vm = doomed.api.deployVirtualMachine(zoneid=catalog["zone"], templateid=catalog["template"],
                                         serviceofferingid=catalog["small"], startvm=False)["virtualmachine"]
    wait_for(lambda: _try_get(doomed.api, vm["id"]), "the VM storage")
    acct = doomed.api.createAccountKvStorage(accountid=doomed.id, name="data", historyenabled=True)["kvstorage"]
    temp = doomed.api.createTempKvStorage(ttl=3600000)["kvstorage"]
    doomed.api.setKvStorageValues(storageid=acct["id"], items={"x": "1", "y": "2"})
    with kv_http(acct) as http:  # more keys and history than the purge removes per transaction
        bulk = http.put(f"set/{acct['id']}", json={f"bulk-{i}": str(i) for i in range(2500)})
        assert bulk.status_code == 200 and all(bulk.json().values())
    doomed.api.getKvStorageHistory(storageid=acct["id"], size=1, scroll=600000)  # an open scroll
    expired = doomed.api.createTempKvStorage(ttl=1)["kvstorage"]  # expired: purged too
    admin.deleteAccount(id=doomed.id)
    ids = [acct["id"], temp["id"], vm["id"]]
    wait_for(lambda: [r[0] for r in db_rows(kv_server, "SELECT deleted FROM kv_storage WHERE uuid IN (:a, :b, :c)",
                                            a=ids[0], b=ids[1], c=ids[2])] == [True] * 3,
             "the account's storages deleted")
    for sid in ids:
        not_exist(lambda sid=sid: admin.getKvStorage(storageid=sid))
        with kv_http(acct) as http:
            assert http.get(f"list/{sid}").status_code == 404
    internal = db_rows(kv_server, "SELECT id FROM kv_storage WHERE uuid = :u", u=acct["id"])[0][0]
    assert db_rows(kv_server, "SELECT COUNT(*) FROM kv_entry WHERE storage_id = :i", i=internal) == [(2502,)]
    # Kept (and listed with deleted=true) until the purge delay has passed; then gone with their data.
    admin.updateConfiguration(name="storage.kv.purge.delay", value="0")
    admin.updateConfiguration(name="storage.kv.purge.interval", value="1")
    try:
        wait_for(lambda: not db_rows(kv_server, "SELECT id FROM kv_storage WHERE uuid IN (:a, :b, :c, :d)",
                                     a=ids[0], b=ids[1], c=ids[2], d=expired["id"]), "the purge")
        for table in ("kv_entry", "kv_history", "kv_scroll"):
            assert db_rows(kv_server, f"SELECT COUNT(*) FROM {table} WHERE storage_id = :i", i=internal) == [(0,)]
    finally:
        admin.resetConfiguration(name="storage.kv.purge.interval")
        admin.resetConfiguration(name="storage.kv.purge.delay")


def test_settings_are_declared_and_bounded(admin: CloudStack) -> None:
    configs = {c["name"]: c for c in admin.listConfigurations(keyword="storage.kv")["configuration"]}
    for name, default in {"storage.kv.vm.history.enabled": None, "storage.kv.url.public": None,
                          "storage.kv.key.max.bytes": "512", "storage.kv.value.max.bytes": "1048576",
                          "storage.kv.purge.interval": None, "storage.kv.purge.delay": None,
                          "storage.kv.reconcile.interval": None}.items():
        assert name in configs, name
        if default is not None:
            assert configs[name]["value"] == default, configs[name]
    err = error_of(lambda: admin.updateConfiguration(name="storage.kv.key.max.bytes", value="513"))
    assert err["errorcode"] == 431 and "512" in err["errortext"], err
    admin.updateConfiguration(name="storage.kv.url.public", value="https://kv.example.com/")
    try:
        temp = admin.createTempKvStorage(ttl=60000)["kvstorage"]
        assert temp["url"] == "https://kv.example.com/"
    finally:
        admin.resetConfiguration(name="storage.kv.url.public")
