"""Security groups (basic zones and security-group-enabled zones): groups, their ingress and egress
rules, and sending the rules to the providers of the networks their VMs are in.

Rules validate as CloudStack's ``SecurityGroupManagerImpl`` does (the same messages). A rule is one
row per CIDR or per allowed group; adding a rule that exists already is refused.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from overcast.db.models import (
    Account,
    Network,
    Nic,
    SecurityGroup,
    SecurityGroupRule,
    SecurityGroupVm,
    VirtualMachine,
)
from overcast.engine.context import EngineContext
from overcast.engine.networks import NetworkService, NetworkTarget
from overcast.errors import (
    InvalidParameterValue,
    NetworkRuleConflict,
    ResourceInUse,
    ResourceUnavailable,
)

DEFAULT_GROUP = "default"
INGRESS, EGRESS = "ingress", "egress"
#: Protocol numbers with names: a rule given by number is stored by name.
PROTOCOL_NUMBERS = {"1": "icmp", "6": "tcp", "17": "udp", "47": "gre", "50": "esp", "51": "ah"}
#: IP protocols without ports that rules may name (Ansible's security group rule module offers these).
IP_PROTOCOLS = ("ah", "esp", "gre")


def default_security_group(ctx: EngineContext, account: Account) -> SecurityGroup:
    """The account's ``default`` group, created on first use (safe when deploys race to create it)."""
    s = ctx.session
    stmt = select(SecurityGroup).where(SecurityGroup.account_id == account.id, SecurityGroup.name == DEFAULT_GROUP)
    sg = s.scalar(stmt)
    if sg is not None:
        return sg
    try:
        with s.begin_nested():
            sg = SecurityGroup(name=DEFAULT_GROUP, description="Default Security Group", account_id=account.id,
                               domain_id=account.domain_id)
            s.add(sg)
            s.flush()
        return sg
    except IntegrityError:
        sg = s.scalar(stmt)  # a concurrent transaction created it (and committed: READ COMMITTED sees it)
        if sg is None:
            raise
        return sg


def create_security_group(ctx: EngineContext, owner: Account, name: str, description: str | None) -> SecurityGroup:
    s = ctx.session
    name = (name or "").strip()
    if not name:
        raise InvalidParameterValue("Please specify a name for the security group (parameter name)")
    taken = f"Unable to create security group, a group with name {name} already exists."
    if s.scalar(select(SecurityGroup.id).where(SecurityGroup.account_id == owner.id,
                                               func.lower(SecurityGroup.name) == name.lower())) is not None:
        raise InvalidParameterValue(taken)
    try:
        with s.begin_nested():
            sg = SecurityGroup(name=name, description=description, account_id=owner.id, domain_id=owner.domain_id)
            s.add(sg)
            s.flush()
    except IntegrityError:
        raise InvalidParameterValue(taken) from None
    ctx.event("SG.CREATE", f"Creating security group {name}", account_id=owner.id, domain_id=owner.domain_id,
              resource_type="SecurityGroup", resource_uuid=sg.uuid)
    return sg


def find_group(s: Session, owner: Account, name: str) -> SecurityGroup | None:
    return s.scalar(select(SecurityGroup).where(SecurityGroup.account_id == owner.id, SecurityGroup.name == name))


