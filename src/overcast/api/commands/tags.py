"""Resource tag commands: createTags, deleteTags, listTags."""

from __future__ import annotations

from sqlalchemy import select

from overcast.access.acl import resolve_owner_filters, scope_owned
from overcast.access.roles import ALL_ROLES
from overcast.api.context import CallContext
from overcast.api.declare import (
    BOOLEAN, LIST, MAP, STRING, UUID, Command, ListResult, Param, Result, Success, SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import fetch_page, keyword_filter
from overcast.api.responses.common import ResourceTagResponse
from overcast.api.responses.tags import tag_payload
from overcast.db.models import Domain, ResourceTag
from overcast.engine.tags import canonical_type, create_tags, delete_tags, tag_pairs, taggable_type

RESOURCE_TYPE_HELP = ("type of the resource: UserVm, Template, ISO, Volume, Snapshot, VMSnapshot, SnapshotPolicy,"
                      " Network, SecurityGroup, SecurityGroupRule, PublicIpAddress, Account, User")


@api_command("createTags", response=SuccessResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="CREATE_TAGS", since="4.0.0", description="Creates resource tag(s)")
class CreateTags(Command):
    resource_type = Param(STRING, "resourcetype", required=True, description=RESOURCE_TYPE_HELP)
    resource_ids = Param(LIST, "resourceids", required=True, description="list of resources to create the tags"
                         " for")
    tags = Param(MAP, required=True, description="Map of tags (key/value pairs):"
                 " tags[0].key=k&tags[0].value=v")
    customer = Param(STRING, description="identifies client specific tag. When the value is not null, the tag"
                     " can't be used by cloudStack code internally")

    def execute(self, ctx: CallContext) -> Result:
        rtype = taggable_type(self.resource_type)
        create_tags(ctx, rtype, list(self.resource_ids or []), tag_pairs(self.tags, value_required=True),
                    self.customer)
        return Success()


@api_command("deleteTags", response=SuccessResponse, roles=ALL_ROLES, is_async=True, idempotent=True,
             event_type="DELETE_TAGS", since="4.0.0", description="Deleting resource tag(s)")
class DeleteTags(Command):
    resource_type = Param(STRING, "resourcetype", required=True, description="Delete tag by resource type")
    resource_ids = Param(LIST, "resourceids", required=True, description="Delete tags for resource id(s)")
    tags = Param(MAP, description="Delete tags matching key/value pairs: tags[0].key=k (any value) or"
                 " tags[0].key=k&tags[0].value=v. Without tags, every tag of the resources is deleted")

    def execute(self, ctx: CallContext) -> Result:
        rtype = taggable_type(self.resource_type)
        delete_tags(ctx, rtype, list(self.resource_ids or []), tag_pairs(self.tags, value_required=False))
        return Success()


@api_command("listTags", response=ResourceTagResponse, roles=ALL_ROLES, is_list=True, since="4.0.0",
             description="List resource tag(s)")
class ListTags(Command):
    resource_type = Param(STRING, "resourcetype", description="list by resource type")
    resource_id = Param(STRING, "resourceid", description="list by resource id")
    key = Param(STRING, description="list by key")
    value = Param(STRING, description="list by value")
    customer = Param(STRING, description="list by customer name")
    account = Param(STRING, description="list resources by account. Must be used with the domainId parameter.")
    domain = Param(UUID, "domainid", entity=Domain, description="list only resources belonging to the domain"
                   " specified")
    is_recursive = Param(BOOLEAN, "isrecursive", description="defaults to false, but if true, lists all"
                         " resources from the parent specified by the domainId till leaves.")
    list_all = Param(BOOLEAN, "listall", description="If set to false, list only resources belonging to the"
                     " command's caller; if set to true - list resources that the caller is authorized to see."
                     " Default value is false")
    project = Param(UUID, "projectid", description="list objects by project; if projectid=-1 lists All VMs")

    def execute(self, ctx: CallContext) -> Result:
        me = ctx.me
        domain, account = resolve_owner_filters(ctx.acl, me, domain=self.domain, account_name=self.account)
        stmt = scope_owned(select(ResourceTag).order_by(ResourceTag.id), me, account_col=ResourceTag.account_id,
                           domain_col=ResourceTag.domain_id, list_all=bool(self.list_all) or self.project == -1,
                           is_recursive=bool(self.is_recursive), domain=domain, account=account)
        if self.resource_type:
            stmt = stmt.where(ResourceTag.resource_type == canonical_type(self.resource_type))
        if self.resource_id:
            stmt = stmt.where(ResourceTag.resource_uuid == self.resource_id.strip().lower())
        if self.key is not None:
            stmt = stmt.where(ResourceTag.tag_key == self.key)
        if self.value is not None:
            stmt = stmt.where(ResourceTag.tag_value == self.value)
        if self.customer is not None:
            stmt = stmt.where(ResourceTag.customer == self.customer)
        kw = keyword_filter(self.keyword, ResourceTag.tag_key, ResourceTag.tag_value)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult(tag_payload(ctx.session, rows), count)


__all__ = ["CreateTags", "DeleteTags", "ListTags"]
