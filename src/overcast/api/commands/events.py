"""Event commands."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from overcast.access.acl import resolve_owner_filters, scope_owned
from overcast.access.roles import ALL_ROLES
from overcast.api.context import CallContext
from overcast.api.declare import (
    BOOLEAN, DATE, INTEGER, LIST, STRING, UUID, Command, ListResult, Param, Result, Success,
    SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page, keyword_filter
from overcast.api.responses.events import EventResponse, EventTypeResponse
from overcast.db.models import Account, Domain, Event, User, utcnow
from overcast.errors import InvalidParameterValue
from overcast.events.types import EVENT_TYPES


def events_payload(ctx: CallContext, events: list[Event]) -> list[dict[str, Any]]:
    s = ctx.session
    if not events:
        return []
    accounts = {a.id: a for a in s.scalars(select(Account).where(Account.id.in_({e.account_id for e in events})))}
    domains = {d.id: d for d in s.scalars(select(Domain).where(Domain.id.in_({e.domain_id for e in events})))}
    uids = {e.user_id for e in events if e.user_id}
    users = {u.id: u for u in s.scalars(select(User).where(User.id.in_(uids)))} if uids else {}
    pids = {e.start_id for e in events if e.start_id}
    parents = dict(s.execute(select(Event.id, Event.uuid).where(Event.id.in_(pids))).all()) if pids else {}
    return [EventResponse.of(e, accounts.get(e.account_id), domains.get(e.domain_id),
                             users.get(e.user_id or 0), parents.get(e.start_id or 0)) for e in events]


@api_command("listEvents", response=EventResponse, roles=ALL_ROLES, is_list=True,
             description="A command to list events.")
class ListEvents(Command):
    id = Param(UUID, description="the ID of the event")
    type = Param(STRING, description="the event type (see event types)")
    level = Param(STRING, description="the event level (INFO, WARN, ERROR)")
    start_date = Param(DATE, "startdate", description="the start date range of the list you want to"
                       " retrieve (use format \"yyyy-MM-dd\" or the new format \"yyyy-MM-dd HH:mm:ss\")")
    end_date = Param(DATE, "enddate", description="the end date range of the list you want to retrieve"
                     " (use format \"yyyy-MM-dd\" or the new format \"yyyy-MM-dd HH:mm:ss\")")
    entry_time = Param(INTEGER, "entrytime", description="the time the event was entered")
    duration = Param(INTEGER, description="the duration of the event")
    start_id = Param(UUID, "startid", since="4.18", description="the parent/start ID of the event, when"
                     " provided this will list all the events with the start/parent ID including the"
                     " parent event")
    archived = Param(BOOLEAN, since="4.19", description="true to list archived events otherwise false")
    resource_id = Param(STRING, "resourceid", since="4.17", description="the ID of the resource associated"
                        " with the event")
    resource_type = Param(STRING, "resourcetype", since="4.17", description="the type of the resource"
                          " associated with the event")
    account = Param(STRING, description="list resources by account. Must be used with the domainId parameter.")
    domain = Param(UUID, "domainid", entity=Domain, description="list only resources belonging to the"
                   " domain specified")
    is_recursive = Param(BOOLEAN, "isrecursive", description="defaults to false, but if true, lists all"
                         " resources from the parent specified by the domainId till leaves.")
    list_all = Param(BOOLEAN, "listall", description="If set to false, list only resources belonging to"
                     " the command's caller; if set to true - list resources that the caller is authorized"
                     " to see. Default value is false")
    project = Param(UUID, "projectid", description="list objects by project; if projectid=-1 lists All VMs")

    def execute(self, ctx: CallContext) -> Result:
        me = ctx.me
        domain, account = resolve_owner_filters(ctx.acl, me, domain=self.domain, account_name=self.account)
        stmt = scope_owned(select(Event).order_by(Event.id.desc()), me, account_col=Event.account_id,
                           domain_col=Event.domain_id, list_all=bool(self.list_all),
                           is_recursive=bool(self.is_recursive), domain=domain, account=account)
        stmt = stmt.where(Event.archived.is_(bool(self.archived)))
        if self.id:
            stmt = stmt.where(Event.uuid == self.id)
        if self.type:
            stmt = stmt.where(Event.event_type == self.type)
        if self.level:
            stmt = stmt.where(Event.level == self.level.upper())
        if self.start_date is not None:
            stmt = stmt.where(Event.created >= self.start_date)
        if self.end_date is not None:
            end = self.end_date
            if end.hour == end.minute == end.second == 0:
                end = end + timedelta(days=1)  # a bare date covers the whole day
            stmt = stmt.where(Event.created < end)
        if self.start_id:
            parent = ctx.session.scalar(select(Event.id).where(Event.uuid == self.start_id))
            stmt = stmt.where((Event.start_id == parent) | (Event.id == parent))
        if self.resource_id:
            stmt = stmt.where(Event.resource_uuid == self.resource_id)
        if self.resource_type:
            stmt = stmt.where(Event.resource_type == self.resource_type)
        if self.entry_time is not None and self.duration is not None:
            # Events still Started/Scheduled longer than entrytime but within duration (CloudStack's
            # "pending events" query).
            now = utcnow()
            stmt = stmt.where(Event.state != "Completed",
                              Event.created <= now - timedelta(seconds=self.entry_time),
                              Event.created >= now - timedelta(seconds=self.duration))
        kw = keyword_filter(self.keyword, Event.description, Event.event_type, Event.level)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult(events_payload(ctx, rows), count)


@api_command("listEventTypes", response=EventTypeResponse, roles=ALL_ROLES, read_only=True,
             description="List Event Types")
class ListEventTypes(Command):
    def execute(self, ctx: CallContext) -> Result:
        names = sorted(EVENT_TYPES)
        return ListResult([{"name": n} for n in names], len(names))


class _EventSelection(Command):
    ids = Param(LIST, item_type=UUID, description="the IDs of the events")
    end_date = Param(DATE, "enddate", description="end date range (including) to archive/delete the events"
                     " (use format \"yyyy-MM-dd\" or the new format \"yyyy-MM-dd HH:mm:ss\")")
    start_date = Param(DATE, "startdate", description="start date range to archive/delete the events (use"
                       " format \"yyyy-MM-dd\" or the new format \"yyyy-MM-dd HH:mm:ss\")")
    type = Param(STRING, description="archive/delete by event type")

    def selection(self, ctx: CallContext) -> list[int]:
        if not self.ids and self.end_date is None and not self.type:
            raise InvalidParameterValue("either ids, type or enddate must be specified")
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise InvalidParameterValue("Input startDate is after endDate")
        me = ctx.me
        stmt = scope_owned(select(Event.id), me, account_col=Event.account_id, domain_col=Event.domain_id,
                           list_all=True)
        if self.ids:
            stmt = stmt.where(Event.uuid.in_(self.ids))
        if self.type:
            stmt = stmt.where(Event.event_type == self.type)
        if self.start_date is not None:
            stmt = stmt.where(Event.created >= self.start_date)
        if self.end_date is not None:
            end = self.end_date
            if end.hour == end.minute == end.second == 0:
                end = end + timedelta(days=1)
            stmt = stmt.where(Event.created < end)
        found = list(ctx.session.scalars(stmt))
        if self.ids and len(found) < len(set(self.ids)):
            # All or nothing, as CloudStack: an id out of the caller's reach (or unknown) fails the call.
            raise InvalidParameterValue("Unable to archive or delete events: one or more ids is invalid or"
                                        " not accessible")
        return found


@api_command("archiveEvents", response=SuccessResponse, roles=ALL_ROLES,
             description="Archive one or more events.")
class ArchiveEvents(_EventSelection):
    def execute(self, ctx: CallContext) -> Result:
        ids = self.selection(ctx)
        if ids:
            ctx.session.execute(update(Event).where(Event.id.in_(ids)).values(archived=True))
        return Success()


@api_command("deleteEvents", response=SuccessResponse, roles=ALL_ROLES,
             description="Delete one or more events.")
class DeleteEvents(_EventSelection):
    def execute(self, ctx: CallContext) -> Result:
        ids = self.selection(ctx)
        if ids:
            # Later events keep their parent's uuid-less reference; drop the link first.
            ctx.session.execute(update(Event).where(Event.start_id.in_(ids)).values(start_id=None))
            ctx.session.execute(Event.__table__.delete().where(Event.id.in_(ids)))
        return Success()
