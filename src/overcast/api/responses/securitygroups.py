"""Security groups and their rules, built for many groups in a few queries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast.api.declare import Field, ResponseObject
from overcast.api.responses.common import Owners, ResourceTagResponse, tags_for
from overcast.db.models import SecurityGroup, SecurityGroupRule, SecurityGroupVm, VirtualMachine

F = Field


class SecurityGroupRuleResponse(ResponseObject):
    object_name = "securitygrouprule"
    fields = (
        F("ruleid", "string", "the id of the security group rule"),
        F("protocol", "string", "the protocol of the security group rule"),
        F("startport", "integer", "the starting IP of the security group rule"),
        F("endport", "integer", "the ending IP of the security group rule "),
        F("icmptype", "integer", "the type of the ICMP message response"),
        F("icmpcode", "integer", "the code for the ICMP message response"),
        F("cidr", "string", "the CIDR notation for the base IP address of the security group rule"),
        F("securitygroupname", "string", "security group name"),
        F("account", "string", "account owning the security group rule"),
        F("tags", "set", "the list of resource tags associated with the rule", response=ResourceTagResponse),
    )


class SecurityGroupResponse(ResponseObject):
    object_name = "securitygroup"
    fields = (
        F("id", "string", "the ID of the security group"),
        F("name", "string", "the name of the security group"),
        F("description", "string", "the description of the security group"),
        F("account", "string", "the account owning the security group"),
        F("domainid", "string", "the domain ID of the security group"),
        F("domain", "string", "the domain name of the security group"),
        F("domainpath", "string", "path of the Domain the security group belongs to"),
        F("ingressrule", "set", "the list of ingress rules associated with the security group",
          response=SecurityGroupRuleResponse),
        F("egressrule", "set", "the list of egress rules associated with the security group",
          response=SecurityGroupRuleResponse),
        F("tags", "set", "the list of resource tags associated with the rule", response=ResourceTagResponse),
        F("virtualmachinecount", "integer", "the number of virtualmachines associated with this securitygroup"),
        F("virtualmachineids", "set", "the list of virtualmachine ids associated with this securitygroup"),
    )


def rule_payload(s: Session, rules: Iterable[SecurityGroupRule]) -> list[dict[str, Any]]:
    """Wire dicts of rules (of any groups): a rule allowing a group names it and its account."""
    rules = list(rules)
    if not rules:
        return []
    allowed_ids = {r.allowed_group_id for r in rules if r.allowed_group_id}
    allowed = {g.id: g for g in s.scalars(select(SecurityGroup).where(SecurityGroup.id.in_(allowed_ids)))} \
        if allowed_ids else {}
    owners = Owners(s, allowed.values())
    tags = tags_for(s, "SecurityGroupRule", [r.id for r in rules])
    out = []
    for r in rules:
        group = allowed.get(r.allowed_group_id or 0)
        icmp = r.protocol == "icmp"
        out.append({
            "ruleid": r.uuid, "protocol": r.protocol,
            "startport": None if icmp else r.start_port, "endport": None if icmp else r.end_port,
            "icmptype": r.icmp_type if icmp else None, "icmpcode": r.icmp_code if icmp else None,
            "cidr": r.cidr, "securitygroupname": group.name if group else None,
            "account": owners.fields(group)["account"] if group else None, "tags": tags[r.id],
        })  # fmt: skip
    return out


def security_group_payload(s: Session, groups: list[SecurityGroup], *,
                           only_rules: list[SecurityGroupRule] | None = None) -> list[dict[str, Any]]:
    """Wire dicts of ``groups``; ``only_rules``: show these rules only (what authorize answers)."""
    if not groups:
        return []
    ids = [g.id for g in groups]
    owners = Owners(s, groups)
    rules = only_rules if only_rules is not None else list(s.scalars(
        select(SecurityGroupRule).where(SecurityGroupRule.security_group_id.in_(ids)).order_by(SecurityGroupRule.id)))
    wire = dict(zip([r.id for r in rules], rule_payload(s, rules), strict=True))
    vms: dict[int, list[str]] = {i: [] for i in ids}
    for gid, vm_uuid in s.execute(select(SecurityGroupVm.security_group_id, VirtualMachine.uuid).join(
            VirtualMachine, VirtualMachine.id == SecurityGroupVm.vm_id).where(
            SecurityGroupVm.security_group_id.in_(ids), VirtualMachine.removed.is_(None)).order_by(VirtualMachine.id)):
        vms[gid].append(vm_uuid)
    tags = tags_for(s, "SecurityGroup", ids)
    out = []
    for g in groups:
        own = owners.fields(g)
        mine = [r for r in rules if r.security_group_id == g.id]
        out.append({
            "id": g.uuid, "name": g.name, "description": g.description, "account": own["account"],
            "domainid": own["domainid"], "domain": own["domain"], "domainpath": own["domainpath"],
            "ingressrule": [wire[r.id] for r in mine if r.rule_type == "ingress"],
            "egressrule": [wire[r.id] for r in mine if r.rule_type == "egress"],
            "tags": tags[g.id], "virtualmachinecount": len(vms[g.id]), "virtualmachineids": vms[g.id],
        })  # fmt: skip
    return out


__all__ = ["SecurityGroupResponse", "SecurityGroupRuleResponse", "rule_payload", "security_group_payload"]
