"""Registered user data responses (UserDataResponse)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from overcast.api.declare import Field, ResponseObject
from overcast.api.responses.common import Owners
from overcast.db.models import UserData

F = Field


class UserDataResponse(ResponseObject):
    object_name = "userdata"
    fields = (
        F("id", "string", "ID of the userdata"),
        F("name", "string", "Name of the userdata"),
        F("accountid", "string", "the owner id of the userdata"),
        F("account", "string", "the owner of the userdata"),
        F("domainid", "string", "the domain id of the userdata owner"),
        F("domain", "string", "the domain name of the userdata owner"),
        F("domainpath", "string", "path of the domain to which the userdata owner belongs"),
        F("userdata", "string", "base64 encoded userdata content"),
        F("params", "string", "list of parameters which contains the list of keys or string parameters that are"
          " needed to be passed for any variables declared in userdata"),
        F("hasannotations", "boolean", "whether this userdata has annotations"),
    )


def userdata_payload(s: Session, rows: list[UserData]) -> list[dict[str, Any]]:
    owners = Owners(s, rows)
    out = []
    for r in rows:
        o = owners.fields(r)
        out.append({"id": r.uuid, "name": r.name, "accountid": o["accountid"], "account": o["account"],
                    "domainid": o["domainid"], "domain": o["domain"], "domainpath": o["domainpath"],
                    "userdata": r.user_data, "params": r.params, "hasannotations": False})
    return out


__all__ = ["UserDataResponse", "userdata_payload"]