def delete_security_group(ctx: EngineContext, sg: SecurityGroup) -> None:
    s = ctx.session
    if sg.name.lower() == DEFAULT_GROUP:
        raise InvalidParameterValue("The network default group cannot be deleted",
                                    uuids=[(sg.uuid, "securityGroupId")])
    in_use = s.scalar(select(func.count()).select_from(SecurityGroupVm).join(
        VirtualMachine, VirtualMachine.id == SecurityGroupVm.vm_id).where(
        SecurityGroupVm.security_group_id == sg.id, VirtualMachine.removed.is_(None)))
    if in_use:
        raise ResourceInUse(f"Cannot delete group when it's in use by virtual machines ({in_use} VMs use"
                            f" security group {sg.name})", uuids=[(sg.uuid, "securityGroupId")])
    allowing = s.scalar(select(func.count()).select_from(SecurityGroupRule).where(
        SecurityGroupRule.allowed_group_id == sg.id, SecurityGroupRule.security_group_id != sg.id))
    if allowing:
        raise ResourceInUse("Cannot delete group when there are security rules that allow this group",
                            uuids=[(sg.uuid, "securityGroupId")])
    from overcast.engine.tags import remove_tags

    rule_ids = list(s.scalars(select(SecurityGroupRule.id).where(SecurityGroupRule.security_group_id == sg.id)))
    remove_tags(s, "SecurityGroupRule", rule_ids)
    remove_tags(s, "SecurityGroup", sg.id)
    s.execute(delete(SecurityGroupRule).where(SecurityGroupRule.security_group_id == sg.id))
    s.execute(delete(SecurityGroupVm).where(SecurityGroupVm.security_group_id == sg.id))
    ctx.event("SG.DELETE", f"Deleting security group {sg.name}", account_id=sg.account_id, domain_id=sg.domain_id,
              resource_type="SecurityGroup", resource_uuid=sg.uuid)
    s.delete(sg)
    s.flush()


# -- rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleSpec:
    protocol: str
    start: int | None
    end: int | None
    icmp_type: int | None
    icmp_code: int | None


def rule_spec(protocol: str | None, start_port: int | None, end_port: int | None, icmp_type: int | None,
              icmp_code: int | None) -> RuleSpec:
    """The protocol and ports of a rule, validated with CloudStack's messages."""
    proto = (protocol or "all").strip().lower()
    if proto.isdigit():
        if not 0 <= int(proto) <= 255:
            raise InvalidParameterValue(f"Invalid protocol {protocol}")
        proto = PROTOCOL_NUMBERS.get(str(int(proto)), str(int(proto)))
    elif proto not in ("tcp", "udp", "icmp", "all", *IP_PROTOCOLS):
        raise InvalidParameterValue(f"Invalid protocol {protocol}")
    if proto == "icmp":
        if start_port is not None or end_port is not None:
            raise InvalidParameterValue("Cannot specify startport or endport for the icmp protocol: use icmptype and"
                                        " icmpcode")
        if icmp_type is None or icmp_code is None:
            raise InvalidParameterValue(f"Invalid ICMP type/code specified, icmpType = {icmp_type}, icmpCode ="
                                        f" {icmp_code}")
        if icmp_type == -1 and icmp_code != -1:
            raise InvalidParameterValue("Invalid icmp code")
        if icmp_type != -1 and icmp_code == -1:
            raise InvalidParameterValue("Invalid icmp code: need non-negative icmp code ")
        if icmp_code > 255 or icmp_type > 255 or icmp_code < -1 or icmp_type < -1:
            raise InvalidParameterValue("Invalid icmp type/code ")
        return RuleSpec("icmp", None, None, icmp_type, icmp_code)
    if icmp_type is not None or icmp_code is not None:
        raise InvalidParameterValue(f"icmptype and icmpcode can only be given for the icmp protocol, not {proto}")
    if proto in ("tcp", "udp"):
        if start_port is None or end_port is None:
            raise InvalidParameterValue(f"Invalid port range specified, startPort = {start_port}, endPort = {end_port}")
        if start_port == 0 and end_port == 0:
            end_port = 65535
        if start_port > end_port:
            raise InvalidParameterValue(f"Invalid port range {start_port}:{end_port}")
        if start_port > 65535 or end_port > 65535 or start_port < -1 or end_port < -1:
            raise InvalidParameterValue(f"Invalid port numbers {start_port}:{end_port}")
        if start_port < 0 or end_port < 0:
            raise InvalidParameterValue(f"Invalid port range {start_port}:{end_port}")
        return RuleSpec(proto, start_port, end_port, None, None)
    if start_port is not None or end_port is not None:
        raise InvalidParameterValue("Cannot specify startPort or endPort without specifying protocol")
    return RuleSpec(proto, 0, 0, None, None)


