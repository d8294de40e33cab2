"""Running the server: settings sources, the access log, secrets kept out of logs, proxies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from cs import CloudStack
from sqlalchemy import create_engine, text

from overcast.access.signing import sign
from overcast.config.server import load_settings
from servers import Server, free_port


def signed(server: Server, key: str, secret: str, **params: str) -> list[tuple[str, str]]:
    pairs = [("apiKey", key), ("response", "json"), *params.items()]
    return [*pairs, ("signature", sign(pairs, secret))]


@pytest.fixture(scope="module")
def debug_server(server_factory: Any) -> Server:
    return server_factory(extra_args=["--log-level", "DEBUG"])  # type: ignore[no-any-return]


def test_access_log_line_and_no_secrets_in_logs(debug_server: Server) -> None:
    srv = debug_server
    password = "Very-Secret-Password-42"
    api = CloudStack(endpoint=srv.url, key=srv.api_key, secret=srv.secret_key, fetch_result=True)
    account = api.createAccount(username="logcheck", password=password, email="l@example.com",
                                firstname="L", lastname="C", accounttype=0)["account"]
    keys = api.registerUserKeys(id=account["user"][0]["id"])["userkeys"]
    login = httpx.post(srv.url, data={"command": "login", "username": "logcheck", "password": password,
                                      "response": "json"})
    assert login.status_code == 200
    session_key = login.json()["loginresponse"]["sessionkey"]
    httpx.post(srv.url, data={"command": "login", "username": "logcheck", "password": "wrong-" + password,
                              "response": "json"})
    # The first-start banner prints the admin keys once, by design; everything after it is logging.
    log = srv.log().split("listening on", 1)[1]
    # One access-log line per request, with command, caller, status and milliseconds.
    assert "command=createAccount caller=admin@/ status=200 ms=" in log
    assert "command=login caller=logcheck@/ status=200" in log
    assert "command=login caller=- status=531" in log
    # DEBUG logs the parameters, masked.
    assert "password=*****" in log
    for secret in (password, srv.secret_key, keys["secretkey"], session_key, keys["apikey"]):
        assert secret not in log


def test_forwarded_for_ignored_unless_peer_is_a_trusted_proxy(admin: CloudStack, server: Server) -> None:
    def login_event_ip(headers: dict[str, str]) -> str:
        r = httpx.post(server.url, data={"command": "login", "username": "admin", "password": "password",
                                         "response": "json"}, headers=headers)
        assert r.status_code == 200
        events = admin.listEvents(type="USER.LOGIN", pagesize=1, page=1)["event"]
        return str(events[0]["description"]).rsplit(" ", 1)[-1]

    assert login_event_ip({"X-Forwarded-For": "203.0.113.9"}) == "127.0.0.1"
    admin.updateConfiguration(name="proxy.header.verify", value="true")
    try:
        admin.updateConfiguration(name="proxy.cidr", value="10.0.0.0/8")
        assert login_event_ip({"X-Forwarded-For": "203.0.113.9"}) == "127.0.0.1"  # peer not a proxy
        admin.updateConfiguration(name="proxy.cidr", value="127.0.0.0/8")
        assert login_event_ip({"X-Forwarded-For": "203.0.113.9, 127.0.0.1"}) == "203.0.113.9"
        assert login_event_ip({"X-Forwarded-For": "not-an-ip"}) == "127.0.0.1"
    finally:
        admin.updateConfiguration(name="proxy.header.verify", value="false")
        admin.resetConfiguration(name="proxy.cidr")


def test_passwords_are_stored_with_scrypt(server: Server, backend: str) -> None:
    url = server.db_url or f"sqlite:///{server.data_dir / 'overcast.db'}"
    engine = create_engine(url)
    with engine.connect() as c:
        stored = c.execute(text('SELECT password_hash FROM "user" WHERE username = :u'
                                if backend != "mariadb" else
                                "SELECT password_hash FROM `user` WHERE username = :u"), {"u": "admin"}).scalar()
    engine.dispose()
    assert stored.startswith("scrypt$") and "password" not in stored


def test_admin_keys_command_prints_the_seeded_keys(server: Server) -> None:
    assert server.admin_keys() == (server.api_key, server.secret_key)


def test_db_upgrade_is_idempotent(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "overcast.cli.main", "db", "upgrade", "--data-dir", str(tmp_path)]
    first = subprocess.run(cmd, capture_output=True, text=True, check=True)
    second = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert "Admin API key" in first.stdout and "Admin API key" not in second.stdout
    assert "Database at revision" in second.stdout


def test_settings_file_then_environment_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "overcast.toml"
    cfg.write_text('[server]\nport = 9001\nhost = "0.0.0.0"\njob_workers = 2\n')
    monkeypatch.setenv("OVERCAST_JOB_WORKERS", "7")
    settings = load_settings(cfg, port=9100)
    assert (settings.host, settings.port, settings.job_workers) == ("0.0.0.0", 9100, 7)
    monkeypatch.setenv("OVERCAST_CONFIG", str(cfg))
    assert load_settings().port == 9001


def test_server_reads_its_config_file(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "overcast.toml"
    cfg.write_text(f'[server]\nport = {port}\ndata_dir = "{tmp_path / "data"}"\n')
    srv = Server(data_dir=tmp_path, port=port)
    srv.extra_args = ["--config", str(cfg)]
    # --data-dir from the harness wins over the file; the port comes from the file.
    srv.start()
    try:
        r = httpx.get(srv.url, params=signed(srv, srv.api_key, srv.secret_key, command="listCapabilities"))
        assert r.status_code == 200
    finally:
        srv.stop()


def test_settings_at_zone_and_cluster_scope(sandbox_admin: CloudStack, sandbox: Any) -> None:
    api, zone = sandbox_admin, sandbox.advanced_zone
    answer = api.updateConfiguration(name="vm.allocation.algorithm", value="firstfit", zoneid=zone)["configuration"]
    assert (answer["value"], answer["scope"]) == ("firstfit", "Zone")
    listed = api.listConfigurations(name="vm.allocation.algorithm", zoneid=zone)["configuration"][0]
    assert listed["value"] == "firstfit"
    assert api.listConfigurations(name="vm.allocation.algorithm")["configuration"][0]["value"] == "random"
    with pytest.raises(Exception) as err:
        api.updateConfiguration(name="expunge.delay", value="5", zoneid=zone)
    assert err.value.error["errorcode"] == 431 and "zone scope" in err.value.error["errortext"]  # type: ignore[attr-defined]
    cluster = api.listClusters(zoneid=zone)["cluster"][0]["id"]
    answer = api.updateConfiguration(name="cpu.overprovisioning.factor", value="2.5", clusterid=cluster)
    assert answer["configuration"]["value"] == "2.5"
    api.resetConfiguration(name="cpu.overprovisioning.factor", clusterid=cluster)
    api.resetConfiguration(name="vm.allocation.algorithm", zoneid=zone)
    assert api.listConfigurations(name="vm.allocation.algorithm", zoneid=zone)["configuration"][0]["value"] == "random"
