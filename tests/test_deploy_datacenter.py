"""``overcast deploy-datacenter``: Marvin's zone files (advanced.cfg, basic.cfg) deployed into a fresh server
through the API, and VMs running in what they built."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import client
from cs import CloudStack
from servers import Server

DATA = Path(__file__).resolve().parent / "data"
GIB = 1024**3


def deploy_datacenter(server: Server, cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "overcast.cli.main", "deploy-datacenter", str(cfg),
                           "--url", server.url, *args], capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def deployed(server_factory: Any) -> tuple[Server, CloudStack]:
    srv = server_factory()
    # advanced.cfg with keys given; basic.cfg with the keys read from the server's database.
    adv = deploy_datacenter(srv, DATA / "advanced.cfg", "--apikey", srv.api_key, "--secretkey", srv.secret_key)
    assert adv.returncode == 0, adv.stderr + adv.stdout
    assert "Deployed: 1 zone" in adv.stdout
    db_args = ["--db", srv.db_url] if srv.db_url else []
    basic = deploy_datacenter(srv, DATA / "basic.cfg", "--data-dir", str(srv.data_dir), *db_args)
    assert basic.returncode == 0, basic.stderr + basic.stdout
    return srv, client(srv, srv.api_key, srv.secret_key)


def zone_named(api: CloudStack, name: str) -> dict[str, Any]:
    zones = api.listZones(name=name)["zone"]
    assert len(zones) == 1
    return zones[0]  # type: ignore[no-any-return]


def test_advanced_zone_is_built_as_configured(deployed: tuple[Server, CloudStack]) -> None:
    _, api = deployed
    cfg = json.loads((DATA / "advanced.cfg").read_text())["zones"][0]
    zone = zone_named(api, cfg["name"])
    assert zone["allocationstate"] == "Enabled" and zone["networktype"] == "Advanced"
    assert zone["guestcidraddress"] == "10.1.1.0/24" and zone["dns1"] == "10.147.28.6"
    pnets = api.listPhysicalNetworks(zoneid=zone["id"])["physicalnetwork"]
    assert [(p["name"], p["state"], p["vlan"]) for p in pnets] == [("Sandbox-pnet", "Enabled", "100-200")]
    types = api.listTrafficTypes(physicalnetworkid=pnets[0]["id"])["traffictype"]
    assert sorted(t["traffictype"] for t in types) == ["Guest", "Management", "Public"]
    providers = {p["name"]: p["state"] for p in
                 api.listNetworkServiceProviders(physicalnetworkid=pnets[0]["id"])["networkserviceprovider"]}
    assert providers["VirtualRouter"] == providers["VpcVirtualRouter"] == providers["InternalLbVm"] == "Enabled"
    assert providers["ConfigDrive"] == "Disabled"
    pods = api.listPods(zoneid=zone["id"])["pod"]
    assert [(p["name"], p["startip"], p["endip"]) for p in pods] == [("POD0", ["172.16.15.2"], ["172.16.15.200"])]
    clusters = {c["name"]: c for c in api.listClusters(zoneid=zone["id"])["cluster"]}
    assert set(clusters) == {"C0", "C1"}
    hosts = api.listHosts(zoneid=zone["id"])["host"]
    assert len(hosts) == 3 and {h["state"] for h in hosts} == {"Up"} and {h["hypervisor"] for h in hosts} == {
        "Simulator"}
    assert sorted(h["ipaddress"] for h in hosts) == ["172.16.15.2", "172.16.15.3", "172.16.15.4"]
    pools = api.listStoragePools(zoneid=zone["id"])["storagepool"]
    assert sorted((p["name"], p["clustername"]) for p in pools) == [("PS0", "C0"), ("PS1", "C0"), ("PS2", "C1")]
    stores = api.listImageStores(zoneid=zone["id"])["imagestore"]
    assert [s["url"] for s in stores] == ["nfs://10.147.28.6:/export/home/sandbox/secondary"]
    ranges = api.listVlanIpRanges(zoneid=zone["id"])["vlaniprange"]
    assert [(r["startip"], r["endip"], r["vlan"], r["forvirtualnetwork"]) for r in ranges] == [
        ("192.168.2.2", "192.168.2.200", "vlan://50", True)]
    settings = {c["name"]: c["value"] for c in api.listConfigurations(name="expunge.delay")["configuration"]}
    assert settings["expunge.delay"] == "60"


def test_basic_zone_is_built_as_configured(deployed: tuple[Server, CloudStack]) -> None:
    _, api = deployed
    zone = zone_named(api, "Sandbox-simulator-basic")
    assert zone["allocationstate"] == "Enabled" and zone["networktype"] == "Basic"
    assert zone["securitygroupsenabled"] is True
    pnet = api.listPhysicalNetworks(zoneid=zone["id"])["physicalnetwork"][0]
    providers = {p["name"]: p["state"] for p in
                 api.listNetworkServiceProviders(physicalnetworkid=pnet["id"])["networkserviceprovider"]}
    assert providers["VirtualRouter"] == providers["SecurityGroupProvider"] == "Enabled"
    hosts = api.listHosts(zoneid=zone["id"])["host"]
    assert len(hosts) == 2 and {h["state"] for h in hosts} == {"Up"}
    ranges = api.listVlanIpRanges(zoneid=zone["id"])["vlaniprange"]
    assert [(r["startip"], r["endip"], r["forvirtualnetwork"]) for r in ranges] == [
        ("10.147.29.20", "10.147.29.100", False)]
    assert ranges[0]["podid"] == api.listPods(zoneid=zone["id"])["pod"][0]["id"] and ranges[0].get("networkid")


@pytest.mark.parametrize("zone_name", ["Sandbox-simulator", "Sandbox-simulator-basic"])
def test_vms_deploy_into_the_new_zones(deployed: tuple[Server, CloudStack], zone_name: str) -> None:
    _, api = deployed
    zone = zone_named(api, zone_name)
    template = next(t for t in api.listTemplates(templatefilter="featured", zoneid=zone["id"])["template"]
                    if t["name"] == "CentOS 5.6 (64-bit) no GUI (Simulator)")
    small = api.listServiceOfferings(name="Small Instance")["serviceoffering"][0]
    vm = api.deployVirtualMachine(zoneid=zone["id"], templateid=template["id"],
                                  serviceofferingid=small["id"])["virtualmachine"]
    assert vm["state"] == "Running" and vm["zoneid"] == zone["id"]
    host = api.listHosts(id=vm["hostid"])["host"][0]
    assert host["zoneid"] == zone["id"] and host["cpuallocatedvalue"] >= 500
    nic = vm["nic"][0]
    if zone_name == "Sandbox-simulator-basic":
        assert nic["ipaddress"].startswith("10.147.29.")
    else:
        assert nic["ipaddress"].startswith("10.1.1.")
        used = {c["type"]: c["capacityused"] for c in api.listCapacity(zoneid=zone["id"])["capacity"]}
        assert used[4] == 1 and used[1] >= 500  # the source NAT address of the account's network
    api.destroyVirtualMachine(id=vm["id"], expunge=True)


def test_bad_files_fail_with_the_api_error(deployed: tuple[Server, CloudStack], tmp_path: Path) -> None:
    srv, api = deployed
    cfg = json.loads((DATA / "advanced.cfg").read_text())
    cfg["zones"][0]["name"] = "Broken"
    cfg["zones"][0]["dns1"] = "not-an-ip"
    bad = tmp_path / "bad.cfg"
    bad.write_text(json.dumps(cfg))
    result = deploy_datacenter(srv, bad, "--apikey", srv.api_key, "--secretkey", srv.secret_key)
    assert result.returncode == 1
    assert "createZone failed (431)" in result.stderr and "dns1" in result.stderr
    assert api.listZones(name="Broken").get("count", 0) == 0
    notjson = tmp_path / "notjson.cfg"
    notjson.write_text("{zones")
    result = deploy_datacenter(srv, notjson, "--apikey", srv.api_key, "--secretkey", srv.secret_key)
    assert result.returncode == 1 and "not valid JSON" in result.stderr
    result = deploy_datacenter(srv, DATA / "advanced.cfg", "--apikey", srv.api_key)
    assert result.returncode == 2 and "--secretkey" in result.stderr
    result = deploy_datacenter(srv, DATA / "advanced.cfg", "--apikey", srv.api_key, "--secretkey", "wrong")
    assert result.returncode == 1 and "(401)" in result.stderr