def _cidrs(values: Iterable[str]) -> list[str]:
    out = []
    for value in values:
        text = value.strip()
        if not text:
            continue
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise InvalidParameterValue(f"Invalid cidr {value} (parameter cidrlist)") from None
        if "/" not in text:
            raise InvalidParameterValue(f"Invalid cidr {value} (parameter cidrlist)")
        out.append(str(net))
    return list(dict.fromkeys(out))


def _allowed_groups(s: Session, owner: Account, entries: list[Mapping[str, str]]) -> list[SecurityGroup]:
    groups = []
    for i, entry in enumerate(entries):
        lower = {k.lower(): v for k, v in entry.items()}
        account_name, group_name = lower.get("account"), lower.get("group")
        if not account_name or not group_name:
            raise InvalidParameterValue(f"usersecuritygrouplist[{i}] needs both account and group (parameter"
                                        " usersecuritygrouplist)")
        account = s.scalar(select(Account).where(Account.name == account_name, Account.domain_id == owner.domain_id,
                                                 Account.removed.is_(None)))
        if account is None:
            raise InvalidParameterValue(f"Nonexistent account: {account_name} when trying to authorize security group"
                                        " rule (parameter usersecuritygrouplist)")
        group = find_group(s, account, group_name)
        if group is None:
            raise InvalidParameterValue(f"Nonexistent group {group_name} for account {account_name} is given, unable"
                                        " to authorize security group rule.")
        groups.append(group)
    return list({g.id: g for g in groups}.values())


def authorize(ctx: EngineContext, sg: SecurityGroup, rule_type: str, *, protocol: str | None,
              start_port: int | None, end_port: int | None, icmp_type: int | None, icmp_code: int | None,
              cidrs: list[str] | None, user_groups: list[Mapping[str, str]] | None) -> list[SecurityGroupRule]:
    """Add ingress or egress rules to ``sg``: one per CIDR and per allowed group. Rules that exist
    already are skipped; if all exist, the request is refused."""
    s = ctx.session
    if not cidrs and not user_groups:
        raise InvalidParameterValue("At least one cidr or at least one security group needs to be specified"
                                    " (parameters cidrlist, usersecuritygrouplist)")
    owner = s.get(Account, sg.account_id)
    assert owner is not None
    spec = rule_spec(protocol, start_port, end_port, icmp_type, icmp_code)
    cidr_list = _cidrs(cidrs or [])
    allowed = _allowed_groups(s, owner, list(user_groups or []))
    existing = {_key(r) for r in s.scalars(select(SecurityGroupRule).where(
        SecurityGroupRule.security_group_id == sg.id, SecurityGroupRule.rule_type == rule_type))}
    added = []
    for cidr, group in [(c, None) for c in cidr_list] + [(None, g) for g in allowed]:
        rule = SecurityGroupRule(security_group_id=sg.id, rule_type=rule_type, protocol=spec.protocol,
                                 start_port=spec.start, end_port=spec.end, icmp_type=spec.icmp_type,
                                 icmp_code=spec.icmp_code, cidr=cidr, allowed_group_id=group.id if group else None)
        if _key(rule) in existing:
            continue
        existing.add(_key(rule))
        s.add(rule)
        added.append(rule)
    if not added:
        raise NetworkRuleConflict(f"Failed to authorize security group {rule_type} rule(s): the rule already exists"
                                  f" in security group {sg.name}", uuids=[(sg.uuid, "securityGroupId")])
    s.flush()
    event = "SG.AUTH.INGRESS" if rule_type == INGRESS else "SG.AUTH.EGRESS"
    ctx.event(event, f"Adding {rule_type} rule to security group {sg.name}", account_id=sg.account_id,
              domain_id=sg.domain_id, resource_type="SecurityGroup", resource_uuid=sg.uuid)
    try:
        apply_to_networks(ctx, sg)
    except ResourceUnavailable:
        for rule in added:  # undo our own step: the rules were committed before the providers were told
            s.delete(rule)
        s.flush()
        ctx.checkpoint()
        raise
    return added


