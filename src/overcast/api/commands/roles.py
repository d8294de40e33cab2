"""Roles and role permission rules (CloudStack's dynamic roles)."""

from __future__ import annotations

from sqlalchemy import select

from overcast.access.roles import ALL_ROLES, ROOT_ADMIN, RoleType
from overcast.api.context import CallContext
from overcast.api.declare import (
    BOOLEAN, LIST, STRING, UUID, Command, ListResult, ObjectResult, Param, Result, Success,
    SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page, keyword_filter
from overcast.api.responses.identity import RolePermissionResponse, RoleResponse
from overcast.db.models import Role, RolePermission
from overcast.errors import InvalidParameterValue

RELATED = ("createRole", "listRoles", "updateRole")
ROLE_TYPES = tuple(r.value for r in RoleType)


@api_command("createRole", response=RoleResponse, roles=ROOT_ADMIN, since="4.9.0", event_type="ROLE.CREATE",
             description="Creates a role")
class CreateRole(Command):
    name = Param(STRING, required=True, description="Creates a role with this unique name")
    type = Param(STRING, choices=ROLE_TYPES, description="The type of the role, valid options are: Admin,"
                 " ResourceAdmin, DomainAdmin, User")
    clone_from = Param(UUID, "roleid", entity=Role, related=RELATED, since="4.15",
                       description="ID of the role to be cloned from. Either roleid or type must be passed in")
    description = Param(STRING, description="The description of the role")
    is_public = Param(BOOLEAN, "ispublic", since="4.19", default=True, description="Indicates whether the"
                      " role will be visible to all users (public) or only to root admins (private)."
                      " Default: true")

    def execute(self, ctx: CallContext) -> Result:
        role = ctx.services.identity(ctx).create_role(
            ctx.me, name=self.name, role_type=RoleType(self.type) if self.type else None,
            description=self.description, clone_from=self.clone_from, is_public=self.is_public)
        return ObjectResult(RoleResponse.of(role))


@api_command("updateRole", response=RoleResponse, roles=ROOT_ADMIN, since="4.9.0", event_type="ROLE.UPDATE",
             description="Updates a role")
class UpdateRole(Command):
    id = Param(UUID, required=True, entity=Role, related=RELATED, description="ID of the role")
    name = Param(STRING, description="creates a role with this unique name")
    type = Param(STRING, choices=ROLE_TYPES, description="The type of the role, valid options are: Admin,"
                 " ResourceAdmin, DomainAdmin, User")
    description = Param(STRING, description="The description of the role")
    is_public = Param(BOOLEAN, "ispublic", since="4.19", description="Indicates whether the role will be"
                      " visible to all users (public) or only to root admins (private).")

    def execute(self, ctx: CallContext) -> Result:
        role = ctx.services.identity(ctx).update_role(
            ctx.me, self.id, name=self.name, description=self.description,
            role_type=RoleType(self.type) if self.type else None, is_public=self.is_public)
        return ObjectResult(RoleResponse.of(role))


@api_command("deleteRole", response=SuccessResponse, roles=ROOT_ADMIN, since="4.9.0", event_type="ROLE.DELETE",
             description="Deletes a role")
class DeleteRole(Command):
    id = Param(UUID, required=True, entity=Role, related=RELATED, description="ID of the role")

    def execute(self, ctx: CallContext) -> Result:
        ctx.services.identity(ctx).delete_role(ctx.me, self.id)
        return Success()


@api_command("listRoles", response=RoleResponse, roles=ALL_ROLES, since="4.9.0", is_list=True,
             description="Lists dynamic roles in CloudStack")
class ListRoles(Command):
    id = Param(UUID, entity=Role, related=RELATED, description="List role by role ID.")
    name = Param(STRING, description="List role by role name.")
    type = Param(STRING, choices=ROLE_TYPES, description="List role by role type, valid options are: Admin,"
                 " ResourceAdmin, DomainAdmin, User.")
    state = Param(STRING, since="4.20.0", description="List role by role type status, valid options are:"
                  " Enabled, Disabled")

    def execute(self, ctx: CallContext) -> Result:
        me = ctx.me
        stmt = select(Role).where(Role.removed.is_(None)).order_by(Role.id)
        if not me.is_root_admin:
            # Others see public roles no more privileged than their own.
            stmt = stmt.where(Role.is_public.is_(True),
                              Role.role_type.in_([r.value for r in RoleType if r.rank <= me.role_type.rank]))
        if self.id is not None:
            stmt = stmt.where(Role.id == self.id.id)
        if self.name:
            stmt = stmt.where(Role.name == self.name)
        if self.type:
            stmt = stmt.where(Role.role_type == self.type)
        if self.state:
            stmt = stmt.where(Role.state == self.state.upper())
        kw = keyword_filter(self.keyword, Role.name, Role.description)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult([RoleResponse.of(r) for r in rows], count)


PERMISSIONS = ("allow", "deny")


@api_command("createRolePermission", response=RolePermissionResponse, roles=ROOT_ADMIN, since="4.9.0",
             event_type="ROLE.PERMISSION.CREATE", description="Adds an API permission to a role")
class CreateRolePermission(Command):
    role = Param(UUID, "roleid", required=True, entity=Role, related=RELATED, description="ID of the role")
    rule = Param(STRING, required=True, description="The API name or wildcard rule such as list*")
    permission = Param(STRING, required=True, choices=PERMISSIONS, description="The rule permission, allow"
                       " or deny. Default: deny.")
    description = Param(STRING, description="The description of the role permission")

    def execute(self, ctx: CallContext) -> Result:
        perm = ctx.services.identity(ctx).create_permission(
            ctx.me, self.role, rule=self.rule, permission=self.permission, description=self.description)
        return ObjectResult(RolePermissionResponse.of(perm, self.role))


@api_command("listRolePermissions", response=RolePermissionResponse, roles=ROOT_ADMIN, since="4.9.0",
             read_only=True, description="Lists role permissions")
class ListRolePermissions(Command):
    role = Param(UUID, "roleid", entity=Role, related=RELATED, description="ID of the role")

    def execute(self, ctx: CallContext) -> Result:
        stmt = select(RolePermission, Role).join(Role, Role.id == RolePermission.role_id).where(
            Role.removed.is_(None)).order_by(Role.id, RolePermission.sort_order, RolePermission.id)
        if self.role is not None:
            stmt = stmt.where(Role.id == self.role.id)
        rows = ctx.session.execute(stmt).all()
        return ListResult([RolePermissionResponse.of(p, r) for p, r in rows], len(rows))


@api_command("updateRolePermission", response=SuccessResponse, roles=ROOT_ADMIN, since="4.9.0",
             event_type="ROLE.PERMISSION.UPDATE", description="Updates a role permission order")
class UpdateRolePermission(Command):
    role = Param(UUID, "roleid", required=True, entity=Role, related=RELATED, description="ID of the role")
    rule_order = Param(LIST, "ruleorder", item_type=UUID, entity=RolePermission, description="The parent role"
                       " permission uuid, use 0 to move this rule at the top of the list")
    rule = Param(UUID, "ruleid", entity=RolePermission, since="4.11", description="Role permission rule id")
    permission = Param(STRING, choices=PERMISSIONS, since="4.11", description="Rule permission, can be:"
                       " allow or deny")

    def execute(self, ctx: CallContext) -> Result:
        ident = ctx.services.identity(ctx)
        if self.rule_order is not None:
            if self.rule is not None or self.permission is not None:
                raise InvalidParameterValue("Use either ruleorder, or ruleid with permission")
            ident.reorder_permissions(ctx.me, self.role, self.rule_order)
        elif self.rule is not None and self.permission is not None:
            if self.rule.role_id != self.role.id:
                raise InvalidParameterValue("The rule does not belong to the given role")
            ident.update_permission(ctx.me, self.rule, permission=self.permission)
        else:
            raise InvalidParameterValue("Please provide ruleorder, or ruleid with permission")
        return Success()


@api_command("deleteRolePermission", response=SuccessResponse, roles=ROOT_ADMIN, since="4.9.0",
             event_type="ROLE.PERMISSION.DELETE", description="Deletes a role permission")
class DeleteRolePermission(Command):
    id = Param(UUID, required=True, entity=RolePermission, description="ID of the role permission")

    def execute(self, ctx: CallContext) -> Result:
        ctx.services.identity(ctx).delete_permission(ctx.me, self.id)
        return Success()
