"""Real, unmodified CloudStack clients against a real server: ``cs`` (library and command line),
Apache Libcloud's CloudStack driver, and cloudstack-openapi-ngine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cs import CloudStack, CloudStackApiException

from conftest import unique

BIN = Path(sys.executable).parent
NO_SUCH_UUID = "0f0e0d0c-0b0a-4909-8807-060504030201"


def cs_client(server: Any, **kwargs: Any) -> CloudStack:
    return CloudStack(endpoint=server.url, key=server.api_key, secret=server.secret_key, fetch_result=True,
                      timeout=30, poll_interval=0.05, **kwargs)


def cli_env(server: Any, key: str | None = None, secret: str | None = None) -> dict[str, str]:
    """The environment for the ``cs`` and ``cloudstack-openapi`` commands: only our endpoint and keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSTACK_")}
    env.update(CLOUDSTACK_ENDPOINT=server.url, CLOUDSTACK_KEY=key or server.api_key,
               CLOUDSTACK_SECRET=secret or server.secret_key, CLOUDSTACK_TIMEOUT="30")
    return env


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


# -- cs, the library -------------------------------------------------------------------------------


@pytest.fixture(params=["v3-get", "no-v3", "post"])
def cs_api(request: pytest.FixtureRequest, server: Any) -> Iterator[CloudStack]:
    kwargs = {"v3-get": {}, "no-v3": {"expiration": -1}, "post": {"method": "post"}}[request.param]
    api = cs_client(server, **kwargs)
    yield api
    api.session.close()


def test_cs_signs_the_way_we_were_told(cs_api: CloudStack) -> None:
    kind, params = cs_api._prepare_request("listAccounts")
    assert kind == ("data" if cs_api.method == "post" else "params")
    assert ("expires" in params) is (cs_api.expiration.total_seconds() >= 0)


def test_cs_identity_lifecycle(cs_api: CloudStack) -> None:
    api = cs_api
    dom = api.createDomain(name=unique("csdom"))["domain"]
    assert dom["parentdomainname"] == "ROOT" and dom["haschild"] is False
    acct_name = unique("csacct")
    account = api.createAccount(username=acct_name, password="Pa55-word!", email=f"{acct_name}@example.com",
                                firstname="Ada", lastname="Lovelace", accounttype=0, domainid=dom["id"])["account"]
    assert account["name"] == acct_name and account["domainid"] == dom["id"] and account["accounttype"] == 0
    user_name = unique("csuser")
    user = api.createUser(account=acct_name, domainid=dom["id"], username=user_name, password="An0ther pass",
                          email=f"{user_name}@example.com", firstname="Grace", lastname="Hopper")["user"]
    assert user["account"] == acct_name and user["domainid"] == dom["id"]

    updated = api.updateUser(id=user["id"], firstname="Grace B.", lastname="Hopper ~ é")["user"]
    assert (updated["firstname"], updated["lastname"]) == ("Grace B.", "Hopper ~ é")

    users = api.listUsers(domainid=dom["id"], account=acct_name)
    assert users["count"] == 2
    assert {u["username"] for u in users["user"]} == {acct_name, user_name}
    listed = api.listUsers(domainid=dom["id"], fetch_list=True)  # cs pages with page/pagesize
    assert {u["id"] for u in listed} == {u["id"] for u in users["user"]}
    assert api.listUsers(id=user["id"])["user"][0]["lastname"] == "Hopper ~ é"
    accounts = api.listAccounts(domainid=dom["id"])
    assert [a["id"] for a in accounts["account"]] == [account["id"]]
    assert {d["id"] for d in api.listDomains(listall=True, fetch_list=True)} >= {dom["id"]}

    # a non-empty domain can't go: the job fails, and cs reports the failed job
    with pytest.raises(CloudStackApiException) as failed:
        api.deleteDomain(id=dom["id"])
    assert failed.value.args[0] == "Job failure"
    assert failed.value.error["errorcode"] == 536
    assert "account" in failed.value.error["errortext"]

    assert api.deleteUser(id=user["id"]) == {"success": True}
    assert api.deleteAccount(id=account["id"]) == {"success": True}  # async: cs polled queryAsyncJobResult
    assert api.listAccounts(domainid=dom["id"]) == {}
    assert api.deleteDomain(id=dom["id"]) == {"success": True}

    # errors: the HTTP status and the inner dict
    with pytest.raises(CloudStackApiException) as gone:
        api.deleteDomain(id=dom["id"])
    assert gone.value.response.status_code == 431
    assert gone.value.error["errorcode"] == 431
    assert f"Invalid parameter id value={dom['id']}" in gone.value.error["errortext"]
    with pytest.raises(CloudStackApiException) as missing:
        api.createDomain()
    assert missing.value.error == {"uuidList": [], "errorcode": 431, "cserrorcode": 9999, "errortext":
                                   "Unable to execute API command createdomain due to missing parameter name"}