def _key(rule: SecurityGroupRule) -> tuple[Any, ...]:
    return (rule.rule_type, rule.protocol, rule.start_port, rule.end_port, rule.icmp_type, rule.icmp_code, rule.cidr,
            rule.allowed_group_id)


def revoke(ctx: EngineContext, rule: SecurityGroupRule, rule_type: str) -> None:
    s = ctx.session
    if rule.rule_type != rule_type:
        raise InvalidParameterValue(f"Unable to find {rule_type} rule with id {rule.uuid} (parameter id)")
    sg = s.get(SecurityGroup, rule.security_group_id)
    assert sg is not None
    from overcast.engine.tags import remove_tags

    remove_tags(s, "SecurityGroupRule", rule.id)
    s.delete(rule)
    s.flush()
    event = "SG.REVOKE.INGRESS" if rule_type == INGRESS else "SG.REVOKE.EGRESS"
    ctx.event(event, f"Revoking {rule_type} rule {rule.uuid} of security group {sg.name}", account_id=sg.account_id,
              domain_id=sg.domain_id, resource_type="SecurityGroup", resource_uuid=sg.uuid)
    apply_to_networks(ctx, sg)


# -- providers ----------------------------------------------------------------------------------


def network_rules(s: Session, net: Network) -> list[dict[str, Any]]:
    """Every security group rule that applies to a VM NIC of ``net``, as plain dicts for the provider."""
    rows = s.execute(
        select(Nic.ip_address, VirtualMachine.uuid, SecurityGroup.name, SecurityGroupRule, SecurityGroup.id)
        .join(VirtualMachine, VirtualMachine.id == Nic.vm_id)
        .join(SecurityGroupVm, SecurityGroupVm.vm_id == VirtualMachine.id)
        .join(SecurityGroup, SecurityGroup.id == SecurityGroupVm.security_group_id)
        .join(SecurityGroupRule, SecurityGroupRule.security_group_id == SecurityGroup.id)
        .where(Nic.network_id == net.id, Nic.removed.is_(None), VirtualMachine.removed.is_(None))
        .order_by(VirtualMachine.id, SecurityGroupRule.id)).all()
    return [{"vm": vm_uuid, "ip": ip, "group": group, "rule": r.uuid, "type": r.rule_type, "protocol": r.protocol,
             "startport": r.start_port, "endport": r.end_port, "icmptype": r.icmp_type, "icmpcode": r.icmp_code,
             "cidr": r.cidr, "allowedgroup": r.allowed_group_id} for ip, vm_uuid, group, r, _ in rows]


def apply_to_networks(ctx: EngineContext, sg: SecurityGroup) -> None:
    """Send the security group rules of every network a VM of ``sg`` has a NIC in (with the
    SecurityGroup service) to its providers, outside the transaction."""
    s = ctx.session
    nets = NetworkService(s, ctx.services)
    networks = list(s.scalars(select(Network).where(Network.id.in_(
        select(Nic.network_id).join(SecurityGroupVm, SecurityGroupVm.vm_id == Nic.vm_id).where(
            SecurityGroupVm.security_group_id == sg.id, Nic.removed.is_(None))), Network.removed.is_(None))))
    work: list[tuple[NetworkTarget, list[dict[str, Any]]]] = []
    for net in networks:
        target = nets.target(net)
        if "SecurityGroup" in target.services:
            work.append((target, network_rules(s, net)))
    if not work:
        return
    ctx.checkpoint()
    for target, rules in work:
        nets.apply_rules(target, "securitygroup", rules)


__all__ = [
    "DEFAULT_GROUP", "EGRESS", "INGRESS", "authorize", "create_security_group", "default_security_group",
    "delete_security_group", "find_group", "network_rules", "revoke", "rule_spec",
]  # fmt: skip
