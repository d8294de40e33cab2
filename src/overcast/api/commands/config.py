"""Global settings: listConfigurations, updateConfiguration, resetConfiguration."""

from __future__ import annotations

from typing import Any

from overcast.access.roles import ADMINS, ROOT_ADMIN
from overcast.api.context import CallContext
from overcast.api.declare import STRING, UUID, Access, Command, ListResult, ObjectResult, Param, Result, api_command
from overcast.api.listing import page_bounds
from overcast.api.responses.config import ConfigurationResponse
from overcast.config.globals import SETTINGS, Setting
from overcast.db.models import Account, Cluster, Domain, Zone
from overcast.errors import InvalidParameterValue


def _value_in(ctx: CallContext, setting: Setting, scope: str, scope_id: int) -> str | None:
    """The effective value as this call's transaction sees it: the settings cache is loaded on another
    connection, which does not see the change being answered before it is committed."""
    from sqlalchemy import select

    from overcast.db.models import ConfigValue

    rows = {(sc, sid): v for sc, sid, v in ctx.session.execute(
        select(ConfigValue.scope, ConfigValue.scope_id, ConfigValue.value).where(ConfigValue.name == setting.name))}
    if scope != "global" and (scope, scope_id) in rows:
        return rows[(scope, scope_id)]
    return rows.get(("global", 0), setting.default)


class Scoped(Command):
    """The scope parameters: a value may be set for one zone, cluster, account or domain instead of
    globally; the narrower value wins where the setting is read for that scope."""

    zone = Param(UUID, "zoneid", entity=Zone, description="the ID of the Zone to update the parameter value"
                 " for corresponding zone")
    cluster = Param(UUID, "clusterid", entity=Cluster, description="the ID of the Cluster to update the"
                    " parameter value for corresponding cluster")
    account = Param(UUID, "accountid", entity=Account, acl=Access.OPERATE, description="the ID of the"
                    " Account to update the parameter value for corresponding account")
    domain = Param(UUID, "domainid", entity=Domain, acl=Access.OPERATE, description="the ID of the Domain"
                   " to update the parameter value for corresponding domain")

    def scope(self) -> tuple[str, int]:
        given = [(name, row) for name, row in (("zone", self.zone), ("cluster", self.cluster),
                                               ("account", self.account), ("domain", self.domain))
                 if row is not None]
        if len(given) > 1:
            raise InvalidParameterValue("Specify at most one scope: zoneid, clusterid, accountid or domainid")
        if not given:
            return "global", 0
        return given[0][0], given[0][1].id

    @staticmethod
    def setting(name: str) -> Setting:
        setting = SETTINGS.get(name)
        if setting is None:
            raise InvalidParameterValue(f"Configuration {name} not found")
        return setting

    def checked_scope(self, setting: Setting) -> tuple[str, int]:
        scope, scope_id = self.scope()
        if scope != "global" and scope not in setting.scopes:
            raise InvalidParameterValue(f"Configuration {setting.name} can't be set at {scope} scope")
        return scope, scope_id

    def answer(self, ctx: CallContext, setting: Setting, scope: str, scope_id: int) -> ObjectResult:
        value = _value_in(ctx, setting, scope, scope_id)
        return ObjectResult(ConfigurationResponse.of(setting, value, scope.capitalize() if scope != "global"
                                                     else "global", scope_id or None))


@api_command("listConfigurations", response=ConfigurationResponse, roles=ADMINS, is_list=True,
             description="Lists all configurations.")
class ListConfigurations(Scoped):
    name = Param(STRING, description="lists configuration by name")
    category = Param(STRING, description="lists configurations by category")
    group = Param(STRING, since="4.18.0", description="lists configuration by group name (primarily used for UI)")
    subgroup = Param(STRING, since="4.18.0", description="lists configuration by subgroup name (primarily used for UI)")
    account = Param(UUID, "accountid", entity=Account, acl=Access.LIST, description="the ID of the Account"
                    " to update the parameter value for corresponding account")
    domain = Param(UUID, "domainid", entity=Domain, acl=Access.LIST, description="the ID of the Domain to"
                   " update the parameter value for corresponding domain")

    def execute(self, ctx: CallContext) -> Result:
        scope, scope_id = self.scope()
        out: list[dict[str, Any]] = []
        for setting in sorted(SETTINGS.values(), key=lambda s: s.name):
            if scope != "global" and scope not in setting.scopes:
                continue
            if self.name and self.name.lower() not in setting.name.lower():
                continue
            if self.category and self.category.lower() != setting.category.lower():
                continue
            if self.group and self.group.lower() != setting.category.lower():
                continue
            if self.keyword and self.keyword.lower() not in (setting.name + " " + setting.description).lower():
                continue
            value = ctx.services.settings.raw(setting.name, scope=scope, scope_id=scope_id)
            out.append(ConfigurationResponse.of(setting, value, scope.capitalize() if scope != "global"
                                                else "global", scope_id or None))
        offset, limit = page_bounds(ctx, self.page, self.page_size)
        page = out[offset:offset + limit] if limit is not None else out[offset:]
        return ListResult(page, len(out))


@api_command("updateConfiguration", response=ConfigurationResponse, roles=ROOT_ADMIN,
             event_type="CONFIGURATION.VALUE.EDIT", description="Updates a configuration.")
class UpdateConfiguration(Scoped):
    name = Param(STRING, required=True, description="the name of the configuration")
    value = Param(STRING, length=4096, description="the value of the configuration")

    def execute(self, ctx: CallContext) -> Result:
        setting = self.setting(self.name)
        scope, scope_id = self.checked_scope(setting)
        value = setting.validate(self.value) if self.value is not None else None
        ctx.services.settings.set(ctx.session, setting.name, value, scope=scope, scope_id=scope_id)
        ctx.services.scheduler.poke()  # periodic tasks pick up new intervals
        ctx.event("CONFIGURATION.VALUE.EDIT", f"Name: {setting.name}, scope: {scope}",
                  resource_type="Configuration")
        return self.answer(ctx, setting, scope, scope_id)


@api_command("resetConfiguration", response=ConfigurationResponse, roles=ROOT_ADMIN, since="4.16.0",
             event_type="CONFIGURATION.VALUE.EDIT", description="Resets a configuration. The configuration"
             " will be set to default value for global setting, and removed from account_details or"
             " domain_details for Account/Domain settings")
class ResetConfiguration(Scoped):
    name = Param(STRING, required=True, description="the name of the configuration")

    def execute(self, ctx: CallContext) -> Result:
        setting = self.setting(self.name)
        scope, scope_id = self.checked_scope(setting)
        ctx.services.settings.reset(ctx.session, setting.name, scope=scope, scope_id=scope_id)
        ctx.event("CONFIGURATION.VALUE.EDIT", f"Reset {setting.name} at scope {scope}",
                  resource_type="Configuration")
        return self.answer(ctx, setting, scope, scope_id)
