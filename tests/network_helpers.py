"""Helpers for the network, address, security group and NIC tests: deploys on the sandbox, network
offerings by name, error assertions and reads of the server's database."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from cs import CloudStack, CloudStackApiException
from sqlalchemy import create_engine, text

from conftest import Sandbox, unique
from servers import Server

ISOLATED_SNAT = "DefaultIsolatedNetworkOfferingWithSourceNatService"
ISOLATED_NO_SNAT = "DefaultIsolatedNetworkOffering"
SHARED = "DefaultSharedNetworkOffering"
SHARED_SG = "DefaultSharedNetworkOfferingWithSGService"
L2 = "DefaultL2NetworkOffering"
#: The basic zone's guest range in the sandbox.
BASIC_RANGE = (ipaddress.ip_address("10.147.29.100"), ipaddress.ip_address("10.147.29.250"))
#: The advanced zone's public range in the sandbox.
PUBLIC_RANGE = (ipaddress.ip_address("192.168.2.2"), ipaddress.ip_address("192.168.2.200"))
NO_SUCH_UUID = "00000000-0000-4000-8000-000000000000"


def db_rows(server: Server, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(server.db_url or f"sqlite:///{server.data_dir / 'overcast.db'}")
    with engine.connect() as c:
        rows = list(c.execute(text(sql), params))
    engine.dispose()
    return rows


def error_of(call: Any) -> dict[str, Any]:
    with pytest.raises(CloudStackApiException) as err:
        call()
    return err.value.error  # type: ignore[no-any-return]


def offering(api: CloudStack, name: str) -> str:
    found = [o for o in api.listNetworkOfferings(name=name)["networkoffering"] if o["name"] == name]
    assert found, name
    return str(found[0]["id"])


def deploy(api: CloudStack, sandbox: Sandbox, **params: Any) -> dict[str, Any]:
    params.setdefault("zoneid", sandbox.advanced_zone)
    params.setdefault("templateid", sandbox.template)
    params.setdefault("serviceofferingid", sandbox.small)
    params.setdefault("name", unique("vm"))
    return api.deployVirtualMachine(**params)["virtualmachine"]  # type: ignore[no-any-return]


def isolated(api: CloudStack, sandbox: Sandbox, **params: Any) -> dict[str, Any]:
    """A new isolated network (source NAT offering) in the advanced zone."""
    params.setdefault("name", unique("net"))
    params.setdefault("displaytext", params["name"])
    params.setdefault("zoneid", sandbox.advanced_zone)
    if "networkofferingid" not in params:
        params["networkofferingid"] = offering(api, ISOLATED_SNAT)
    return api.createNetwork(**params)["network"]  # type: ignore[no-any-return]


def in_range(ip: str, bounds: tuple[Any, Any]) -> bool:
    return bounds[0] <= ipaddress.ip_address(ip) <= bounds[1]


def expunge(admin: CloudStack, vm_ids: list[str]) -> None:
    for vm_id in vm_ids:
        admin.destroyVirtualMachine(id=vm_id, expunge=True)


def events(api: CloudStack, event_type: str, **params: Any) -> list[dict[str, Any]]:
    return [e for e in api.listEvents(type=event_type, pagesize=500, page=1, **params).get("event", [])
            if e["type"] == event_type]
