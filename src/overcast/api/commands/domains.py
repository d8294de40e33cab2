"""Domain commands: the tree accounts live in."""

from __future__ import annotations

from sqlalchemy import select

from overcast.access.roles import ADMINS, ALL_ROLES
from overcast.api.context import CallContext
from overcast.api.declare import (
    BOOLEAN, INTEGER, LIST, STRING, UUID, Access, Command, ListResult, ObjectResult, Param, Result,
    Success, SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page, keyword_filter
from overcast.api.responses.identity import DomainResponse
from overcast.db.models import Domain

RELATED = ("createDomain", "listDomains", "updateDomain")


def domain_result(ctx: CallContext, domain: Domain) -> ObjectResult:
    return ObjectResult(DomainResponse.many(ctx.session, [domain])[0])


@api_command("createDomain", response=DomainResponse, roles=ADMINS, description="Creates a domain",
             event_type="DOMAIN.CREATE")
class CreateDomain(Command):
    name = Param(STRING, required=True, description="creates domain with this name")
    parent = Param(UUID, "parentdomainid", entity=Domain, acl=Access.OPERATE, related=RELATED,
                   description="assigns new domain a parent domain by domain ID of the parent. If no"
                   " parent domain is specified, the ROOT domain is assumed.")
    network_domain = Param(STRING, "networkdomain", description="Network domain for networks in the domain")
    domain_uuid = Param(STRING, "domainid", since="4.2",
                        description="Domain UUID, required for adding domain from another Region")

    def execute(self, ctx: CallContext) -> Result:
        domain = ctx.services.identity(ctx).create_domain(
            ctx.me, self.name, parent=self.parent, network_domain=self.network_domain, uuid=self.domain_uuid)
        return domain_result(ctx, domain)


@api_command("updateDomain", response=DomainResponse, roles=ADMINS,
             description="Updates a domain with a new name", event_type="DOMAIN.UPDATE")
class UpdateDomain(Command):
    domain = Param(UUID, "id", required=True, entity=Domain, acl=Access.OPERATE, related=RELATED,
                   description="ID of domain to update")
    name = Param(STRING, description="updates domain with this name")
    network_domain = Param(STRING, "networkdomain", description="Network domain for the domain's networks")

    def execute(self, ctx: CallContext) -> Result:
        domain = ctx.services.identity(ctx).update_domain(
            ctx.me, self.domain, name=self.name, network_domain=self.network_domain)
        return domain_result(ctx, domain)


@api_command("deleteDomain", response=SuccessResponse, roles=ADMINS, is_async=True,
             description="Deletes a specified domain", event_type="DOMAIN.DELETE", idempotent=True)
class DeleteDomain(Command):
    domain = Param(UUID, "id", required=True, entity=Domain, acl=Access.OPERATE, related=RELATED,
                   description="ID of domain to delete")
    cleanup = Param(BOOLEAN, description="true if all domain resources (child domains, accounts) have to"
                    " be cleaned up, false otherwise")

    def instance(self) -> tuple[str | None, str | None]:
        return "Domain", self.domain.uuid

    def execute(self, ctx: CallContext) -> Result:
        ctx.services.identity(ctx).delete_domain(ctx.me, self.domain, cleanup=bool(self.cleanup))
        return Success()


class _ListDomainsBase(Command):
    id = Param(UUID, entity=Domain, acl=Access.LIST, related=RELATED, description="List domain by domain ID.")
    name = Param(STRING, description="List domain by domain name.")
    list_all = Param(BOOLEAN, "listall", description="If set to false, list only resources belonging to"
                     " the command's caller; if set to true - list resources that the caller is authorized"
                     " to see. Default value is false")

    def base_query(self, ctx: CallContext):  # type: ignore[no-untyped-def]
        me = ctx.me
        stmt = select(Domain).where(Domain.removed.is_(None)).order_by(Domain.path)
        if not me.is_admin:
            return stmt.where(Domain.id == me.domain_id)
        return stmt.where(Domain.path.startswith(me.domain_path))

    def filters(self, stmt):  # type: ignore[no-untyped-def]
        if self.id is not None:
            stmt = stmt.where(Domain.id == self.id.id)
        if self.name:
            stmt = stmt.where(Domain.name == self.name)
        if getattr(self, "level", None) is not None:
            stmt = stmt.where(Domain.level == self.level)
        kw = keyword_filter(self.keyword, Domain.name)
        return stmt if kw is None else stmt.where(kw)


@api_command("listDomains", response=DomainResponse, roles=ALL_ROLES, is_list=True,
             description="Lists domains and provides detailed information for listed domains")
class ListDomains(_ListDomainsBase):
    level = Param(INTEGER, description="List domains by domain level.")
    details = Param(LIST, description="comma separated list of domain details requested, value can be a"
                    " list of [ all, resource, min]")

    def execute(self, ctx: CallContext) -> Result:
        stmt = self.filters(self.base_query(ctx))
        if not self.list_all and self.id is None:
            stmt = stmt.where(Domain.id == ctx.me.domain_id)
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult(DomainResponse.many(ctx.session, rows), count)


@api_command("listDomainChildren", response=DomainResponse, roles=ADMINS, is_list=True,
             description="Lists all children domains belonging to a specified domain")
class ListDomainChildren(_ListDomainsBase):
    is_recursive = Param(BOOLEAN, "isrecursive", description="to return the entire tree, use the value"
                         " \"true\". To return the first level children, use the value \"false\".")

    def execute(self, ctx: CallContext) -> Result:
        parent = self.id or ctx.session.get(Domain, ctx.me.domain_id)
        assert parent is not None
        stmt = select(Domain).where(Domain.removed.is_(None), Domain.id != parent.id).order_by(Domain.path)
        if self.is_recursive or self.list_all:
            stmt = stmt.where(Domain.path.startswith(parent.path))
        else:
            stmt = stmt.where(Domain.parent_id == parent.id)
        if self.name:
            stmt = stmt.where(Domain.name == self.name)
        kw = keyword_filter(self.keyword, Domain.name)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult(DomainResponse.many(ctx.session, rows), count)


__all__ = ["CreateDomain", "DeleteDomain", "ListDomainChildren", "ListDomains", "UpdateDomain"]
