"""Resource tags: which resources take tags (CloudStack's ResourceObjectType), who owns a tag, and the
``tags[i].key/value`` filter every list command of a taggable resource accepts.

A tag belongs to the account that owns the tagged resource (CloudStack's rule): the caller must be
allowed to operate on that account to tag or untag the resource, and the tag is listed with the
resource's owner. Deleting a resource deletes its tags (:func:`remove_tags`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from overcast.access.acl import AccessChecker
from overcast.api.declare import Access
from overcast.db.models import (
    Account,
    Network,
    PublicIp,
    ResourceTag,
    SecurityGroup,
    SecurityGroupRule,
    Snapshot,
    SnapshotPolicy,
    Template,
    User,
    VirtualMachine,
    VmSnapshot,
    Volume,
)
from overcast.engine.context import EngineContext
from overcast.errors import InvalidParameterValue

#: The system account: owner of resources that belong to no tenant (CloudStack's ACCOUNT_ID_SYSTEM).
SYSTEM_ACCOUNT_ID = 1
#: Longest key, value and customer a tag may have (the columns' size).
MAX_TAG_LENGTH = 255


@dataclass(frozen=True)
class Taggable:
    """A resource type that takes tags: its model, an extra row filter, and how to find its owner."""

    model: type[Any]
    #: Extra condition on the model's rows (templates vs ISOs share a table).
    where: Callable[[], ColumnElement[bool]] | None = None
    #: (account id, domain id) owning a row; default: the row's own account_id/domain_id.
    owner: Callable[[Session, Any], tuple[int | None, int | None]] | None = None


def _own_account(_s: Session, row: Account) -> tuple[int | None, int | None]:
    return row.id, row.domain_id


def _user_owner(s: Session, row: User) -> tuple[int | None, int | None]:
    acct = s.get(Account, row.account_id)
    return row.account_id, acct.domain_id if acct else None


def _rule_owner(s: Session, row: SecurityGroupRule) -> tuple[int | None, int | None]:
    sg = s.get(SecurityGroup, row.security_group_id)
    return (sg.account_id, sg.domain_id) if sg else (None, None)


#: CloudStack's ResourceObjectType names (case-insensitive on input) of the resources Overcast keeps.
TAGGABLE: dict[str, Taggable] = {
    "UserVm": Taggable(VirtualMachine),
    "Template": Taggable(Template, where=lambda: Template.format != "ISO"),
    "ISO": Taggable(Template, where=lambda: Template.format == "ISO"),
    "Volume": Taggable(Volume),
    "Snapshot": Taggable(Snapshot),
    "VMSnapshot": Taggable(VmSnapshot),
    "SnapshotPolicy": Taggable(SnapshotPolicy),
    "Network": Taggable(Network),
    "SecurityGroup": Taggable(SecurityGroup),
    "SecurityGroupRule": Taggable(SecurityGroupRule, owner=_rule_owner),
    "PublicIpAddress": Taggable(PublicIp),
    "Account": Taggable(Account, owner=_own_account),
    "User": Taggable(User, owner=_user_owner),
}

#: ResourceObjectType names that support tags in CloudStack but that Overcast has no such resource
#: for (yet): a tag request names a resource that can't exist here.
TAGGABLE_ELSEWHERE = ("VMInstance", "Backup", "LoadBalancer", "PortForwardingRule", "FirewallRule", "Project",
                      "Vpc", "NetworkACL", "StaticRoute", "RemoteAccessVpn", "VpcOffering", "VnfTemplate",
                      "KubernetesCluster", "AutoScaleVmGroup")
#: ResourceObjectType names CloudStack knows but that take no tags (only details or icons).
NOT_TAGGABLE = ("DomainRouter", "Nic", "Zone", "ServiceOffering", "Storage", "PrivateGateway", "NetworkACLList",
                "VpnGateway", "CustomerGateway", "VpnConnection", "DiskOffering", "AutoScaleVmProfile",
                "LBStickinessPolicy", "LBHealthCheckPolicy", "GuestOs", "NetworkOffering", "Domain", "ObjectStore")

_CANONICAL = {name.lower(): name for name in (*TAGGABLE, *TAGGABLE_ELSEWHERE, *NOT_TAGGABLE)}


def canonical_type(name: str) -> str:
    """The ResourceObjectType name for ``name`` (any case), or 431 as CloudStack answers."""
    canonical = _CANONICAL.get(name.strip().lower())
    if canonical is None:
        raise InvalidParameterValue(f"Invalid resource type {name}")
    return canonical


def taggable_type(name: str) -> str:
    """Like :func:`canonical_type`, and the type must take tags."""
    canonical = canonical_type(name)
    if canonical in NOT_TAGGABLE:
        raise InvalidParameterValue(f"The resource type {canonical} doesn't support resource tags")
    return canonical


def find_resource(s: Session, resource_type: str, resource_id: str) -> Any:
    """The live row of ``resource_type`` with uuid ``resource_id``, or 431 in CloudStack's words."""
    spec = TAGGABLE.get(resource_type)
    row = None
    if spec is not None:
        model = spec.model
        stmt = select(model).where(model.uuid == resource_id.strip().lower())
        if hasattr(model, "removed"):
            stmt = stmt.where(model.removed.is_(None))
        if spec.where is not None:
            stmt = stmt.where(spec.where())
        row = s.scalar(stmt)
    if row is None:
        raise InvalidParameterValue(f"Unable to find resource by uuid {resource_id} and type {resource_type}")
    return row


