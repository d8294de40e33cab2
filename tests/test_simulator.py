"""The simulator's injections (configureSimulator) and what they drive: start retries on other hosts,
delays, host failures and HA, host maintenance."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import client
from cs import CloudStack
from servers import Server
from test_infra import fails

HOST_PREFIX = "SimulatedAgent."


@pytest.fixture(scope="module")
def sim_server(server_factory: Any) -> Server:
    return server_factory(extra_args=["--sandbox"])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def api(sim_server: Server) -> CloudStack:
    return client(sim_server, sim_server.api_key, sim_server.secret_key)


@pytest.fixture(scope="module")
def sandbox(api: CloudStack) -> dict[str, Any]:
    zones = {z["name"]: z for z in api.listZones()["zone"]}
    adv, basic = zones["Sandbox-simulator-advanced"], zones["Sandbox-simulator-basic"]
    template = next(t for t in api.listTemplates(templatefilter="featured", zoneid=adv["id"])["template"]
                    if t["name"] == "CentOS 5.6 (64-bit) no GUI (Simulator)")
    small = api.listServiceOfferings(name="Small Instance")["serviceoffering"][0]
    clusters = {c["name"]: c for c in api.listClusters(zoneid=adv["id"])["cluster"]}
    hosts = {name: sorted(api.listHosts(clusterid=c["id"])["host"], key=lambda h: h["name"])
             for name, c in clusters.items()}
    return {"zone": adv["id"], "basic": basic["id"], "template": template["id"], "small": small["id"],
            "hosts": hosts}


def deploy(api: CloudStack, sb: dict[str, Any], zone: str | None = None, **params: Any) -> dict[str, Any]:
    return api.deployVirtualMachine(zoneid=zone or sb["zone"], templateid=sb["template"],  # type: ignore[no-any-return]
                                    serviceofferingid=params.pop("serviceofferingid", sb["small"]), **params)[
        "virtualmachine"]


def wait_for(check: Callable[[], Any], timeout: float = 45.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def vm(api: CloudStack, vm_id: str) -> dict[str, Any]:
    return api.listVirtualMachines(id=vm_id, listall=True)["virtualmachine"][0]  # type: ignore[no-any-return]


def host(api: CloudStack, host_id: str) -> dict[str, Any]:
    return api.listHosts(id=host_id)["host"][0]  # type: ignore[no-any-return]


def test_configure_query_cleanup(api: CloudStack, sandbox: dict[str, Any]) -> None:
    h0 = sandbox["hosts"]["C0"][0]
    mock = api.configureSimulator(name="StopCommand", value="result:fail", count=2, hostid=h0["id"])["simulatormock"]
    assert mock["name"] == "StopCommand" and mock["count"] == 2 and mock["hostid"] == h0["id"]
    assert isinstance(mock["id"], int) and "zoneid" not in mock
    queried = api.querySimulatorMock(id=mock["id"])["simulatormock"]
    assert queried == mock
    assert api.cleanupSimulatorMock(id=mock["id"])["success"] is True
    fails(api.querySimulatorMock, 431, "parameter id", id=mock["id"])
    fails(api.cleanupSimulatorMock, 431, "parameter id", id=mock["id"])
    fails(api.configureSimulator, 431, "name", value="result:fail")
    fails(api.configureSimulator, 431, "value", name="StartCommand", value="explode")
    fails(api.configureSimulator, 431, "value", name="StartCommand", value="wait:soon")
    fails(api.configureSimulator, 431, "name", name="Start Command!", value="result:fail")
    fails(api.configureSimulator, 431, "count", name="StartCommand", value="result:fail", count=0)
    fails(api.configureSimulator, 431, "hostid", name="StartCommand", value="result:fail",
          hostid="8d1cf7c8-5bd3-4d4c-a1a1-4b4c8b8b8b8b")
    fails(api.configureSimulator, 431, "clusterid", name="StartCommand", value="result:fail", hostid=h0["id"],
          clusterid=sandbox["hosts"]["C1"][0]["clusterid"])
    fails(api.querySimulatorMock, 431, "id", id="abc")


def test_host_that_fails_to_connect_is_not_added(api: CloudStack, sandbox: dict[str, Any]) -> None:
    h0 = sandbox["hosts"]["C0"][0]
    mock = api.configureSimulator(name="ReadyCommand", value="result:fail", count=1)["simulatormock"]
    params = {"zoneid": h0["zoneid"], "podid": h0["podid"], "clusterid": h0["clusterid"], "hypervisor": "Simulator",
              "url": "http://sim/c0/h9"}
    fails(api.addHost, 534, "Unable to add the host", **params)
    assert api.querySimulatorMock(id=mock["id"])["simulatormock"]["count"] == 0
    added = api.addHost(**params)["host"][0]
    assert added["state"] == "Up" and added["clusterid"] == h0["clusterid"]
    api.updateHost(id=added["id"], allocationstate="Disable")  # out of the way of the placement tests
    api.deleteHost(id=added["id"])


def test_start_failure_is_retried_on_another_host(api: CloudStack, sandbox: dict[str, Any]) -> None:
    mock = api.configureSimulator(name="StartCommand", value="result:fail", count=1,
                                  zoneid=sandbox["zone"])["simulatormock"]
    started = deploy(api, sandbox)
    assert started["state"] == "Running"
    assert api.querySimulatorMock(id=mock["id"])["simulatormock"]["count"] == 0  # used once, on the first host
    api.cleanupSimulatorMock(id=mock["id"])
    api.destroyVirtualMachine(id=started["id"], expunge=True)


def test_start_failing_everywhere_fails_the_deployment(api: CloudStack, sandbox: dict[str, Any]) -> None:
    mock = api.configureSimulator(name="StartCommand", value="result:fail", zoneid=sandbox["basic"])["simulatormock"]
    try:
        fails(deploy, 534, "StartCommand failed", api=api, sb=sandbox, zone=sandbox["basic"], name="doomed")
    finally:
        api.cleanupSimulatorMock(id=mock["id"])
    doomed = api.listVirtualMachines(name="doomed", listall=True)["virtualmachine"][0]
    assert doomed["state"] == "Error"
    assert deploy(api, sandbox, zone=sandbox["basic"])["state"] == "Running"  # the injection is gone


def test_wait_delays_the_operation(api: CloudStack, sandbox: dict[str, Any]) -> None:
    api.configureSimulator(name="StartCommand", value="wait:2000", count=1, zoneid=sandbox["zone"])
    began = time.monotonic()
    delayed = deploy(api, sandbox)
    assert delayed["state"] == "Running" and time.monotonic() - began >= 2.0
    began = time.monotonic()
    assert deploy(api, sandbox)["state"] == "Running" and time.monotonic() - began < 2.0
    # timeout:<ms> waits, then fails: the start moves on to another host.
    mock = api.configureSimulator(name="StartCommand", value="timeout:500", count=1,
                                  zoneid=sandbox["zone"])["simulatormock"]
    began = time.monotonic()
    assert deploy(api, sandbox)["state"] == "Running" and time.monotonic() - began >= 0.5
    assert api.querySimulatorMock(id=mock["id"])["simulatormock"]["count"] == 0


def test_host_failure_triggers_ha(api: CloudStack, sandbox: dict[str, Any]) -> None:
    h0, h1 = sandbox["hosts"]["C0"]
    ha_offering = api.createServiceOffering(name="HA Small", displaytext="HA Small", cpunumber=1, cpuspeed=500,
                                            memory=512, offerha=True)["serviceoffering"]
    before = host(api, h0["id"])["cpuallocatedvalue"]
    protected = deploy(api, sandbox, serviceofferingid=ha_offering["id"], hostid=h0["id"], name="protected")
    plain = deploy(api, sandbox, hostid=h0["id"], name="plain")
    assert protected["haenable"] is True and plain["haenable"] is False
    assert protected["hostid"] == plain["hostid"] == h0["id"]
    assert host(api, h0["id"])["cpuallocatedvalue"] == before + 1000
    api.updateConfiguration(name="ping.interval", value="1")
    mock = api.configureSimulator(name="PingCommand", value="result:fault", hostid=h0["id"])["simulatormock"]
    try:
        wait_for(lambda: host(api, h0["id"])["state"] == "Down", what="the host to go Down")
        moved = wait_for(lambda: (v := vm(api, protected["id"]))["state"] == "Running"
                         and v.get("hostid") == h1["id"] and v, what="the HA VM to restart")
        assert moved["hostid"] == h1["id"]
        stopped = wait_for(lambda: (v := vm(api, plain["id"]))["state"] == "Stopped" and v, what="the plain VM")
        assert "hostid" not in stopped
        assert host(api, h0["id"])["cpuallocatedvalue"] == 0
        events = api.listEvents(type="HA.STATE.TRANSITION", listall=True)["event"]
        assert any(h0["name"] in e["description"] and "Down" in e["description"] for e in events)
        stops = api.listEvents(type="VM.STOP", listall=True)["event"]
        assert any(plain["id"] in e["description"] and "down" in e["description"] for e in stops)
        # The host is out of placement while it is down.
        fails(deploy, 533, api=api, sb=sandbox, hostid=h0["id"])
    finally:
        api.cleanupSimulatorMock(id=mock["id"])
    wait_for(lambda: host(api, h0["id"])["state"] == "Up", what="the host to come back Up")
    api.updateConfiguration(name="ping.interval", value="60")
    assert api.startVirtualMachine(id=plain["id"], hostid=h0["id"])["virtualmachine"]["state"] == "Running"
    for v in (protected, plain):
        api.destroyVirtualMachine(id=v["id"], expunge=True)


def test_host_maintenance_moves_vms(api: CloudStack, sandbox: dict[str, Any]) -> None:
    h0, h1 = sandbox["hosts"]["C1"]
    guest = deploy(api, sandbox, hostid=h0["id"])
    maint = api.prepareHostForMaintenance(id=h0["id"])["host"]
    assert maint["resourcestate"] == "Maintenance" and maint["cpuallocatedvalue"] == 0
    assert vm(api, guest["id"])["hostid"] == h1["id"] and vm(api, guest["id"])["state"] == "Running"
    fails(api.prepareHostForMaintenance, 431, "already in maintenance", id=h0["id"])
    fails(deploy, 533, api=api, sb=sandbox, hostid=h0["id"])
    fails(api.updateHost, 431, "maintenance", id=h0["id"], allocationstate="Enable")
    assert api.cancelHostMaintenance(id=h0["id"])["host"]["resourcestate"] == "Enabled"
    fails(api.cancelHostMaintenance, 431, "not in maintenance", id=h0["id"])
    # A VM that can't migrate leaves the host in ErrorInMaintenance.
    mock = api.configureSimulator(name="MigrateCommand", value="result:fail", hostid=h1["id"])["simulatormock"]
    try:
        stuck = api.prepareHostForMaintenance(id=h1["id"])["host"]
        assert stuck["resourcestate"] == "ErrorInMaintenance"
        assert vm(api, guest["id"])["hostid"] == h1["id"] and vm(api, guest["id"])["state"] == "Running"
    finally:
        api.cleanupSimulatorMock(id=mock["id"])
    assert api.cancelHostMaintenance(id=h1["id"])["host"]["resourcestate"] == "Enabled"
    # Deleting a host with VMs needs forced; forced deletion stops them (they have no HA).
    fails(api.deleteHost, 536, "forced", id=h1["id"])
    assert api.deleteHost(id=h1["id"], forced=True)["success"] is True
    assert vm(api, guest["id"])["state"] == "Stopped"
    api.destroyVirtualMachine(id=guest["id"], expunge=True)
