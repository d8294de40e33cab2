"""Guest networks and security groups."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from overcast.db.models.core import Base, BigId, new_uuid, utcnow


class Network(Base):
    __tablename__ = "network"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    display_text: Mapped[str | None] = mapped_column(String(255))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zone.id"), index=True)
    physical_network_id: Mapped[int | None] = mapped_column(ForeignKey("physical_network.id"))
    network_offering_id: Mapped[int] = mapped_column(ForeignKey("network_offering.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id"), index=True)
    #: Account (isolated, owned) or Domain (shared with a domain subtree / everyone)
    acl_type: Mapped[str] = mapped_column(String(16), default="Account")
    #: Isolated, Shared, L2
    guest_type: Mapped[str] = mapped_column(String(16))
    traffic_type: Mapped[str] = mapped_column(String(16), default="Guest")
    #: Allocated, Setup, Implementing, Implemented, Shutdown, Destroy
    state: Mapped[str] = mapped_column(String(32), default="Allocated")
    cidr: Mapped[str | None] = mapped_column(String(64))
    gateway: Mapped[str | None] = mapped_column(String(64))
    netmask: Mapped[str | None] = mapped_column(String(64))
    #: First and last guest address handed out (shared networks take them from the request).
    start_ip: Mapped[str | None] = mapped_column(String(64))
    end_ip: Mapped[str | None] = mapped_column(String(64))
    broadcast_uri: Mapped[str | None] = mapped_column(String(255))
    network_domain: Mapped[str | None] = mapped_column(String(255))
    dns1: Mapped[str | None] = mapped_column(String(64))
    dns2: Mapped[str | None] = mapped_column(String(64))
    #: Shared networks restricted to a domain subtree: include subdomains.
    subdomain_access: Mapped[bool] = mapped_column(Boolean, default=True)
    specify_ip_ranges: Mapped[bool] = mapped_column(Boolean, default=False)
    restart_required: Mapped[bool] = mapped_column(Boolean, default=False)
    display_network: Mapped[bool] = mapped_column(Boolean, default=True)
    is_system: Mapped[bool] = mapped_column(Boolean, default=False)
    vpc_id: Mapped[int | None] = mapped_column(BigId)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class SecurityGroup(Base):
    __tablename__ = "security_group"
    __table_args__ = (UniqueConstraint("account_id", "name", name="uq_security_group_account_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(4096))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id"))
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SecurityGroupRule(Base):
    __tablename__ = "security_group_rule"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    security_group_id: Mapped[int] = mapped_column(ForeignKey("security_group.id"), index=True)
    #: ingress, egress
    rule_type: Mapped[str] = mapped_column(String(16))
    protocol: Mapped[str] = mapped_column(String(16))
    start_port: Mapped[int | None] = mapped_column(Integer)
    end_port: Mapped[int | None] = mapped_column(Integer)
    icmp_type: Mapped[int | None] = mapped_column(Integer)
    icmp_code: Mapped[int | None] = mapped_column(Integer)
    cidr: Mapped[str | None] = mapped_column(String(64))
    allowed_group_id: Mapped[int | None] = mapped_column(ForeignKey("security_group.id"))
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SecurityGroupVm(Base):
    __tablename__ = "security_group_vm_map"
    __table_args__ = (UniqueConstraint("security_group_id", "vm_id", name="uq_security_group_vm"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    security_group_id: Mapped[int] = mapped_column(ForeignKey("security_group.id"), index=True)
    vm_id: Mapped[int] = mapped_column(ForeignKey("vm_instance.id"), index=True)


__all__ = ["Network", "SecurityGroup", "SecurityGroupRule", "SecurityGroupVm"]
