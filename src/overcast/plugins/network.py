"""The network element contract: what a provider does for guest networks.

Elements are told when a network is implemented (its first VM starts), when a NIC joins or leaves,
and when the network shuts down. Firewall, NAT, port forwarding and load-balancing rules will reach
elements through ``apply_rules``; the built-in virtual router element of the simulated cloud records
state only. Contract: every call is idempotent; a failure raises :class:`NetworkElementError`; elements
hold no database session (the engine calls them between transactions, like hypervisor drivers).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar


class NetworkElementError(Exception):
    pass


#: The kinds of rules :meth:`NetworkElement.apply_rules` receives, and the network service (as named in
#: network offerings) whose provider gets them. Firewall, NAT, port forwarding and load balancing
#: commands add their kinds here; the engine routes a kind to the providers of its service.
RULE_KINDS: dict[str, str] = {
    "securitygroup": "SecurityGroup",
    "firewall": "Firewall",
    "egressfirewall": "Firewall",
    "portforwarding": "PortForwarding",
    "staticnat": "StaticNat",
    "lb": "Lb",
}


@dataclass(frozen=True, slots=True)
class NetworkRef:
    id: int
    uuid: str
    zone_id: int
    guest_type: str
    cidr: str | None
    gateway: str | None
    broadcast_uri: str | None


@dataclass(frozen=True, slots=True)
class NicRef:
    uuid: str
    vm_uuid: str
    ip_address: str | None
    mac_address: str | None


class NetworkElement(abc.ABC):
    #: The provider name, as in listNetworkServiceProviders ("VirtualRouter", "SecurityGroupProvider").
    provider: ClassVar[str]
    #: The services it can offer (Dhcp, Dns, UserData, SourceNat, StaticNat, Firewall, ...).
    services: ClassVar[frozenset[str]]

    @abc.abstractmethod
    def implement(self, network: NetworkRef, source_nat_ip: str | None) -> None: ...

    @abc.abstractmethod
    def prepare(self, network: NetworkRef, nic: NicRef) -> None: ...

    @abc.abstractmethod
    def release(self, network: NetworkRef, nic: NicRef) -> None: ...

    @abc.abstractmethod
    def shutdown(self, network: NetworkRef) -> None: ...

    def apply_rules(self, network: NetworkRef, kind: str, rules: list[dict[str, object]]) -> None:
        """Apply the full set of rules of one kind (firewall, portforwarding, ...) to the network."""
        raise NetworkElementError(f"{self.provider} does not support {kind} rules")


class VirtualRouterElement(NetworkElement):
    """The simulated virtual router: remembers which networks and NICs it serves."""

    provider = "VirtualRouter"
    services = frozenset({"Dhcp", "Dns", "UserData", "SourceNat", "StaticNat", "Firewall", "PortForwarding",
                          "Lb", "Vpn", "Gateway"})

    def __init__(self) -> None:
        self.networks: set[str] = set()
        self.nics: dict[str, set[str]] = {}
        self.rules: dict[tuple[str, str], list[dict[str, object]]] = {}

    def implement(self, network: NetworkRef, source_nat_ip: str | None) -> None:
        self.networks.add(network.uuid)

    def prepare(self, network: NetworkRef, nic: NicRef) -> None:
        self.nics.setdefault(network.uuid, set()).add(nic.uuid)

    def release(self, network: NetworkRef, nic: NicRef) -> None:
        self.nics.get(network.uuid, set()).discard(nic.uuid)

    def shutdown(self, network: NetworkRef) -> None:
        self.networks.discard(network.uuid)
        self.nics.pop(network.uuid, None)
        for key in [k for k in self.rules if k[0] == network.uuid]:
            del self.rules[key]

    def apply_rules(self, network: NetworkRef, kind: str, rules: list[dict[str, object]]) -> None:
        self.rules[(network.uuid, kind)] = list(rules)


class SecurityGroupElement(NetworkElement):
    """Security groups of basic zones and shared networks (rules live in the database)."""

    provider = "SecurityGroupProvider"
    services = frozenset({"SecurityGroup"})

    def implement(self, network: NetworkRef, source_nat_ip: str | None) -> None:
        return None

    def prepare(self, network: NetworkRef, nic: NicRef) -> None:
        return None

    def release(self, network: NetworkRef, nic: NicRef) -> None:
        return None

    def shutdown(self, network: NetworkRef) -> None:
        return None

    def apply_rules(self, network: NetworkRef, kind: str, rules: list[dict[str, object]]) -> None:
        return None