def owner_of(s: Session, resource_type: str, row: Any) -> tuple[int, int]:
    """(account id, domain id) that own ``row``: the system account for rows of no tenant."""
    spec = TAGGABLE[resource_type]
    if spec.owner is not None:
        account_id, domain_id = spec.owner(s, row)
    else:
        account_id, domain_id = getattr(row, "account_id", None), getattr(row, "domain_id", None)
    if account_id is None:
        account_id = SYSTEM_ACCOUNT_ID
    if domain_id is None:
        acct = s.get(Account, account_id)
        domain_id = acct.domain_id if acct is not None else 1
    return int(account_id), int(domain_id)


def _resolve(ctx: EngineContext, resource_type: str, resource_ids: Sequence[str]) -> list[tuple[Any, int, int]]:
    """Rows named by ``resource_ids`` with their owners; the caller must operate on each owner."""
    if not resource_ids:
        raise InvalidParameterValue("Unable to execute API command due to empty value for parameter resourceids")
    s = ctx.session
    out = []
    seen: set[str] = set()
    for rid in resource_ids:
        if rid.lower() in seen:
            continue
        seen.add(rid.lower())
        row = find_resource(s, resource_type, rid)
        account_id, domain_id = owner_of(s, resource_type, row)
        if ctx.caller is not None:
            AccessChecker(s).check_owned(ctx.caller, account_id, Access.OPERATE)
        out.append((row, account_id, domain_id))
    return out


def tag_pairs(entries: Iterable[Mapping[str, str]] | None, *, value_required: bool) -> list[tuple[str, str | None]]:
    """``tags[i].key`` / ``tags[i].value`` pairs of a MAP parameter, validated."""
    pairs: list[tuple[str, str | None]] = []
    for i, entry in enumerate(entries or []):
        key = entry.get("key")
        value = entry.get("value")
        if key is None or not key.strip():
            raise InvalidParameterValue(f"Invalid value for parameter tags: tags[{i}].key is missing or empty")
        if value_required and (value is None or value == ""):
            raise InvalidParameterValue(f"Value for the key {key} is either null or empty")
        for text in (key, value or ""):
            if len(text) > MAX_TAG_LENGTH:
                raise InvalidParameterValue(f"Value greater than max allowed length {MAX_TAG_LENGTH} for param: tags")
        pairs.append((key, value))
    return pairs


