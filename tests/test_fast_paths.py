"""The shortcuts taken for speed give the same answers as the long ways round (docs/benchmarks.md).

In-process, on SQLite: no server needed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import pytest

from overcast.access import signing


def _sign(params: dict[str, str], key: str, secret: str) -> list[tuple[str, str]]:
    data = {**params, "apiKey": key, "response": "json"}
    text = "&".join(f"{k}={quote(v, safe='*')}" for k, v in sorted(data.items())).lower()
    data["signature"] = base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()).decode()
    return parse_qsl("&".join(f"{k}={quote(v, safe='*')}" for k, v in data.items()), keep_blank_values=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from overcast.access.bootstrap import admin_keys
    from overcast.api.app import create_app
    from overcast.cli.main import prepare_database
    from overcast.config.server import load_settings

    services, keys = prepare_database(load_settings(data_dir=tmp_path_factory.mktemp("fast"), port=1))
    if keys is None:
        with services.db.reader() as s:
            keys = admin_keys(s)
    app = create_app(services, start_workers=False)
    yield services, app.state.dispatcher, keys
    services.close()


def _call(dispatcher: Any, key: str, secret: str, **params: str) -> tuple[int, bytes]:
    from overcast.api.dispatch import Request

    r = dispatcher.handle(Request("GET", _sign(params, key, secret), {}, "127.0.0.1"))
    return r.status, r.body


def test_list_accounts_plain_rows_match_orm_rows(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A root admin's listing is read as plain rows; forcing the ORM path must not change a byte."""
    from overcast.access.identity import Identity

    _, dispatcher, (key, secret) = world
    ok = lambda **p: json.loads(_call(dispatcher, key, secret, **p)[1])  # noqa: E731
    dom = next(iter(ok(command="createDomain", name="fastdom").values()))["domain"]
    for name, atype in (("fast-u", "0"), ("fast-da", "2")):
        acct = next(iter(ok(command="createAccount", username=name, password="pw", email="e@x",
                            firstname="f", lastname="l", accounttype=atype, domainid=dom["id"]).values()))
        ok(command="createUser", account=name, domainid=dom["id"], username=name + "2", password="pw",
           email="e@x", firstname="f", lastname="l")
        ok(command="registerUserKeys", id=acct["account"]["user"][0]["id"])
    combos: list[dict[str, str]] = [{}, {"listall": "true"}, {"domainid": dom["id"], "isrecursive": "true"},
                                    {"keyword": "FAST"}, {"listall": "true", "pagesize": "2", "page": "2"},
                                    {"listall": "true", "response": "xml"}, {"name": "fast-u", "listall": "true"}]
    for params, _ in itertools.product(combos, range(2)):  # twice: the second from the statement cache
        plain = _call(dispatcher, key, secret, command="listAccounts", **params)
        with monkeypatch.context() as m:
            m.setattr(Identity, "sees_all_keys", staticmethod(lambda caller: False))
            orm = _call(dispatcher, key, secret, command="listAccounts", **params)
        assert plain == orm, params
        assert plain[0] == 200


def test_signature_fast_path_accepts_and_refuses_as_before() -> None:
    pairs = [("apiKey", "k"), ("command", "listZones"), ("name", "a~b c"), ("Zone", "x")]

    # Every canonical form a known client signs, with every digest, is still accepted, and only with
    # the right secret and the whole signature.
    for lower, enc, digest in itertools.product((False, True), (signing.java_encode, signing._python_encode,
                                                               signing._libcloud_encode),
                                                (hashlib.sha1, hashlib.sha256, hashlib.sha512)):
        text = signing.canonical(pairs, lower_sort=lower, encode=enc)
        good = base64.b64encode(hmac.new(b"s3cret", text.encode(), digest).digest()).decode()
        assert signing.verify(pairs, "s3cret", good)
        assert not signing.verify(pairs, "other", good)
        assert not signing.verify(pairs, "s3cret", good[:-4] + ("AAA=" if not good.endswith("AAA=") else "BBB="))
    assert not signing.verify(pairs, "s3cret", base64.b64encode(b"x" * 24).decode())  # no digest this long


def test_migration_heads_read_from_the_scripts_match_alembic() -> None:
    from overcast.db.migrate import _script_heads, head_revision

    assert _script_heads() == {head_revision()}


def test_existing_schema_is_not_migrated_again(tmp_path: Path) -> None:
    from overcast.db.migrate import _is_current, upgrade
    from overcast.db.session import Database

    db = Database(f"sqlite:///{tmp_path / 'o.db'}")
    try:
        assert not _is_current(db.engine)  # no version table yet
        upgrade(db.engine)
        assert _is_current(db.engine)
    finally:
        db.dispose()


@pytest.mark.parametrize(("name", "raw", "value"), [
    ("port", "8080", 8080), ("port", " 80 ", 80), ("port", "8080.0", 8080), ("port", 9000.0, 9000),
    ("access_log", "yes", True), ("access_log", "Off", False), ("access_log", 0, False),
    ("node_timeout", "30", 30.0), ("data_dir", "/tmp/x", Path("/tmp/x")), ("processes", "2", 2),
])
def test_server_settings_coerce_like_before(name: str, raw: Any, value: Any) -> None:
    from overcast.config.server import ServerSettings

    assert getattr(ServerSettings(**{name: raw}), name) == value


@pytest.mark.parametrize(("name", "raw"), [("port", "80.5"), ("port", "x"), ("access_log", "2"), ("host", 5),
                                           ("processes", 0)])
def test_server_settings_refuse_bad_values(name: str, raw: Any) -> None:
    from overcast.config.server import ServerSettings, SettingsError

    with pytest.raises(SettingsError):
        ServerSettings(**{name: raw})


def test_unknown_setting_in_the_file_is_refused(tmp_path: Path) -> None:
    from overcast.config.server import SettingsError, load_settings

    cfg = tmp_path / "o.toml"
    cfg.write_text("[server]\nport = 1\nno_such_setting = 2\n")
    with pytest.raises(SettingsError, match="no_such_setting"):
        load_settings(cfg)
