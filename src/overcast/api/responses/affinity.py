"""Affinity group and instance group responses."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast.api.declare import Field, ResponseObject
from overcast.api.responses.common import Owners
from overcast.api.serialize import cs_date
from overcast.db.models import AffinityGroup, AffinityGroupVm, InstanceGroup, VirtualMachine

F = Field


class AffinityGroupResponse(ResponseObject):
    object_name = "affinitygroup"
    fields = (
        F("id", "string", "the ID of the affinity group"),
        F("name", "string", "the name of the affinity group"),
        F("description", "string", "the description of the affinity group"),
        F("type", "string", "the type of the affinity group"),
        F("account", "string", "the account owning the affinity group"),
        F("domainid", "string", "the domain ID of the affinity group"),
        F("domain", "string", "the domain name of the affinity group"),
        F("domainpath", "string", "path of the Domain the affinity group belongs to"),
        F("projectid", "string", "the project ID of the affinity group"),
        F("project", "string", "the project name of the affinity group"),
        F("virtualmachineIds", "list", "virtual machine IDs associated with this affinity group"),
        F("dedicatedresources", "list", "dedicated resources associated with this affinity group"),
    )


class AffinityGroupTypeResponse(ResponseObject):
    # CloudStack names the items ``affinityGroupType`` (ListAffinityGroupTypesCmd sets that object name);
    # Libcloud and Ansible's cs_affinitygroup read that key.
    object_name = "affinityGroupType"
    fields = (F("type", "string", "the type of the affinity group"),)


def affinity_group_payload(s: Session, groups: list[AffinityGroup]) -> list[dict[str, Any]]:
    """Wire dicts for ``groups`` with the ids of their (not expunged) VMs, in three queries."""
    ids = [g.id for g in groups]
    members: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        for group_id, vm_uuid in s.execute(
                select(AffinityGroupVm.group_id, VirtualMachine.uuid)
                .join(VirtualMachine, VirtualMachine.id == AffinityGroupVm.vm_id)
                .where(AffinityGroupVm.group_id.in_(ids), VirtualMachine.removed.is_(None))
                .order_by(AffinityGroupVm.id)):
            members[group_id].append(vm_uuid)
    owners = Owners(s, groups)
    out = []
    for g in groups:
        o = owners.fields(g)
        item: dict[str, Any] = {
            "id": g.uuid, "name": g.name, "description": g.description, "type": g.group_type,
            "account": o["account"], "domainid": o["domainid"], "domain": o["domain"], "domainpath": o["domainpath"],
        }  # fmt: skip
        if members[g.id]:
            item["virtualmachineIds"] = members[g.id]
        out.append(item)
    return out


class InstanceGroupResponse(ResponseObject):
    object_name = "instancegroup"
    fields = (
        F("id", "string", "the ID of the instance group"),
        F("name", "string", "the name of the instance group"),
        F("created", "date", "time and date the instance group was created"),
        F("account", "string", "the account owning the instance group"),
        F("domainid", "string", "the domain ID of the instance group"),
        F("domain", "string", "the domain name of the instance group"),
        F("domainpath", "string", "path of the Domain the instance group belongs to"),
        F("projectid", "string", "the project ID of the instance group"),
        F("project", "string", "the project name of the instance group"),
        F("hasannotations", "boolean", "whether this instance group has annotations"),
    )


def instance_group_payload(s: Session, groups: list[InstanceGroup]) -> list[dict[str, Any]]:
    owners = Owners(s, groups)
    out = []
    for g in groups:
        o = owners.fields(g)
        out.append({"id": g.uuid, "name": g.name, "created": cs_date(g.created), "account": o["account"],
                    "domainid": o["domainid"], "domain": o["domain"], "domainpath": o["domainpath"],
                    "hasannotations": False})
    return out


__all__ = ["AffinityGroupResponse", "AffinityGroupTypeResponse", "InstanceGroupResponse", "affinity_group_payload",
           "instance_group_payload"]
