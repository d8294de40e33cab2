"""The wire contract, over real HTTP against a real server (spec api-protocol.md sections 1, 2, 4, 5).

Requests are built and signed here by hand (httpx + ``overcast.access.signing.sign`` or an
independent re-implementation of a client's canonical form), and assertions are on the exact bytes a
client sees: status codes, headers, JSON keys and error texts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest

from overcast.access.signing import sign

JSON_TYPE = "application/json; charset=UTF-8"
XML_TYPE = "text/xml; charset=UTF-8"
UNAUTHORIZED = "unable to verify user credentials and/or request signature"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4}$")
NO_SUCH_UUID = "0f0e0d0c-0b0a-4909-8807-060504030201"

Pairs = list[tuple[str, str]]


# -- signing helpers, written from the spec (independent of the server's own code) ---------------


def java_canonical(pairs: Sequence[tuple[str, str]]) -> str:
    """ApiServer.verifyRequest: raw names sorted case-sensitively, values through Java's URLEncoder
    (``~`` encoded, space as %20), the whole string lower-cased."""
    items = sorted((k, v) for k, v in pairs if k.lower() != "signature")

    def enc(v: str) -> str:
        return quote_plus(v, safe="*").replace("~", "%7E").replace("+", "%20")

    return "&".join(f"{k}={enc(v)}" for k, v in items).lower()


def libcloud_canonical(pairs: Sequence[tuple[str, str]]) -> str:
    """libcloud ``CloudStackConnection._make_signature``: sorted by lower-cased name, ``~`` and ``[]`` raw."""
    items = sorted(((k.lower(), v) for k, v in pairs if k.lower() != "signature"), key=lambda kv: kv[0])
    text = "&".join(f"{quote(k, safe='[]')}={quote(v, safe='[]*~')}" for k, v in items)
    return text.lower().replace("+", "%20")


def hmac_b64(secret: str, text: str, digest: Any = hashlib.sha1) -> str:
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), digest).digest()).decode()


def expires_in(seconds: float, fmt: str = "%Y-%m-%dT%H:%M:%S+0000") -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime(fmt)


# -- a tiny client -------------------------------------------------------------------------------


class Api:
    """Signed calls with one key pair; every call returns the raw httpx response."""

    def __init__(self, url: str, key: str, secret: str) -> None:
        self.url, self.key, self.secret = url, key, secret

    def pairs(self, command: str, params: dict[str, Any] | Pairs | None = None, *,
              response: str | None = "json") -> Pairs:
        items = list(params.items()) if isinstance(params, dict) else list(params or [])
        out: Pairs = [("command", command), ("apiKey", self.key)]
        if response is not None:
            out.append(("response", response))
        out += [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in items]
        return out

    def send(self, pairs: Pairs, *, method: str = "GET", signature: str | None = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        sig = sign(pairs, self.secret) if signature is None else signature
        full = [*pairs, ("signature", sig)] if sig else list(pairs)
        return raw(self.url, full, method=method, headers=headers)

    def get(self, command: str, params: dict[str, Any] | Pairs | None = None, **kw: Any) -> httpx.Response:
        return self.send(self.pairs(command, params, response=kw.pop("response", "json")), **kw)

    def post(self, command: str, params: dict[str, Any] | Pairs | None = None, **kw: Any) -> httpx.Response:
        return self.send(self.pairs(command, params, response=kw.pop("response", "json")), method="POST", **kw)

    def ok(self, command: str, params: dict[str, Any] | Pairs | None = None, **kw: Any) -> dict[str, Any]:
        """The inner response of a call that must succeed."""
        r = self.get(command, params, **kw)
        assert r.status_code == 200, r.text
        body = r.json()
        assert list(body) == [command.lower() + "response"], body
        return body[command.lower() + "response"]  # type: ignore[no-any-return]


def raw(url: str, pairs: Pairs, *, method: str = "GET", headers: dict[str, str] | None = None,
        query: Pairs | None = None) -> httpx.Response:
    """GET with ``pairs`` as the query, or POST with them as a form body (``query`` stays in the URL)."""
    if method == "GET":
        return httpx.get(url, params=[*(query or []), *pairs], headers=headers, timeout=30)
    return httpx.post(url, params=query or None, data=dict(pairs), headers=headers, timeout=30)


def wait_job(api: Api, jobid: str, timeout: float = 20.0) -> dict[str, Any]:
    """Poll queryAsyncJobResult until the job is no longer pending."""
    deadline = time.monotonic() + timeout
    while True:
        job = api.ok("queryAsyncJobResult", {"jobid": jobid})
        if job["jobstatus"] != 0 or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def error_of(r: httpx.Response, key: str, code: int) -> dict[str, Any]:
    """The inner error dict, after checking status = errorcode, the envelope key and X-Description."""
    assert r.status_code == code, r.text
    assert r.headers["content-type"] == JSON_TYPE
    body = r.json()
    assert list(body) == [key], body
    inner = body[key]
    assert inner["errorcode"] == code
    assert inner["uuidList"] == []
    assert r.headers["x-description"] == inner["errortext"]
    return inner  # type: ignore[no-any-return]


def assert_unauthorized(r: httpx.Response, key: str) -> None:
    assert r.status_code == 401, r.text
    assert r.json() == {key: {"uuidList": [], "errorcode": 401, "errortext": UNAUTHORIZED}}


@pytest.fixture(scope="module")
def api(server: Any) -> Api:
    return Api(server.url, server.api_key, server.secret_key)


@pytest.fixture(scope="module")
def user_api(server: Any, make_tenant: Any) -> Api:
    """A plain user (account type 0) with its own keys."""
    tenant = make_tenant()
    return Api(server.url, tenant.api.key, tenant.api.secret)


# == 1. request format ============================================================================


def test_get_and_form_post_answer_the_same(api: Api) -> None:
    got = api.get("listAccounts", {"listall": True})
    posted = api.post("listAccounts", {"listall": True})
    assert got.status_code == posted.status_code == 200
    assert got.json() == posted.json()
    assert got.json()["listaccountsresponse"]["count"] >= 2


def test_query_string_and_form_body_are_merged(api: Api) -> None:
    pairs = api.pairs("listAccounts", {"listall": "true", "name": "admin"})
    pairs.append(("signature", sign(pairs, api.secret)))
    in_query = [p for p in pairs if p[0] in ("command", "apiKey", "signature")]
    in_body = [p for p in pairs if p[0] not in ("command", "apiKey", "signature")]
    r = raw(api.url, in_body, method="POST", query=in_query)
    assert r.status_code == 200, r.text
    accounts = r.json()["listaccountsresponse"]["account"]
    assert [a["name"] for a in accounts] == ["admin"]  # the body's name= filter was applied


def test_parameter_names_are_case_insensitive(api: Api, make_domain: Any, make_tenant: Any) -> None:
    dom = make_domain()
    tenant = make_tenant(domainid=dom["id"])
    plain = {a["id"] for a in api.ok("listAccounts").get("account", [])}
    assert tenant.id not in plain  # admin's own domain only without listall
    mixed = api.ok("listAccounts", [("ListAll", "TRUE")])
    assert tenant.id in {a["id"] for a in mixed["account"]}
    by_domain = api.ok("listAccounts", [("DomainId", dom["id"])])
    assert [a["id"] for a in by_domain["account"]] == [tenant.id]
    # the control names too: RESPONSE=json picks JSON, Command is read case-insensitively as a name
    r = api.send([("command", "listAccounts"), ("APIKEY", api.key), ("Response", "json"), ("NAME", "admin")])
    assert r.status_code == 200, r.text
    assert [a["name"] for a in r.json()["listaccountsresponse"]["account"]] == ["admin"]


def test_unknown_parameters_are_ignored(api: Api) -> None:
    body = api.ok("listAccounts", {"name": "admin", "nosuchparam": "x", "_": "1700000000"})
    assert [a["name"] for a in body["account"]] == ["admin"]


def test_response_value_is_case_insensitive(api: Api) -> None:
    r = api.get("listCapabilities", response="JSON")
    assert r.headers["content-type"] == JSON_TYPE
    assert "capability" in r.json()["listcapabilitiesresponse"]


def test_map_parameters_are_decoded(api: Api) -> None:
    name = f"mapacct-{datetime.now(UTC).strftime('%H%M%S%f')}"
    params: Pairs = [("username", name), ("password", "pw-123456"), ("email", f"{name}@example.com"),
                     ("firstname", "Map"), ("lastname", "Test"), ("accounttype", "0"),
                     ("AccountDetails[0].key", "tier"), ("AccountDetails[0].value", "gold"),
                     ("accountdetails[1].cpuNumber", "2")]
    acct = api.ok("createAccount", params)["account"]
    assert acct["name"] == name
    # a map key never stands in for the plain parameter of the same name
    inner = error_of(api.get("createDomain", [("name[0].value", "x")]), "createdomainresponse", 431)
    assert inner["errortext"] == "Unable to execute API command createdomain due to missing parameter name"
    job = api.ok("deleteAccount", {"id": acct["id"]})
    assert list(job) == ["jobid"] and UUID_RE.match(job["jobid"])
    assert wait_job(api, job["jobid"])["jobresult"] == {"success": True}


@pytest.mark.parametrize("key", ["details[x].a", "details[0]", "details[0][1].a", "details]0[.a", "details[0]a"])
def test_malformed_map_keys_are_430(api: Api, key: str) -> None:
    inner = error_of(api.get("listAccounts", [(key, "v")]), "listaccountsresponse", 430)
    assert inner["errortext"].startswith("Unable to decode parameter details")
    assert "parameter[index].field=XXX" in inner["errortext"]


@pytest.mark.parametrize("char", ["\x00", "\x01", "\t", "\x0b", "\x1f", "\x7f"])
def test_control_characters_are_431(api: Api, char: str) -> None:
    inner = error_of(api.get("listAccounts", {"keyword": f"a{char}b"}), "listaccountsresponse", 431)
    assert inner["errortext"] == (
        "Received value containing illegal ASCII non-printable characters for parameter keyword")


def test_newlines_are_not_control_characters(api: Api) -> None:
    assert api.ok("listAccounts", {"keyword": "no\r\nsuch"}) == {}


# == 1.3 signatures ===============================================================================

CS_VECTORS = [  # cs tests.py (key foo, secret bar, no v3), quoted in spec 1.3
    ([("command", "listVirtualMachines"), ("listall", "true")],
     "apikey=foo&command=listvirtualmachines&listall=true&response=json", "B0d6hBsZTcFVCiioSxzwKA9Pke8="),
    ([("command", "listVirtualMachines"), ("zoneId", "2"), ("templateId", "3"), ("temPlateidd", "4"),
      ("pageSize", "10"), ("page", "1")],
     "apikey=foo&command=listvirtualmachines&page=1&pagesize=10&response=json&templateidd=4&templateid=3&zoneid=2",
     "mMS7XALuGkCXk7kj5SywySku0Z0="),
    ([("command", "listVirtualMachines"), ("listall", "1"), ("unicode_param", "éèààû")],
     "apikey=foo&command=listvirtualmachines&listall=1&response=json&unicode_param=%c3%a9%c3%a8%c3%a0%c3%a0%c3%bb",
     "gABU/KFJKD3FLAgKDuxQoryu4sA="),
    ([("command", "createNetwork"), ("name", ""), ("display_text", "")],
     "apikey=foo&command=createnetwork&display_text=&name=&response=json", "CistTEiPt/4Rv1v4qSyILvPbhmg="),
]


@pytest.mark.parametrize(("params", "canonical", "signature"), CS_VECTORS)
def test_signature_matches_java_canonical_vectors(params: Pairs, canonical: str, signature: str) -> None:
    pairs = [("apiKey", "foo"), ("response", "json"), *params]
    assert java_canonical(pairs) == canonical
    assert sign(pairs, "bar") == signature == hmac_b64("bar", canonical)


def test_server_accepts_the_java_canonical_form(api: Api) -> None:
    # case-sensitive sort puts Keyword before apiKey; the values need Java's encoding (space, ~, *, utf-8)
    pairs = api.pairs("listAccounts", [("Keyword", "no such ~ * é+x"), ("listall", "true"), ("zzz", "a b")])
    assert java_canonical(pairs).startswith("keyword=no%20such%20%7e%20*%20%c3%a9%2bx&apikey=")
    r = api.send(pairs, signature=hmac_b64(api.secret, java_canonical(pairs)))
    assert r.status_code == 200, r.text
    assert r.json() == {"listaccountsresponse": {}}


@pytest.mark.parametrize("digest", [hashlib.sha256, hashlib.sha512], ids=["sha256", "sha512"])
def test_sha256_and_sha512_signatures_are_accepted(api: Api, digest: Any) -> None:
    pairs = api.pairs("listAccounts", {"name": "admin"})
    r = api.send(pairs, signature=hmac_b64(api.secret, java_canonical(pairs), digest))
    assert r.status_code == 200, r.text
    assert [a["name"] for a in r.json()["listaccountsresponse"]["account"]] == ["admin"]


def test_libcloud_ordering_and_raw_tilde_are_accepted(api: Api) -> None:
    # "Zeta" sorts before "apiKey" case-sensitively but after "response" by lower-cased name
    pairs = api.pairs("listAccounts", [("Zeta", "1"), ("keyword", "x~y[0]")])
    lib = libcloud_canonical(pairs)
    assert lib != java_canonical(pairs)
    assert lib.endswith("&response=json&zeta=1") and "keyword=x~y[0]" in lib
    r = api.send(pairs, signature=hmac_b64(api.secret, lib))
    assert r.status_code == 200, r.text
    assert r.json() == {"listaccountsresponse": {}}


def test_wrong_signature_is_401(api: Api) -> None:
    pairs = api.pairs("listAccounts")
    good = sign(pairs, api.secret)
    assert_unauthorized(api.send(pairs, signature=sign(pairs, api.secret + "x")), "listaccountsresponse")
    # a signature over other parameters than those sent
    assert_unauthorized(api.send([*pairs, ("listall", "true")], signature=good), "listaccountsresponse")
    assert_unauthorized(api.send(pairs, signature="not base64!"), "listaccountsresponse")


def test_unknown_api_key_is_401(server: Any) -> None:
    stranger = Api(server.url, "no-such-key", "whatever")
    assert_unauthorized(stranger.get("listAccounts"), "listaccountsresponse")


def test_missing_signature_or_key_is_401(api: Api) -> None:
    assert_unauthorized(api.send(api.pairs("listAccounts"), signature=""), "listaccountsresponse")
    no_key = [("command", "listAccounts"), ("response", "json")]
    assert_unauthorized(raw(api.url, [*no_key, ("signature", sign(no_key, api.secret))]), "listaccountsresponse")
    assert_unauthorized(raw(api.url, no_key), "listaccountsresponse")


@pytest.mark.parametrize("fmt", ["%Y-%m-%dT%H:%M:%S+0000", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S+00:00"])
@pytest.mark.parametrize("version_name", ["signatureVersion", "signatureversion"])
def test_signature_v3_expires_forms_are_accepted(api: Api, fmt: str, version_name: str) -> None:
    r = api.get("listAccounts", {"name": "admin", version_name: "3", "expires": expires_in(600, fmt)})
    assert r.status_code == 200, r.text
    assert r.json()["listaccountsresponse"]["count"] == 1


def test_signature_v3_rejects_past_missing_or_bad_expires(api: Api) -> None:
    for extra in ({"expires": expires_in(-60)}, {}, {"expires": "tomorrow"}):
        r = api.get("listAccounts", {"signatureVersion": "3", **extra})
        assert_unauthorized(r, "listaccountsresponse")
    # without signatureVersion=3 a past expires is not looked at (enforce.post.requests... is off)
    assert api.get("listAccounts", {"expires": expires_in(-60)}).status_code == 200


def test_signature_v3_expires_limited_by_setting(api: Api) -> None:
    far = {"signatureVersion": "3", "expires": expires_in(2 * 3600)}
    assert_unauthorized(api.get("listAccounts", far), "listaccountsresponse")
    assert api.get("listAccounts", {"signatureVersion": "3", "expires": expires_in(3000)}).status_code == 200
    setting = "api.request.expires.max.seconds"
    listed = api.ok("listConfigurations", {"name": setting})["configuration"]
    assert next(c for c in listed if c["name"] == setting)["value"] == "3600"
    updated = api.ok("updateConfiguration", {"name": setting, "value": "10800"})["configuration"]
    assert updated["value"] == "10800"
    try:
        assert api.get("listAccounts", {**far, "expires": expires_in(2 * 3600)}).status_code == 200
    finally:
        api.ok("resetConfiguration", {"name": setting})
    assert_unauthorized(api.get("listAccounts", {**far, "expires": expires_in(2 * 3600)}), "listaccountsresponse")


# == 1.6 sessions =================================================================================


def login(url: str, username: str, password: str, **extra: str) -> httpx.Response:
    return httpx.post(url, data={"command": "login", "username": username, "password": password,
                                 "response": "json", **extra}, timeout=30)


def session_call(url: str, cookies: dict[str, str], command: str, *, method: str = "GET",
                 **params: str) -> httpx.Response:
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    pairs = [("command", command), ("response", "json"), *params.items()]
    return raw(url, pairs, method=method, headers={"Cookie": cookie} if cookie else None)


def test_login_needs_post(server: Any, make_tenant: Any) -> None:
    tenant = make_tenant(password="pw-get-login")
    r = httpx.get(server.url, params={"command": "login", "username": tenant.name, "password": "pw-get-login",
                                      "response": "json"}, timeout=30)
    inner = error_of(r, "loginresponse", 405)
    assert "POST" in inner["errortext"]
    assert "set-cookie" not in r.headers


def test_login_session_and_logout(server: Any, make_tenant: Any) -> None:
    tenant = make_tenant(password="pw-session-1")
    r = login(server.url, tenant.name, "pw-session-1")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == JSON_TYPE
    body = r.json()
    assert list(body) == ["loginresponse"]
    info = body["loginresponse"]
    assert info["username"] == tenant.name
    assert info["userid"] == tenant.user["id"]
    assert info["domainid"] == tenant.domain_id
    assert info["account"] == tenant.name
    assert info["type"] == "0"  # the account type, as a string
    assert isinstance(info["timeout"], int) and info["timeout"] > 0
    assert isinstance(info["sessionkey"], str) and len(info["sessionkey"]) >= 20
    assert info["firstname"] == "Test" and info["lastname"] == "User"
    assert info["registered"] == "false"
    cookies = {"JSESSIONID": r.cookies["JSESSIONID"], "sessionkey": r.cookies["sessionkey"]}
    assert cookies["sessionkey"] == info["sessionkey"]
    set_cookies = r.headers.get_list("set-cookie")
    assert any(c.startswith("JSESSIONID=") and "HttpOnly" in c for c in set_cookies)
    assert any(c.startswith("sessionkey=") and "HttpOnly" in c for c in set_cookies)

    # cookie and sessionkey parameter: the caller is the logged-in user
    ok = session_call(server.url, cookies, "listAccounts", sessionkey=info["sessionkey"])
    assert ok.status_code == 200, ok.text
    assert [a["id"] for a in ok.json()["listaccountsresponse"]["account"]] == [tenant.id]
    posted = session_call(server.url, cookies, "listUsers", method="POST", sessionkey=info["sessionkey"])
    assert [u["id"] for u in posted.json()["listusersresponse"]["user"]] == [tenant.user["id"]]
    # the session's role applies: a user may not create domains
    denied = session_call(server.url, cookies, "createDomain", name="x", sessionkey=info["sessionkey"])
    assert error_of(denied, "createdomainresponse", 401)["errortext"] == (
        "The given command 'createDomain' either does not exist, is not available for user.")

    # the cookie alone, the parameter alone, or a wrong key: 401
    assert_unauthorized(session_call(server.url, cookies, "listAccounts"), "listaccountsresponse")
    assert_unauthorized(session_call(server.url, {}, "listAccounts", sessionkey=info["sessionkey"]),
                        "listaccountsresponse")
    assert_unauthorized(session_call(server.url, cookies, "listAccounts", sessionkey=info["sessionkey"] + "x"),
                        "listaccountsresponse")
    wrong_cookie = {**cookies, "sessionkey": "nope"}
    assert_unauthorized(session_call(server.url, wrong_cookie, "listAccounts", sessionkey=info["sessionkey"]),
                        "listaccountsresponse")
    # a failed session check (a possibly forged request) ends the session for good
    assert_unauthorized(session_call(server.url, cookies, "listAccounts", sessionkey=info["sessionkey"]),
                        "listaccountsresponse")



def test_logout_ends_the_session(server: Any, make_tenant: Any) -> None:
    tenant = make_tenant(password="pw-logout-1")
    r = login(server.url, tenant.name, "pw-logout-1")
    assert r.status_code == 200, r.text
    info = r.json()["loginresponse"]
    cookies = {"JSESSIONID": r.cookies["JSESSIONID"], "sessionkey": r.cookies["sessionkey"]}
    assert session_call(server.url, cookies, "listAccounts", sessionkey=info["sessionkey"]).status_code == 200
    out = session_call(server.url, cookies, "logout", sessionkey=info["sessionkey"])
    assert out.status_code == 200, out.text
    assert out.json() == {"logoutresponse": {"description": "success"}}
    expired = out.headers.get_list("set-cookie")
    assert any(c.startswith("JSESSIONID=") and "Max-Age=0" in c for c in expired)
    assert_unauthorized(session_call(server.url, cookies, "listAccounts", sessionkey=info["sessionkey"]),
                        "listaccountsresponse")


def test_login_with_wrong_password_is_531(server: Any, make_tenant: Any) -> None:
    tenant = make_tenant(password="pw-right-1")
    r = login(server.url, tenant.name, "pw-wrong-1")
    inner = error_of(r, "loginresponse", 531)
    assert inner["errortext"].startswith(f"Failed to authenticate user {tenant.name}")
    assert "set-cookie" not in r.headers
    inner = error_of(login(server.url, "no-such-user-at-all", "x"), "loginresponse", 531)
    assert inner["errortext"].startswith("Failed to authenticate user")


def test_login_into_a_sub_domain(server: Any, make_domain: Any, make_tenant: Any) -> None:
    dom = make_domain()
    tenant = make_tenant(domainid=dom["id"], password="pw-sub-1")
    for path in (f"/{dom['name']}/", f"/{dom['name']}"):
        r = login(server.url, tenant.name, "pw-sub-1", domain=path)
        assert r.status_code == 200, r.text
        assert r.json()["loginresponse"]["domainid"] == dom["id"]
    by_id = login(server.url, tenant.name, "pw-sub-1", domainid=dom["id"])
    assert by_id.status_code == 200 and by_id.json()["loginresponse"]["account"] == tenant.name
    # the same user is not found in ROOT
    error_of(login(server.url, tenant.name, "pw-sub-1"), "loginresponse", 531)


# == 2. responses =================================================================================


def test_json_envelope_and_headers(api: Api) -> None:
    r = api.get("listAccounts", {"listall": True})
    assert r.status_code == 200
    assert r.headers["content-type"] == JSON_TYPE
    assert r.headers["x-content-type-options"] == "nosniff"
    body = r.json()
    assert list(body) == ["listaccountsresponse"]
    assert list(body["listaccountsresponse"])[:2] == ["count", "account"]


def test_xml_is_the_default(api: Api) -> None:
    r = api.get("listAccounts", {"listall": True}, response=None)
    assert r.status_code == 200
    assert r.headers["content-type"] == XML_TYPE
    assert r.text.startswith('<?xml version="1.0" encoding="UTF-8"?><listaccountsresponse cloud-stack-version="')
    root = ET.fromstring(r.content)
    assert root.tag == "listaccountsresponse"
    assert re.match(r"^\d+\.\d+\.\d+\.\d+$", root.attrib["cloud-stack-version"])
    count = int(root.findtext("count") or "0")
    accounts = root.findall("account")
    assert count == len(accounts) >= 2
    assert {a.findtext("name") for a in accounts} >= {"admin", "system"}
    assert all(UUID_RE.match(a.findtext("id") or "") for a in accounts)
    assert {a.findtext("isdefault") for a in accounts if a.findtext("name") == "admin"} == {"true"}
    # errors in XML carry the same fields
    err = api.get("createDomain", response="xml")
    assert err.status_code == 431
    assert err.headers["content-type"] == XML_TYPE
    root = ET.fromstring(err.content)
    assert root.tag == "createdomainresponse"
    assert root.findtext("errorcode") == "431"
    assert root.findtext("errortext") == "Unable to execute API command createdomain due to missing parameter name"


def test_empty_list_and_page_past_the_end(api: Api) -> None:
    r = api.get("listAccounts", {"name": "no-such-account-anywhere"})
    assert r.status_code == 200
    assert r.text == '{"listaccountsresponse":{}}'
    past = api.ok("listAccounts", {"listall": True, "page": 1000, "pagesize": 1})
    assert list(past) == ["count"] and past["count"] >= 2
    xml = api.get("listAccounts", {"name": "no-such-account-anywhere"}, response=None)
    root = ET.fromstring(xml.content)
    assert root.tag == "listaccountsresponse" and list(root) == []


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def test_value_types_dates_and_no_nulls(api: Api) -> None:
    body = api.ok("listAccounts", {"listall": True})
    assert isinstance(body["count"], int) and not isinstance(body["count"], bool)
    assert all(v is not None for _, v in _walk(body))
    for acct in body["account"]:
        assert isinstance(acct["id"], str) and UUID_RE.match(acct["id"])
        assert isinstance(acct["domainid"], str) and UUID_RE.match(acct["domainid"])
        assert isinstance(acct["accounttype"], int) and not isinstance(acct["accounttype"], bool)
        assert isinstance(acct["isdefault"], bool)
        assert DATE_RE.match(acct["created"]), acct["created"]
        assert acct["created"].endswith("+0000")
        for user in acct["user"]:
            assert UUID_RE.match(user["id"]) and DATE_RE.match(user["created"])
    system = next(a for a in body["account"] if a["name"] == "system")
    assert "email" not in system["user"][0]  # unset fields are left out, not null
    caps = api.ok("listCapabilities")["capability"]
    assert caps["securitygroupsenabled"] is True
    assert type(caps["defaultuipagesize"]) is int
    assert caps["supportELB"] == "false"  # a Java String field stays a string


# == 2.5 errors ===================================================================================


def test_missing_parameter(api: Api) -> None:
    inner = error_of(api.get("createDomain"), "createdomainresponse", 431)
    assert inner["errortext"] == "Unable to execute API command createdomain due to missing parameter name"
    assert inner["cserrorcode"] == 9999


def test_unknown_uuid(api: Api) -> None:
    inner = error_of(api.get("updateDomain", {"id": NO_SUCH_UUID, "name": "x"}), "updatedomainresponse", 431)
    assert (f"Invalid parameter id value={NO_SUCH_UUID} due to incorrect long value format, or entity does"
            " not exist") in inner["errortext"]
    assert inner["errortext"].startswith("Unable to execute API command updatedomain due to invalid value.")


def test_bad_integer(api: Api) -> None:
    inner = error_of(api.get("listAccounts", {"accounttype": "abc"}), "listaccountsresponse", 431)
    assert inner["errortext"] == (
        "Unable to execute API command listaccounts due to invalid value abc for parameter accounttype")


def test_unknown_command(api: Api) -> None:
    inner = error_of(api.get("listNothingAtAll"), "errorresponse", 432)
    assert "listNothingAtAll" in inner["errortext"]
    # command names are case-sensitive
    error_of(api.get("listaccounts"), "errorresponse", 432)
    # and a request without a command
    error_of(api.send([("apiKey", api.key), ("response", "json")]), "errorresponse", 432)


def test_user_calling_an_admin_command(user_api: Api) -> None:
    r = user_api.get("createDomain", {"name": "nope"})
    inner = error_of(r, "createdomainresponse", 401)
    assert inner["errortext"] == "The given command 'createDomain' either does not exist, is not available for user."


def test_status_equals_errorcode_everywhere(api: Api, user_api: Api) -> None:
    cases = [
        (api.get("createDomain"), 431),
        (api.get("listAccounts", [("x[y].z", "1")]), 430),
        (api.get("noSuchCommand"), 432),
        (api.send(api.pairs("listAccounts"), signature="AAAA"), 401),
        (user_api.get("deleteDomain", {"id": NO_SUCH_UUID}), 401),
        (api.get("deleteDomain", {"id": NO_SUCH_UUID}), 431),
    ]
    for r, code in cases:
        assert r.status_code == code, r.text
        (inner,) = r.json().values()
        assert inner["errorcode"] == code
        assert r.headers["x-description"] == inner["errortext"]


# == 5. pagination ================================================================================


def test_page_and_pagesize_go_together(api: Api) -> None:
    inner = error_of(api.get("listAccounts", {"page": 1}), "listaccountsresponse", 431)
    assert inner["errortext"] == '"pagesize" parameter is required when "page" is specified'
    inner = error_of(api.get("listAccounts", {"pagesize": 10}), "listaccountsresponse", 431)
    assert inner["errortext"] == '"page" parameter is required when "pagesize" is specified'


def test_pagesize_limits(api: Api) -> None:
    everything = api.ok("listAccounts", {"listall": True})
    unlimited = api.ok("listAccounts", {"listall": True, "pagesize": -1})
    assert unlimited == everything
    assert unlimited["count"] == len(unlimited["account"])
    inner = error_of(api.get("listAccounts", {"page": 1, "pagesize": 501}), "listaccountsresponse", 431)
    assert inner["errortext"] == "Page size can't exceed max allowed page size value: 500"
    assert api.get("listAccounts", {"page": 1, "pagesize": 500}).status_code == 200


def test_paging_is_disjoint_and_count_is_the_total(api: Api, make_tenant: Any) -> None:
    for _ in range(3):
        make_tenant()
    full = api.ok("listAccounts", {"listall": True, "pagesize": -1})
    total = full["count"]
    assert total >= 5
    seen: list[str] = []
    page = 1
    while True:
        body = api.ok("listAccounts", {"listall": True, "page": page, "pagesize": 2})
        assert body["count"] == total
        items = body.get("account", [])
        if not items:
            break
        assert len(items) <= 2
        seen += [a["id"] for a in items]
        page += 1
    assert page == (total + 1) // 2 + 1
    assert len(seen) == len(set(seen)) == total
    assert set(seen) == {a["id"] for a in full["account"]}


# == 4. listApis / listCapabilities ===============================================================


def test_list_apis_shape(api: Api) -> None:
    body = api.ok("listApis")
    apis = body["api"]
    assert body["count"] == len(apis) > 10
    by_name = {a["name"]: a for a in apis}
    assert {"listAccounts", "createDomain", "deleteAccount", "listApis", "queryAsyncJobResult"} <= set(by_name)
    for entry in apis:
        assert isinstance(entry["name"], str) and entry["name"]
        assert isinstance(entry["description"], str)
        assert isinstance(entry["isasync"], bool)
        assert isinstance(entry["response"], list)
        assert isinstance(entry["params"], list)
        for p in entry["params"]:
            assert isinstance(p["name"], str) and p["name"] == p["name"].lower()
            assert isinstance(p["description"], str)
            assert isinstance(p["type"], str) and p["type"]
            assert type(p["length"]) is int
            assert isinstance(p["required"], bool)
    assert by_name["deleteAccount"]["isasync"] is True
    assert by_name["deleteDomain"]["isasync"] is True
    assert by_name["createDomain"]["isasync"] is False
    params = {p["name"]: p for p in by_name["createDomain"]["params"]}
    assert params["name"]["required"] is True and params["name"]["type"] == "string"
    assert params["parentdomainid"]["type"] == "uuid" and params["parentdomainid"]["required"] is False
    assert {p["name"]: p["type"] for p in by_name["createAccount"]["params"]}["accountdetails"] == "map"
    assert {"page", "pagesize", "keyword"} <= {p["name"] for p in by_name["listAccounts"]["params"]}
    assert {"id", "name"} <= {f.get("name") for f in by_name["listAccounts"]["response"]}
    one = api.ok("listApis", {"name": "deleteAccount"})
    assert one["count"] == 1 and one["api"][0]["name"] == "deleteAccount" and one["api"][0]["isasync"] is True


def test_list_apis_for_a_user(user_api: Api) -> None:
    names = {a["name"] for a in user_api.ok("listApis")["api"]}
    assert {"listAccounts", "listApis", "listCapabilities"} <= names
    assert "createDomain" not in names and "deleteAccount" not in names
    r = user_api.get("listApis", {"name": "createDomain"})
    assert r.status_code == 431, r.text


def test_list_capabilities_version(api: Api, user_api: Api) -> None:
    for client in (api, user_api):
        version = client.ok("listCapabilities")["capability"]["cloudstackversion"]
        assert re.match(r"^4\.\d+\.\d+\.\d+$", version)
        assert version == "4.22.0.0"
