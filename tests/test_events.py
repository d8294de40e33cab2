"""Action events: what the server records and lists, and the in-process event bus.

The first half drives the shared server process; the second tests :mod:`overcast.events.bus` and
:mod:`overcast.events.recorder` in-process, against a real SQLite database.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cs import CloudStack, CloudStackApiException
from sqlalchemy import select

from servers import Server

from overcast.db.models import Event, utcnow
from overcast.events.bus import ActionEvent, EventBus
from overcast.events.recorder import EventRecorder
from overcast.events.types import COMPLETED, SCHEDULED

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4}$")


def events(api: CloudStack, **params: Any) -> list[dict[str, Any]]:
    return api.listEvents(**params).get("event", [])  # type: ignore[no-any-return]


def created_at(event: dict[str, Any]) -> datetime:
    return datetime.strptime(event["created"], "%Y-%m-%dT%H:%M:%S%z").replace(tzinfo=None)


def login(server: Server, username: str, password: str = "secret-pass", domain: str = "/") -> httpx.Response:
    return httpx.post(server.url, data={"command": "login", "username": username, "password": password,
                                        "domain": domain, "response": "json"}, timeout=30)


# -- what the server records ---------------------------------------------------------------------


def test_create_events(admin: CloudStack, make_tenant: Any, make_domain: Any) -> None:
    tenant = make_tenant()
    [ev] = events(admin, listall=True, type="ACCOUNT.CREATE", resourceid=tenant.id)
    assert ev["state"] == "Completed"
    assert ev["level"] == "INFO"
    assert ev["resourcetype"] == "Account"
    assert ev["account"] == tenant.name
    assert ev["domainid"] == tenant.domain_id
    assert ev["username"] == "admin"
    assert tenant.name in ev["description"]
    assert DATE_RE.match(ev["created"])
    assert ev["archived"] is False
    assert "parentid" not in ev
    # the event belongs to the new account: its user sees it too
    assert ev["id"] in {e["id"] for e in events(tenant.api, type="ACCOUNT.CREATE")}

    domain = make_domain()
    [dev] = events(admin, listall=True, type="DOMAIN.CREATE", resourceid=domain["id"])
    assert dev["state"] == "Completed" and dev["level"] == "INFO"
    assert dev["resourcetype"] == "Domain"
    assert domain["name"] in dev["description"]


def test_login_event(server: Server, make_tenant: Any) -> None:
    tenant = make_tenant()
    assert events(tenant.api, type="USER.LOGIN") == []
    resp = login(server, tenant.user["username"])
    assert resp.status_code == 200, resp.text
    [ev] = events(tenant.api, type="USER.LOGIN")
    assert ev["state"] == "Completed"
    assert ev["resourcetype"] == "User" and ev["resourceid"] == tenant.user["id"]
    assert ev["username"] == tenant.user["username"]
    # a failed login records no login event
    assert login(server, tenant.user["username"], password="wrong").status_code != 200
    assert len(events(tenant.api, type="USER.LOGIN")) == 1


def test_async_job_events(admin: CloudStack, make_tenant: Any, make_domain: Any) -> None:
    tenant = make_tenant()
    admin.disableAccount(id=tenant.id, lock="false")  # cs polls the job to its end
    found = events(admin, listall=True, resourceid=tenant.id, type="ACCOUNT.DISABLE")
    scheduled = [e for e in found if e["state"] == SCHEDULED]
    completed = [e for e in found if e["state"] == COMPLETED]
    assert len(scheduled) == 1 and len(completed) == 1, found
    [sch], [done] = scheduled, completed
    assert "parentid" not in sch
    assert done["parentid"] == sch["id"]
    assert done["level"] == "INFO"
    assert sch["resourcetype"] == done["resourcetype"] == "Account"
    assert created_at(done) >= created_at(sch)
    # startid: the parent and its children
    family = events(admin, listall=True, startid=sch["id"])
    assert {e["id"] for e in family} == {sch["id"], done["id"]}

    # a failed job ends with an ERROR event that continues its Scheduled one
    domain = make_domain()
    make_tenant(domainid=domain["id"])
    with pytest.raises(CloudStackApiException):
        admin.deleteDomain(id=domain["id"])
    found = events(admin, listall=True, resourceid=domain["id"], type="DOMAIN.DELETE")
    [sch] = [e for e in found if e["state"] == SCHEDULED]
    [err] = [e for e in found if e["state"] == COMPLETED]
    assert err["level"] == "ERROR"
    assert err["parentid"] == sch["id"]
    assert "cleanup" in err["description"] or "account" in err["description"]


def test_list_events_filters(admin: CloudStack, make_tenant: Any, make_domain: Any) -> None:
    tenant = make_tenant()
    admin.disableAccount(id=tenant.id, lock="true")
    domain = make_domain()
    make_tenant(domainid=domain["id"])
    with pytest.raises(CloudStackApiException):
        admin.deleteDomain(id=domain["id"])
    [create] = events(admin, listall=True, type="ACCOUNT.CREATE", resourceid=tenant.id)

    # type
    typed = events(admin, listall=True, type="ACCOUNT.LOCK")
    assert typed and {e["type"] for e in typed} == {"ACCOUNT.LOCK"}
    assert tenant.id in {e["resourceid"] for e in typed}
    # level
    errors = events(admin, listall=True, level="ERROR")
    assert errors and {e["level"] for e in errors} == {"ERROR"}
    assert domain["id"] in {e.get("resourceid") for e in errors}
    assert create["id"] not in {e["id"] for e in errors}
    assert {e["level"] for e in events(admin, listall=True, level="info")} == {"INFO"}
    # id
    assert [e["id"] for e in events(admin, listall=True, id=create["id"])] == [create["id"]]
    # keyword (in the description)
    assert create["id"] in {e["id"] for e in events(admin, listall=True, keyword=tenant.name)}
    assert events(admin, listall=True, keyword=f"no-such-{uuid.uuid4().hex}") == []
    # resource id and type
    by_resource = events(admin, listall=True, resourceid=tenant.id, resourcetype="Account")
    assert by_resource and {e["resourceid"] for e in by_resource} == {tenant.id}
    assert {"ACCOUNT.CREATE", "ACCOUNT.LOCK"} <= {e["type"] for e in by_resource}
    assert events(admin, listall=True, resourceid=tenant.id, resourcetype="Domain") == []
    # start and end dates, with time and as bare days
    when = created_at(create)
    fmt, day = "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"
    ids = lambda **kw: {e["id"] for e in events(admin, listall=True, type="ACCOUNT.CREATE", **kw)}  # noqa: E731
    assert create["id"] in ids(startdate=when.strftime(fmt), enddate=(when + timedelta(seconds=1)).strftime(fmt))
    assert create["id"] in ids(startdate=when.strftime(day), enddate=when.strftime(day))
    assert create["id"] not in ids(startdate=(when + timedelta(seconds=2)).strftime(fmt))
    assert create["id"] not in ids(enddate=(when - timedelta(days=1)).strftime(day))
    assert create["id"] not in ids(startdate=(when - timedelta(days=3)).strftime(day),
                                   enddate=(when - timedelta(days=2)).strftime(day))
    # newest first
    listed = events(admin, listall=True, resourceid=tenant.id)
    assert [created_at(e) for e in listed] == sorted((created_at(e) for e in listed), reverse=True)


def test_list_event_types(admin: CloudStack) -> None:
    resp = admin.listEventTypes()
    names = {t["name"] for t in resp["eventtype"]}
    assert {"VM.CREATE", "ACCOUNT.DELETE", "ACCOUNT.CREATE", "DOMAIN.CREATE", "USER.LOGIN"} <= names


def test_archive_and_delete_events(admin: CloudStack, make_tenant: Any) -> None:
    tenant = make_tenant()
    mine = {e["type"]: e for e in events(tenant.api)}
    assert {"ACCOUNT.CREATE", "USER.CREATE"} <= set(mine)
    to_archive, to_delete = mine["ACCOUNT.CREATE"]["id"], mine["USER.CREATE"]["id"]

    assert tenant.api.archiveEvents(ids=to_archive)["success"] in (True, "true")
    assert to_archive not in {e["id"] for e in events(tenant.api)}
    archived = events(tenant.api, archived=True)
    assert to_archive in {e["id"] for e in archived}
    assert all(e["archived"] is True for e in archived)
    assert to_delete not in {e["id"] for e in archived}
    # the admin's default listing hides it too
    assert events(admin, listall=True, id=to_archive) == []
    assert [e["id"] for e in events(admin, listall=True, id=to_archive, archived=True)] == [to_archive]

    assert tenant.api.deleteEvents(ids=to_delete)["success"] in (True, "true")
    assert to_delete not in {e["id"] for e in events(tenant.api)}
    assert to_delete not in {e["id"] for e in events(tenant.api, archived=True)}
    assert events(admin, listall=True, id=to_delete) == []

    # by type: everything of that type of the caller goes
    assert events(tenant.api, type="REGISTER.USER.KEY")
    tenant.api.deleteEvents(type="REGISTER.USER.KEY")
    assert events(tenant.api, type="REGISTER.USER.KEY") == []
    # nothing to select by is refused
    with pytest.raises(CloudStackApiException) as info:
        tenant.api.archiveEvents()
    assert info.value.error["errorcode"] == 431


def test_tenant_cannot_touch_another_tenants_events(admin: CloudStack, make_tenant: Any) -> None:
    alice, bob = make_tenant(), make_tenant()
    theirs = events(bob.api)
    assert theirs
    target = theirs[0]["id"]
    # alice can't see it ...
    assert events(alice.api, id=target) == []
    assert target not in {e["id"] for e in events(alice.api, archived=True)}
    # ... nor archive or delete it, by id or by type
    for call in (alice.api.archiveEvents, alice.api.deleteEvents):
        with pytest.raises(CloudStackApiException):
            call(ids=target)
    alice.api.archiveEvents(type=theirs[0]["type"])
    alice.api.deleteEvents(type=theirs[0]["type"])
    still = events(bob.api, id=target)
    assert len(still) == 1 and still[0]["archived"] is False
    assert {e["id"] for e in events(bob.api)} == {e["id"] for e in theirs}
    # a mixed request (one own id, one foreign id) changes nothing at all
    own = events(alice.api)[0]["id"]
    with pytest.raises(CloudStackApiException):
        alice.api.deleteEvents(ids=f"{own},{target}")
    assert own in {e["id"] for e in events(alice.api)}
    assert len(events(bob.api, id=target)) == 1


# -- the event bus, in-process -------------------------------------------------------------------


def action(n: int, event_type: str = "ACCOUNT.CREATE", description: str | None = None) -> ActionEvent:
    return ActionEvent(uuid=str(uuid.uuid4()), event_type=event_type, state=COMPLETED, level="INFO",
                       description=description or f"event {n}", account_uuid=None, domain_uuid=None, user_uuid=None,
                       resource_type=None, resource_uuid=None, created=utcnow())


@pytest.fixture
def bus() -> Iterator[EventBus]:
    b = EventBus()
    yield b
    b.close()


def test_bus_delivers_in_order_and_survives_a_failing_subscriber(bus: EventBus,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    seen_all: list[str] = []
    seen_accounts: list[str] = []
    failures: list[str] = []

    def failing(ev: ActionEvent) -> None:
        failures.append(ev.description)
        raise RuntimeError("subscriber bug")

    bus.subscribe("*", failing)  # registered first: the others still get every event
    bus.subscribe("*", lambda ev: seen_all.append(ev.description))
    bus.subscribe("ACCOUNT.*", lambda ev: seen_accounts.append(ev.description))
    sent = [action(i, "ACCOUNT.CREATE" if i % 2 == 0 else "VM.START") for i in range(50)]
    for ev in sent:
        bus.publish(ev)
    assert bus.drain(10)
    assert seen_all == [e.description for e in sent]
    assert seen_accounts == [e.description for e in sent if e.event_type.startswith("ACCOUNT.")]
    assert failures == seen_all
    assert "subscriber bug" in caplog.text or "failed" in caplog.text


def test_bus_unsubscribe_and_publishers_on_many_threads(bus: EventBus) -> None:
    got: list[str] = []
    lock = threading.Lock()

    def sub(ev: ActionEvent) -> None:
        with lock:
            got.append(ev.description)

    bus.subscribe("*", sub)

    def publisher(t: int) -> None:
        for i in range(100):
            bus.publish(action(i, "VM.CREATE", f"{t}:{i}"))

    threads = [threading.Thread(target=publisher, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert bus.drain(10)
    assert len(got) == 400
    for t in range(4):  # each publisher's events arrive in the order it published them
        assert [g for g in got if g.startswith(f"{t}:")] == [f"{t}:{i}" for i in range(100)]
    bus.unsubscribe(sub)
    bus.publish(action(0))
    assert bus.drain(10)
    assert len(got) == 400


@pytest.fixture
def recorder_db(tmp_path: Path) -> Iterator[tuple[Any, EventRecorder, EventBus]]:
    from overcast.access.bootstrap import bootstrap
    from overcast.db.migrate import upgrade
    from overcast.db.session import Database

    db = Database(f"sqlite:///{tmp_path / 'events.db'}")
    upgrade(db.engine)
    with db.writer.begin() as s:
        bootstrap(s)
    bus = EventBus()
    recorder = EventRecorder(bus)
    recorder.attach(db.reader)
    if db.writer is not db.reader:
        recorder.attach(db.writer)
    yield db, recorder, bus
    bus.close()
    db.dispose()


ADMIN_ACCOUNT, ROOT_DOMAIN, ADMIN_USER = 2, 1, 2


def record(recorder: EventRecorder, s: Any, text: str, event_type: str = "ACCOUNT.UPDATE") -> Event:
    return recorder.record(s, event_type, text, account_id=ADMIN_ACCOUNT, domain_id=ROOT_DOMAIN,
                           user_id=ADMIN_USER, resource_type="Account", resource_uuid=None)


def test_recorder_publishes_only_after_commit(recorder_db: Any) -> None:
    db, recorder, bus = recorder_db
    delivered: list[tuple[str, bool]] = []

    def sub(ev: ActionEvent) -> None:
        # at delivery the row is committed: another session sees it
        with db.reader() as other:
            visible = other.scalar(select(Event.id).where(Event.uuid == ev.uuid)) is not None
        delivered.append((ev.description, visible))

    bus.subscribe("*", sub)
    with db.writer() as s:
        with s.begin():
            rows = [record(recorder, s, f"first {i}") for i in range(3)]
            assert bus.drain(5)
            time.sleep(0.1)
            assert delivered == []  # recorded, not yet committed: nothing published
        assert bus.drain(5)
        assert delivered == [(f"first {i}", True) for i in range(3)]
        with s.begin():
            record(recorder, s, "second", event_type="USER.LOGIN")
    assert bus.drain(5)
    assert [d for d, _ in delivered] == ["first 0", "first 1", "first 2", "second"]
    assert all(visible for _, visible in delivered)
    with db.reader() as s:
        stored = list(s.scalars(select(Event).where(Event.uuid.in_([r.uuid for r in rows])).order_by(Event.id)))
        assert [e.description for e in stored] == ["first 0", "first 1", "first 2"]


def test_recorder_publishes_nothing_for_a_rollback(recorder_db: Any) -> None:
    db, recorder, bus = recorder_db
    delivered: list[ActionEvent] = []
    bus.subscribe("*", delivered.append)

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with db.writer() as s, s.begin():
            record(recorder, s, "doomed")
            raise Boom
    # an explicit rollback too
    with db.writer() as s:
        s.begin()
        record(recorder, s, "rolled back")
        s.rollback()
        # and the session's next transaction does not inherit the dropped events
        with s.begin():
            record(recorder, s, "kept")
    # a session closed without commit or rollback, then used again
    s = db.writer()
    record(recorder, s, "closed")
    s.close()
    with s.begin():
        record(recorder, s, "after close")
    assert bus.drain(5)
    assert [e.description for e in delivered] == ["kept", "after close"]
    with db.reader() as s:
        descriptions = set(s.scalars(select(Event.description)))
    assert not {"doomed", "rolled back", "closed"} & descriptions
    assert {"kept", "after close"} <= descriptions


def test_recorder_and_savepoints(recorder_db: Any) -> None:
    """An event of a rolled-back savepoint is not published; one of a released savepoint is."""
    db, recorder, bus = recorder_db
    delivered: list[str] = []
    bus.subscribe("*", lambda ev: delivered.append(ev.description))
    with db.writer() as s, s.begin():
        record(recorder, s, "outer before")
        try:
            with s.begin_nested():
                record(recorder, s, "in rolled-back savepoint")
                raise RuntimeError("undo the savepoint")
        except RuntimeError:
            pass
        with s.begin_nested():
            record(recorder, s, "in released savepoint")
        record(recorder, s, "outer after")
        assert bus.drain(5)
        assert delivered == []  # a released savepoint is not a commit
    assert bus.drain(5)
    assert delivered == ["outer before", "in released savepoint", "outer after"]
    with db.reader() as s:
        assert s.scalar(select(Event.id).where(Event.description == "in rolled-back savepoint")) is None
    # a released savepoint whose transaction then rolls back publishes nothing either
    delivered.clear()
    with pytest.raises(RuntimeError):
        with db.writer() as s, s.begin():
            with s.begin_nested():
                record(recorder, s, "released, then lost")
            raise RuntimeError("undo everything")
    assert bus.drain(5)
    assert delivered == []


def test_recorded_event_fields(recorder_db: Any) -> None:
    db, recorder, bus = recorder_db
    delivered: list[ActionEvent] = []
    bus.subscribe("USER.*", delivered.append)
    with db.writer() as s, s.begin():
        row = recorder.record(s, "USER.LOGIN", "hello", account_id=ADMIN_ACCOUNT, domain_id=ROOT_DOMAIN,
                              user_id=ADMIN_USER, resource_type="User", resource_uuid="u-1",
                              details={"ip": "10.0.0.1"})
        record(recorder, s, "not a user event", event_type="ACCOUNT.UPDATE")
    assert bus.drain(5)
    [ev] = delivered
    assert ev.uuid == row.uuid and ev.event_type == "USER.LOGIN" and ev.state == COMPLETED
    assert ev.level == "INFO" and ev.description == "hello"
    assert ev.resource_type == "User" and ev.resource_uuid == "u-1"
    assert ev.details == {"ip": "10.0.0.1"}
    with db.reader() as s:
        from overcast.db.models import Account, Domain, User

        assert ev.account_uuid == s.get(Account, ADMIN_ACCOUNT).uuid  # type: ignore[union-attr]
        assert ev.domain_uuid == s.get(Domain, ROOT_DOMAIN).uuid  # type: ignore[union-attr]
        assert ev.user_uuid == s.get(User, ADMIN_USER).uuid  # type: ignore[union-attr]