def test_cs_errors_for_bad_credentials_and_roles(server: Any, make_tenant: Any) -> None:
    bad = CloudStack(endpoint=server.url, key=server.api_key, secret="wrong", timeout=30)
    with pytest.raises(CloudStackApiException) as denied:
        bad.listAccounts()
    assert denied.value.error["errorcode"] == 401
    assert denied.value.response.status_code == 401
    bad.session.close()

    tenant = make_tenant()
    with pytest.raises(CloudStackApiException) as forbidden:
        tenant.api.createDomain(name=unique("nope"))
    assert forbidden.value.error["errorcode"] == 401
    assert forbidden.value.error["errortext"] == (
        "The given command 'createDomain' either does not exist, is not available for user.")
    mine = tenant.api.listAccounts()
    assert [a["id"] for a in mine["account"]] == [tenant.id]


def test_cs_async_without_waiting(server: Any, make_domain: Any) -> None:
    api = CloudStack(endpoint=server.url, key=server.api_key, secret=server.secret_key, timeout=30,
                     poll_interval=0.05)
    dom = make_domain()
    handle = api.deleteDomain(id=dom["id"])
    assert list(handle) == ["jobid"]
    result = api._jobresult(handle["jobid"])  # the same polling cs does with fetch_result=True
    assert result == {"success": True}
    job = api.queryAsyncJobResult(jobid=handle["jobid"])
    assert job["jobstatus"] == 1 and job["jobresultcode"] == 0 and job["jobresulttype"] == "object"
    assert job["jobinstancetype"] == "Domain" and job["jobinstanceid"] == dom["id"]
    api.session.close()


# -- cs with a login session --------------------------------------------------------------------------


def test_cs_over_a_login_session(server: Any, make_domain: Any, make_tenant: Any) -> None:
    """cs has no username/password mode (its config knows only key/secret), so log in over HTTP and run
    cs without keys, the session cookies as an extra header (cs's ``headers``/``header_*`` setting; it
    sends prepared requests, so a requests session's cookie jar is not used): no signature, the cookie
    and the ``sessionkey`` parameter authenticate."""
    dom = make_domain()
    tenant = make_tenant(domainid=dom["id"], accounttype=2, password="dom-admin-pw")  # a domain admin
    http = requests.Session()
    r = http.post(server.url, data={"command": "login", "username": tenant.name, "password": "dom-admin-pw",
                                    "domain": f"/{dom['name']}/", "response": "json"}, timeout=30)
    assert r.status_code == 200, r.text
    key = r.json()["loginresponse"]["sessionkey"]
    assert http.cookies.get("sessionkey") == key and http.cookies.get("JSESSIONID")

    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    api = CloudStack(endpoint=server.url, headers={"Cookie": cookie}, timeout=30)
    mine = api.listAccounts(sessionkey=key, listall=True)
    assert [a["id"] for a in mine["account"]] == [tenant.id]
    sub = api.createDomain(name=unique("sub"), parentdomainid=dom["id"], sessionkey=key)["domain"]
    assert sub["parentdomainid"] == dom["id"]
    job = api.deleteDomain(id=sub["id"], sessionkey=key)
    status = api.queryAsyncJobResult(jobid=job["jobid"], sessionkey=key)
    assert status["jobstatus"] in (0, 1)
    with pytest.raises(CloudStackApiException) as no_key:
        api.listAccounts()
    assert no_key.value.error["errorcode"] == 401
    assert api.logout(sessionkey=key) == {"description": "success"}
    with pytest.raises(CloudStackApiException) as after:
        api.listAccounts(sessionkey=key)
    assert after.value.response.status_code == 401
    api.session.close()
    http.close()


# -- cs, the command line -------------------------------------------------------------------------


