"""listApis, listCapabilities and listManagementServers: what this server offers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from overcast import CLOUDSTACK_VERSION, __version__
from overcast.access.caller import Caller
from overcast.access.roles import ALL_ROLES, ROOT_ADMIN
from overcast.api.context import CallContext
from overcast.api.declare import (
    STRING, UUID, Command, ListResult, ObjectResult, Param, ResponseObject, Result,
    api_command, registry,
)  # fmt: skip
from overcast.api.listing import fetch_page
from overcast.api.responses.config import ApiDiscoveryResponse, CapabilitiesResponse, ManagementServerResponse
from overcast.api.serialize import cs_date
from overcast.db.models import ManagementNode
from overcast.errors import InvalidParameterValue


def _fields(obj: type[ResponseObject]) -> list[dict[str, Any]]:
    out = []
    for f in obj.all_fields():
        item: dict[str, Any] = {"name": f.name, "description": f.description, "type": f.type}
        if f.response is not None:
            item["response"] = [{"name": g.name, "description": g.description, "type": g.type}
                                for g in f.response.all_fields()]
        out.append(item)
    return out


def _visible_params(cmd: type[Command], caller: Caller | None) -> list[dict[str, Any]]:
    out = []
    for p in cmd.params.values():
        if p.authorized is not None and (caller is None or caller.role_type not in p.authorized):
            continue
        item: dict[str, Any] = {"name": p.name, "description": p.description, "type": p.type.value,
                                "length": p.length, "required": p.required}
        if p.since:
            item["since"] = p.since
        if p.related:
            item["related"] = ",".join(p.related)
        out.append(item)
    return out


def describe(cmd: type[Command], caller: Caller | None) -> dict[str, Any]:
    """One listApis entry, from the declaration alone."""
    related = [c.name for c in registry if c.response is cmd.response and c is not cmd
               and cmd.response.object_name]
    entry: dict[str, Any] = {
        "name": cmd.name, "description": cmd.description, "isasync": cmd.is_async,
        "related": ",".join(related), "params": _visible_params(cmd, caller),
        "response": _fields(cmd.response),
    }
    if cmd.since:
        entry["since"] = cmd.since
    return entry


@api_command("listApis", response=ApiDiscoveryResponse, roles=ALL_ROLES, since="4.1.0", read_only=True,
             description="lists all available apis on the server, provided by the Api Discovery plugin")
class ListApis(Command):
    name = Param(STRING, description="API name")

    def execute(self, ctx: CallContext) -> Result:
        me = ctx.me
        auth = ctx.services.auth
        if self.name:
            cmd = registry.get(self.name)
            if cmd is None or not auth.allowed(me, cmd.name, cmd.roles):
                raise InvalidParameterValue(f"Api Discovery plugin was unable to find an api by that name or"
                                            f" process any apis: {self.name}")
            commands = [cmd]
        else:
            commands = [c for c in registry if auth.allowed(me, c.name, c.roles)]
        items = [describe(c, me) for c in commands]
        return ListResult(items, len(items))


@api_command("listCapabilities", response=CapabilitiesResponse, roles=ALL_ROLES, read_only=True,
             description="Lists capabilities")
class ListCapabilities(Command):
    def execute(self, ctx: CallContext) -> Result:
        return ObjectResult({
            "cloudstackversion": CLOUDSTACK_VERSION, "securitygroupsenabled": True,
            "dynamicrolesenabled": True, "userpublictemplateenabled": True, "supportELB": "false",
            "projectinviterequired": False, "allowusercreateprojects": True,
            "customdiskofferingminsize": 1, "customdiskofferingmaxsize": 1024,
            "regionsecondaryenabled": False, "kvmsnapshotenabled": True, "allowuserviewdestroyedvm": True,
            "allowuserexpungerecovervm": True, "allowuserexpungerecovervolume": True,
            "allowuserviewalldomainaccounts": bool(ctx.setting("allow.user.view.all.domain.accounts")),
            "kubernetesserviceenabled": False, "kubernetesclusterexperimentalfeaturesenabled": False,
            "defaultuipagesize": int(ctx.setting("default.ui.page.size")),
            "apilimitinterval": 1, "apilimitmax": -1, "customhypervisordisplayname": "Custom",
        })  # fmt: skip


@api_command("listManagementServers", response=ManagementServerResponse, roles=ROOT_ADMIN, is_list=True,
             description="Lists management servers.")
class ListManagementServers(Command):
    id = Param(UUID, description="the id of the management server")
    name = Param(STRING, description="the name of the management server")

    def execute(self, ctx: CallContext) -> Result:
        stmt = select(ManagementNode).order_by(ManagementNode.started)
        if self.id:
            stmt = stmt.where(ManagementNode.uuid == self.id)
        if self.name:
            stmt = stmt.where(ManagementNode.name == self.name)
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult([{
            "id": n.uuid, "name": n.name, "state": "Down" if n.stopped else "Up",
            "version": f"{CLOUDSTACK_VERSION} (overcast {__version__})",
            "lastserverstart": cs_date(n.started), "lastserverstop": cs_date(n.stopped),
        } for n in rows], count)


__all__ = ["ListApis", "ListCapabilities", "ListManagementServers", "describe"]
