"""Event responses."""

from __future__ import annotations

from typing import Any

from overcast.access.identity import domain_wire_path
from overcast.api.declare import Field, ResponseObject
from overcast.api.serialize import cs_date
from overcast.db.models import Account, Domain, Event, User

F = Field


class EventResponse(ResponseObject):
    object_name = "event"
    fields = (
        F("id", "string", "the ID of the event"),
        F("username", "string", "the name of the user who performed the action (can be different from the"
          " account if an admin is performing an action for a user, e.g. starting/stopping a user's"
          " virtual machine)"),
        F("type", "string", "the type of the event (see event types)"),
        F("level", "string", "the event level (INFO, WARN, ERROR)"),
        F("description", "string", "a brief description of the event"),
        F("account", "string", "the account name for the account that owns the object being acted on in"
          " the event (e.g. the owner of the virtual machine, ip address, or security group)"),
        F("domainid", "string", "the id of the account's domain"),
        F("domain", "string", "the name of the account's domain"),
        F("domainpath", "string", "path of the Domain the account's domain belongs to"),
        F("created", "date", "the date the event was created"),
        F("state", "state", "the state of the event"),
        F("parentid", "string", "whether the event is parented"),
        F("resourceid", "string", "the id of the resource"),
        F("resourcetype", "string", "the type of the resource"),
        F("resourcename", "string", "the name of the resource"),
        F("archived", "boolean", "whether the event has been archived or not"),
    )

    @staticmethod
    def of(e: Event, account: Account | None, domain: Domain | None, user: User | None,
           parent_uuid: str | None) -> dict[str, Any]:
        return {
            "id": e.uuid, "username": user.username if user else None, "type": e.event_type,
            "level": e.level, "description": e.description, "account": account.name if account else None,
            "domainid": domain.uuid if domain else None, "domain": domain.name if domain else None,
            "domainpath": domain_wire_path(domain) if domain else None, "created": cs_date(e.created),
            "state": e.state, "parentid": parent_uuid, "resourceid": e.resource_uuid,
            "resourcetype": e.resource_type, "archived": e.archived,
        }  # fmt: skip


class EventTypeResponse(ResponseObject):
    object_name = "eventtype"
    fields = (F("name", "string", "Event Type"),)