def test_cs_command_line(server: Any, tmp_path: Path) -> None:
    env = cli_env(server)
    out = run([str(BIN / "cs"), "listAccounts", "listall=true"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["count"] == len(data["account"]) >= 2
    assert {"admin", "system"} <= {a["name"] for a in data["account"]}

    name = unique("clidom")
    made = run([str(BIN / "cs"), "--post", "createDomain", f"name={name}"], env, tmp_path)
    assert made.returncode == 0, made.stderr
    dom = json.loads(made.stdout)["domain"]
    assert dom["name"] == name
    deleted = run([str(BIN / "cs"), "deleteDomain", f"id={dom['id']}"], env, tmp_path)  # polls the job
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout) == {"success": True}

    failed = run([str(BIN / "cs"), "createDomain"], env, tmp_path)
    assert failed.returncode != 0
    assert "HTTP 431 response from CloudStack" in failed.stderr
    assert json.loads(failed.stdout)["createdomainresponse"]["errortext"] == (
        "Unable to execute API command createdomain due to missing parameter name")

    denied = run([str(BIN / "cs"), "listAccounts"], cli_env(server, secret="wrong"), tmp_path)
    assert denied.returncode != 0
    assert json.loads(denied.stdout)["listaccountsresponse"]["errorcode"] == 401


# -- Apache Libcloud ---------------------------------------------------------------------------------


@pytest.fixture
def libcloud_driver(server: Any) -> Iterator[Any]:
    from libcloud.compute.providers import get_driver
    from libcloud.compute.types import Provider

    cls = get_driver(Provider.CLOUDSTACK)
    driver = cls(server.api_key, server.secret_key, host="127.0.0.1", port=server.port, path="/client/api",
                 secure=False)
    driver.connection.poll_interval = 0.05
    yield driver
    conn = getattr(driver.connection, "connection", None)
    if conn is not None:
        conn.session.close()


def test_libcloud(libcloud_driver: Any, server: Any) -> None:
    from libcloud.common.types import InvalidCredsError, ProviderError

    driver = libcloud_driver
    accounts = driver._sync_request("listAccounts", params={"listall": True})
    assert accounts["count"] == len(accounts["account"]) >= 2
    # libcloud signs with keys sorted lower-cased and leaves [] and ~ raw
    name = unique("lcdom") + " ~[x]"
    dom = driver._sync_request("createDomain", params={"name": name})["domain"]
    assert dom["name"] == name
    found = driver._sync_request("listDomains", params={"listAll": True, "Name": name})
    assert [d["id"] for d in found["domain"]] == [dom["id"]]
    assert driver._async_request("deleteDomain", params={"id": dom["id"]}) == {"success": True}
    assert driver._sync_request("listDomains", params={"listall": True, "name": name}) == {}

    with pytest.raises(ProviderError) as missing:
        driver._sync_request("createDomain")
    assert missing.value.http_code == 431
    assert missing.value.value == "Unable to execute API command createdomain due to missing parameter name"
    with pytest.raises(ProviderError) as unknown:
        driver._sync_request("updateDomain", params={"id": NO_SUCH_UUID, "name": "x"})
    assert unknown.value.http_code == 431
    # a failed job: libcloud raises a plain Exception with the job's errortext
    busy = driver._sync_request("createDomain", params={"name": unique("lcbusy")})["domain"]
    driver._sync_request("createDomain", params={"name": unique("lcchild"), "parentdomainid": busy["id"]})
    with pytest.raises(Exception, match="child domain") as job_failed:
        driver._async_request("deleteDomain", params={"id": busy["id"]})
    assert not isinstance(job_failed.value, ProviderError)
    assert driver._async_request("deleteDomain", params={"id": busy["id"], "cleanup": True}) == {"success": True}

    bad = type(driver)(server.api_key, "wrong-secret", host="127.0.0.1", port=server.port,
                       path="/client/api", secure=False)
    with pytest.raises(InvalidCredsError):
        bad._sync_request("listAccounts")
    bad.connection.connection.session.close()


# -- cloudstack-openapi-ngine ---------------------------------------------------------------------------


def test_cloudstack_openapi_document(server: Any, tmp_path: Path) -> None:
    dump = tmp_path / "listapis.json"
    out = run([str(BIN / "cloudstack-openapi"), "--format", "json", "--probe-response-keys",
               "--dump-listapis", str(dump), "-q"], cli_env(server), tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["version"] == "4.22.0.0"  # from listCapabilities
    paths = doc["paths"]
    for command in ("listAccounts", "createDomain", "deleteAccount", "listApis"):
        op = paths[f"/{command}"]["get"]
        assert op["operationId"] == command
        assert op["x-cloudstack-command"] == command
    assert paths["/deleteAccount"]["get"]["x-cloudstack-async"] is True
    assert paths["/createDomain"]["get"]["x-cloudstack-async"] is False
    create_params = {p.get("name"): p for p in paths["/createDomain"]["get"]["parameters"]}
    assert create_params["name"]["required"] is True
    assert "parentdomainid" in create_params
    ok = paths["/listAccounts"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    listed = ok["properties"]["listaccountsresponse"]["properties"]
    assert listed["count"]["type"] == "integer"
    assert listed["account"]["type"] == "array"  # the probe learned the payload key from a real call
    saved = json.loads(dump.read_text())
    assert saved["count"] == len(saved["api"]) == len(paths)