def create_tags(ctx: EngineContext, resource_type: str, resource_ids: Sequence[str],
                pairs: Sequence[tuple[str, str | None]], customer: str | None = None) -> list[ResourceTag]:
    """Tag every resource with every pair (all or nothing), the tags owned by each resource's owner."""
    s = ctx.session
    if not pairs:
        raise InvalidParameterValue("Unable to execute API command createtags due to empty value for parameter tags")
    keys = [k.lower() for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise InvalidParameterValue("Invalid value for parameter tags: a key is given twice")
    created: list[ResourceTag] = []
    for row, account_id, domain_id in _resolve(ctx, resource_type, resource_ids):
        for key, value in pairs:
            # Keys are unique per resource whatever their case (MariaDB compares them without case).
            clash = s.scalar(select(ResourceTag.id).where(
                ResourceTag.resource_type == resource_type, ResourceTag.resource_id == row.id,
                func.lower(ResourceTag.tag_key) == key.lower()))
            if clash is not None:
                raise InvalidParameterValue(f"tag {key} already on {resource_type} with id {row.uuid}")
            tag = ResourceTag(tag_key=key, tag_value=value, resource_type=resource_type, resource_id=row.id,
                              resource_uuid=row.uuid, account_id=account_id, domain_id=domain_id,
                              customer=customer)
            try:
                with s.begin_nested():
                    s.add(tag)
                    s.flush()
            except IntegrityError:  # a concurrent request added the same key first
                raise InvalidParameterValue(f"tag {key} already on {resource_type} with id {row.uuid}") from None
            created.append(tag)
    for account_id in sorted({t.account_id for t in created}):
        mine = [t for t in created if t.account_id == account_id]
        ctx.event("CREATE_TAGS", f"Creating tags {', '.join(sorted({t.tag_key for t in mine}))} on {resource_type}"
                  f" {', '.join(sorted({t.resource_uuid for t in mine}))}", account_id=account_id,
                  domain_id=mine[0].domain_id, resource_type=resource_type,
                  resource_uuid=mine[0].resource_uuid if len({t.resource_uuid for t in mine}) == 1 else None)
    return created


def delete_tags(ctx: EngineContext, resource_type: str, resource_ids: Sequence[str],
                pairs: Sequence[tuple[str, str | None]]) -> int:
    """Delete the resources' tags matching ``pairs`` (key, or key and value; case-insensitive, as
    CloudStack), or all their tags when ``pairs`` is empty. 431 when nothing matches."""
    s = ctx.session
    resolved = _resolve(ctx, resource_type, resource_ids)
    rows = list(s.scalars(select(ResourceTag).where(
        ResourceTag.resource_type == resource_type,
        ResourceTag.resource_id.in_([row.id for row, _, _ in resolved])).order_by(ResourceTag.id)))
    doomed = []
    for tag in rows:
        if not pairs:
            doomed.append(tag)
            continue
        for key, value in pairs:
            if tag.tag_key.lower() == key.lower() and (value is None or tag.tag_value.lower() == value.lower()):
                doomed.append(tag)
                break
    if not doomed:
        raise InvalidParameterValue("Failed to delete tags: no tag of the given resources matches the parameter tags")
    s.execute(delete(ResourceTag).where(ResourceTag.id.in_([t.id for t in doomed]))
              .execution_options(synchronize_session=False))
    for account_id in sorted({t.account_id for t in doomed}):
        mine = [t for t in doomed if t.account_id == account_id]
        ctx.event("DELETE_TAGS", f"Deleting tags {', '.join(sorted({t.tag_key for t in mine}))} on {resource_type}"
                  f" {', '.join(sorted({t.resource_uuid for t in mine}))}", account_id=account_id,
                  domain_id=mine[0].domain_id, resource_type=resource_type,
                  resource_uuid=mine[0].resource_uuid if len({t.resource_uuid for t in mine}) == 1 else None)
    s.flush()
    return len(doomed)


def remove_tags(s: Session, resource_type: str, ids: int | Iterable[int]) -> None:
    """Drop the tags of deleted resources (call it where a resource is removed for good)."""
    id_list = [ids] if isinstance(ids, int) else list(ids)
    if id_list:
        s.execute(delete(ResourceTag).where(ResourceTag.resource_type == resource_type,
                                            ResourceTag.resource_id.in_(id_list))
                  .execution_options(synchronize_session=False))


def tag_filter(resource_type: str | Sequence[str], id_col: Any,
               entries: Iterable[Mapping[str, str]] | None) -> list[ColumnElement[bool]]:
    """Conditions for a list command's ``tags[i].key=k&tags[i].value=v`` parameter: the row (``id_col``)
    carries every given tag (a tag without a value matches any value). Use as
    ``stmt = stmt.where(*tag_filter("Volume", Volume.id, self.tags))``."""
    types = [resource_type] if isinstance(resource_type, str) else list(resource_type)
    clauses: list[ColumnElement[bool]] = []
    for i, entry in enumerate(entries or []):
        key, value = entry.get("key"), entry.get("value")
        if key is None or not key.strip():
            raise InvalidParameterValue(f"Invalid value for parameter tags: tags[{i}].key is missing or empty")
        sub = select(ResourceTag.resource_id).where(ResourceTag.resource_type.in_(types), ResourceTag.tag_key == key)
        if value is not None and value != "":
            sub = sub.where(ResourceTag.tag_value == value)
        clauses.append(id_col.in_(sub))
    return clauses


__all__ = ["TAGGABLE", "canonical_type", "create_tags", "delete_tags", "find_resource", "owner_of",
           "remove_tags", "tag_filter", "tag_pairs", "taggable_type"]
