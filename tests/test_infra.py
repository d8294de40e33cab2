"""Infrastructure through the API: zones, pods, clusters, hosts, storage, physical networks, IP ranges,
capacity. Each object's create / list / update / delete, the errors bad input gets (code and the
parameter named), admin-only commands refused to others, and capacity numbers after deployments."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from conftest import client, tenant_factory
from cs import CloudStack, CloudStackApiException
from servers import Server
from test_response_shapes import check_object

from overcast.api.commands import load_all
from overcast.api.declare import registry

load_all()
GIB = 1024**3


def fails(call: Callable[..., Any], code: int, contains: str | None = None, **params: Any) -> dict[str, Any]:
    """``call(**params)`` fails (at once or as a job) with ``code``, its text containing ``contains``."""
    with pytest.raises(CloudStackApiException) as info:
        call(**params)
    error = info.value.error
    assert isinstance(error, dict), error
    assert error.get("errorcode") == code, error
    if contains is not None:
        assert contains.lower() in str(error.get("errortext", "")).lower(), error
    return error


def shaped(command: str, items: list[dict[str, Any]]) -> None:
    """Every key of ``items`` is a declared field of ``command``'s response, with its JSON type."""
    cls = registry.get(command)
    assert cls is not None
    fields = {f.name: f for f in cls.response.all_fields()}
    for item in items:
        check_object(item, fields, command)


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def infra_server(server_factory: Any) -> Server:
    return server_factory()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def api(infra_server: Server) -> CloudStack:
    return client(infra_server, infra_server.api_key, infra_server.secret_key)


@pytest.fixture(scope="module")
def user(infra_server: Server, api: CloudStack) -> CloudStack:
    return tenant_factory(infra_server, api)().api  # type: ignore[no-any-return]


def new_zone(api: CloudStack, network_type: str = "Advanced", **extra: Any) -> dict[str, Any]:
    params = {"name": name("zone"), "networktype": network_type, "dns1": "8.8.8.8", "internaldns1": "10.0.0.2",
              **extra}
    if network_type == "Advanced":
        params.setdefault("guestcidraddress", "10.1.1.0/24")
    return api.createZone(**params)["zone"]  # type: ignore[no-any-return]


def new_pod(api: CloudStack, zone: dict[str, Any], octet: int = 20) -> dict[str, Any]:
    return api.createPod(zoneid=zone["id"], name=name("pod"), gateway=f"172.16.{octet}.1",  # type: ignore[no-any-return]
                         netmask="255.255.255.0", startip=f"172.16.{octet}.10", endip=f"172.16.{octet}.50")["pod"]


def new_cluster(api: CloudStack, zone: dict[str, Any], pod: dict[str, Any]) -> dict[str, Any]:
    body = api.addCluster(zoneid=zone["id"], podid=pod["id"], clustername=name("cl"), clustertype="CloudManaged",
                          hypervisor="Simulator")
    assert body["count"] == 1
    return body["cluster"][0]  # type: ignore[no-any-return]


def new_host(api: CloudStack, zone: dict[str, Any], pod: dict[str, Any], cluster: dict[str, Any],
             url: str | None = None) -> dict[str, Any]:
    body = api.addHost(zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"], hypervisor="Simulator",
                       url=url or f"http://sim/{uuid.uuid4().hex[:6]}/h0?cpunumber=8&cpuspeed=2000&memory={16 * GIB}",
                       username="root", password="password")
    assert body["count"] == 1
    return body["host"][0]  # type: ignore[no-any-return]


# -- zones ----------------------------------------------------------------------------------------


def test_zone_lifecycle(api: CloudStack) -> None:
    zone = new_zone(api, domain="cloud.example")
    assert zone["allocationstate"] == "Disabled" and zone["networktype"] == "Advanced"
    assert zone["dns1"] == "8.8.8.8" and zone["guestcidraddress"] == "10.1.1.0/24"
    assert zone["domain"] == "cloud.example" and zone["securitygroupsenabled"] is False
    listed = api.listZones(id=zone["id"])["zone"]
    assert [z["name"] for z in listed] == [zone["name"]]
    shaped("listZones", listed)
    renamed = name("zone")
    updated = api.updateZone(id=zone["id"], name=renamed, dns2="8.8.4.4", details=[{"key": "a", "value": "1"}])["zone"]
    assert updated["name"] == renamed and updated["dns2"] == "8.8.4.4" and updated["resourcedetails"] == {"a": "1"}
    # A zone needs a physical network for management (and public) traffic before it is enabled.
    fails(api.updateZone, 431, "traffic=Management", id=zone["id"], allocationstate="Enabled")
    pod = new_pod(api, zone)
    fails(api.deleteZone, 536, "there are pods", id=zone["id"])
    api.deletePod(id=pod["id"])
    assert api.deleteZone(id=zone["id"])["success"] is True
    assert api.listZones(id=zone["id"]).get("count", 0) == 0
    fails(api.deleteZone, 431, "id", id=zone["id"])


def test_zone_bad_input(api: CloudStack) -> None:
    base = {"name": name("zone"), "networktype": "Advanced", "dns1": "8.8.8.8", "internaldns1": "10.0.0.2"}
    fails(api.createZone, 431, "networktype", **{**base, "networktype": "Weird"})
    fails(api.createZone, 431, "dns1", **{**base, "dns1": "not-an-ip"})
    fails(api.createZone, 431, "internaldns1", **{**base, "internaldns1": "300.1.1.1"})
    fails(api.createZone, 431, "guestcidraddress", **{**base, "guestcidraddress": "10.1.1.0/99"})
    fails(api.createZone, 431, "ip6dns1", **{**base, "ip6dns1": "10.0.0.1"})
    fails(api.createZone, 431, "dns1", **{k: v for k, v in base.items() if k != "dns1"})
    fails(api.createZone, 431, "allocationstate", **{**base, "allocationstate": "Sometimes"})
    zone = new_zone(api)
    fails(api.createZone, 431, "already exists", **{**base, "name": zone["name"]})
    fails(api.updateZone, 431, "id", id=str(uuid.uuid4()), name="x")
    api.deleteZone(id=zone["id"])


def test_basic_zone_has_security_groups(api: CloudStack) -> None:
    zone = new_zone(api, "Basic")
    assert zone["networktype"] == "Basic" and zone["securitygroupsenabled"] is True
    assert "guestcidraddress" not in zone
    api.deleteZone(id=zone["id"])


def test_non_admins_are_refused(api: CloudStack, user: CloudStack) -> None:
    zone = new_zone(api)
    for command, params in (("createZone", {"name": "z", "networktype": "Basic", "dns1": "1.1.1.1",
                                            "internaldns1": "1.1.1.1"}),
                            ("listHosts", {}), ("listPods", {}), ("listClusters", {}), ("listStoragePools", {}),
                            ("listCapacity", {}), ("listImageStores", {}), ("listVlanIpRanges", {}),
                            ("listPhysicalNetworks", {}), ("deleteZone", {"id": zone["id"]}),
                            ("configureSimulator", {"name": "StartCommand", "value": "result:fail"})):
        fails(getattr(user, command), 401, "not available", **params)
    # Users see enabled zones only, and no DNS internals.
    assert zone["id"] not in [z["id"] for z in user.listZones().get("zone", [])]
    api.deleteZone(id=zone["id"])


# -- pods and management ranges -------------------------------------------------------------------


def test_pod_lifecycle_and_management_ranges(api: CloudStack) -> None:
    zone = new_zone(api)
    pod = new_pod(api, zone)
    assert pod["startip"] == ["172.16.20.10"] and pod["endip"] == ["172.16.20.50"]
    assert pod["ipranges"] == [{"startip": "172.16.20.10", "endip": "172.16.20.50", "gateway": "172.16.20.1",
                                "forsystemvms": "0", "vlanid": "untagged"}]
    shaped("listPods", api.listPods(zoneid=zone["id"])["pod"])
    # Overlapping ranges, addresses outside the subnet, a gateway inside the range: refused.
    fails(api.createPod, 431, "overlaps", zoneid=zone["id"], name=name("pod"), gateway="172.16.20.1",
          netmask="255.255.255.0", startip="172.16.20.40", endip="172.16.20.60")
    fails(api.createPod, 431, "startip", zoneid=zone["id"], name=name("pod"), gateway="172.16.21.1",
          netmask="255.255.255.0", startip="172.16.99.10")
    fails(api.createPod, 431, "gateway", zoneid=zone["id"], name=name("pod"), gateway="172.16.21.11",
          netmask="255.255.255.0", startip="172.16.21.10", endip="172.16.21.20")
    fails(api.createPod, 431, "netmask", zoneid=zone["id"], name=name("pod"), gateway="172.16.21.1",
          netmask="255.0.255.0", startip="172.16.21.10")
    fails(api.createPod, 431, "already exists", zoneid=zone["id"], name=pod["name"])
    fails(api.createPod, 431, "zoneid", zoneid=str(uuid.uuid4()), name=name("pod"))
    updated = api.updatePod(id=pod["id"], name="POD-renamed", allocationstate="Disabled", endip="172.16.20.60")["pod"]
    assert updated["name"] == "POD-renamed" and updated["allocationstate"] == "Disabled"
    assert updated["endip"] == ["172.16.20.60"]
    # A second management range (async), then its removal.
    body = api.createManagementNetworkIpRange(podid=pod["id"], gateway="172.16.30.1", netmask="255.255.255.0",
                                              startip="172.16.30.10", endip="172.16.30.20", vlan="30")
    assert body["pod"]["endip"] == ["172.16.20.60", "172.16.30.20"]
    assert body["pod"]["vlanid"] == ["untagged", "30"]
    fails(api.createManagementNetworkIpRange, 431, "overlaps", podid=pod["id"], gateway="172.16.30.1",
          netmask="255.255.255.0", startip="172.16.30.15")
    fails(api.deleteManagementNetworkIpRange, 431, "unable to find", podid=pod["id"], startip="172.16.30.10",
          endip="172.16.30.20", vlan="31")
    assert api.deleteManagementNetworkIpRange(podid=pod["id"], startip="172.16.30.10", endip="172.16.30.20",
                                              vlan="30")["success"] is True
    assert api.listPods(id=pod["id"])["pod"][0]["startip"] == ["172.16.20.10"]
    cluster = new_cluster(api, zone, pod)
    fails(api.deletePod, 536, "clusters", id=pod["id"])
    api.deleteCluster(id=cluster["id"])
    api.deletePod(id=pod["id"])
    api.deleteZone(id=zone["id"])


# -- clusters and hosts ---------------------------------------------------------------------------


def test_cluster_and_host_lifecycle(api: CloudStack) -> None:
    zone = new_zone(api)
    pod = new_pod(api, zone, 22)
    cluster = new_cluster(api, zone, pod)
    assert cluster["hypervisortype"] == "Simulator" and cluster["allocationstate"] == "Enabled"
    assert cluster["cpuovercommitratio"] == "1.0"
    shaped("listClusters", api.listClusters(zoneid=zone["id"], showcapacities=True)["cluster"])
    fails(api.addCluster, 431, "already exists", zoneid=zone["id"], podid=pod["id"], clustername=cluster["name"],
          clustertype="CloudManaged", hypervisor="Simulator")
    fails(api.addCluster, 431, "hypervisor", zoneid=zone["id"], podid=pod["id"], clustername="x",
          clustertype="CloudManaged", hypervisor="Toaster")
    fails(api.addCluster, 431, "clustertype", zoneid=zone["id"], podid=pod["id"], clustername="x",
          clustertype="Sometimes", hypervisor="Simulator")
    other = new_zone(api)
    fails(api.addCluster, 431, "podid", zoneid=other["id"], podid=pod["id"], clustername="x",
          clustertype="CloudManaged", hypervisor="Simulator")

    host = new_host(api, zone, pod, cluster, f"http://sim/c9/h0?cpunumber=8&cpuspeed=2000&memory={16 * GIB}")
    assert host["state"] == "Up" and host["resourcestate"] == "Enabled" and host["type"] == "Routing"
    assert host["cpunumber"] == 8 and host["cpuspeed"] == 2000 and host["memorytotal"] == 16 * GIB
    assert host["name"].startswith("SimulatedAgent.") and host["ipaddress"] == "172.16.22.10"
    assert host["cpuwithoverprovisioning"] == "16000" and host["cpuallocated"] == "0%"
    listed = api.listHosts(clusterid=cluster["id"], type="Routing", state="Up")["host"]
    assert [h["id"] for h in listed] == [host["id"]]
    shaped("listHosts", listed)
    assert api.listHosts(zoneid=zone["id"], resourcestate="Maintenance").get("count", 0) == 0
    # The same URL twice in one cluster, an unknown cluster, KVM without a driver: refused.
    fails(api.addHost, 431, "url", zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"],
          hypervisor="Simulator", url=f"http://sim/c9/h0?cpunumber=8&cpuspeed=2000&memory={16 * GIB}")
    fails(api.addHost, 431, "clusterid", zoneid=zone["id"], podid=pod["id"], clusterid=str(uuid.uuid4()),
          hypervisor="Simulator", url="http://sim/x/h0")
    fails(api.addHost, 431, "hypervisor", zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"],
          hypervisor="KVM", url="http://kvm1")
    fails(api.addHost, 431, "cluster", zoneid=zone["id"], podid=pod["id"], hypervisor="Simulator",
          url="http://sim/y/h0")
    fails(api.addHost, 431, "url", zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"],
          hypervisor="Simulator", url="no scheme")
    # A host added by cluster name creates the cluster.
    by_name = api.addHost(zoneid=zone["id"], podid=pod["id"], clustername="ByName", hypervisor="Simulator",
                          url="http://sim/byname/h0")["host"][0]
    assert by_name["clustername"] == "ByName" and by_name["ipaddress"] == "172.16.22.11"

    updated = api.updateHost(id=host["id"], allocationstate="Disable", hosttags="ssd,fast")["host"]
    assert updated["resourcestate"] == "Disabled" and updated["hosttags"] == "ssd,fast"
    fails(api.updateHost, 431, "allocationstate", id=host["id"], allocationstate="Sideways")
    assert api.updateHost(id=host["id"], allocationstate="Enable")["host"]["resourcestate"] == "Enabled"
    assert api.reconnectHost(id=host["id"])["host"]["state"] == "Up"
    renamed = api.updateCluster(id=cluster["id"], clustername="renamed", allocationstate="Disabled")["cluster"]
    assert renamed["name"] == "renamed" and renamed["allocationstate"] == "Disabled"
    fails(api.updateCluster, 431, "hypervisor", id=cluster["id"], hypervisor="KVM")

    fails(api.deleteCluster, 536, "hosts", id=cluster["id"])
    assert api.deleteHost(id=host["id"])["success"] is True
    assert api.listHosts(id=host["id"]).get("count", 0) == 0
    api.deleteCluster(id=cluster["id"])
    fails(api.deleteCluster, 431, "id", id=cluster["id"])
    api.deleteHost(id=by_name["id"])
    api.deleteCluster(id=by_name["clusterid"])
    api.deletePod(id=pod["id"])
    api.deleteZone(id=zone["id"])
    api.deleteZone(id=other["id"])


# -- storage --------------------------------------------------------------------------------------


def test_primary_storage_lifecycle(api: CloudStack) -> None:
    zone = new_zone(api)
    pod = new_pod(api, zone, 23)
    cluster = new_cluster(api, zone, pod)
    pool = api.createStoragePool(zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"], name="ps1",
                                 url="nfs://10.1.1.2:/export/primary1", tags="ssd")["storagepool"]
    assert pool["scope"] == "CLUSTER" and pool["type"] == "NetworkFilesystem" and pool["state"] == "Up"
    assert pool["ipaddress"] == "10.1.1.2" and pool["path"] == "/export/primary1"
    assert pool["disksizetotal"] == 1024 * GIB and pool["disksizeallocated"] == 0 and pool["tags"] == "ssd"
    assert pool["overprovisionfactor"] == "2.0" and pool["hypervisor"] == "Simulator"
    wide = api.createStoragePool(zoneid=zone["id"], name="zps", url="nfs://10.1.1.3/export/zone", scope="zone",
                                 hypervisor="Simulator", capacitybytes=100 * GIB)["storagepool"]
    assert wide["scope"] == "ZONE" and wide["disksizetotal"] == 100 * GIB and "clusterid" not in wide
    listed = api.listStoragePools(zoneid=zone["id"])["storagepool"]
    assert {p["id"] for p in listed} == {pool["id"], wide["id"]}
    shaped("listStoragePools", listed)
    assert [p["id"] for p in api.listStoragePools(clusterid=cluster["id"])["storagepool"]] == [pool["id"]]
    assert [p["id"] for p in api.listStoragePools(zoneid=zone["id"], scope="ZONE")["storagepool"]] == [wide["id"]]

    fails(api.createStoragePool, 431, "url", zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"],
          name="bad", url="ftp://x/y")
    fails(api.createStoragePool, 431, "url", zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"],
          name="bad", url="nfs://10.1.1.2")
    fails(api.createStoragePool, 431, "clusterid", zoneid=zone["id"], podid=pod["id"], name="bad",
          url="nfs://10.1.1.2/x")
    fails(api.createStoragePool, 431, "podid", zoneid=zone["id"], clusterid=cluster["id"], name="bad",
          url="nfs://10.1.1.2/x")
    fails(api.createStoragePool, 431, "hypervisor", zoneid=zone["id"], scope="zone", name="bad",
          url="nfs://10.1.1.2/x")
    fails(api.createStoragePool, 431, "scope", zoneid=zone["id"], scope="galaxy", name="bad", url="nfs://10.1.1.2/x")
    fails(api.createStoragePool, 431, "url", zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"],
          name="dup", url="nfs://10.1.1.2:/export/primary1")
    fails(api.createStoragePool, 431, "capacitybytes", zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"],
          name="neg", url="nfs://10.1.1.9/x", capacitybytes=-5)

    updated = api.updateStoragePool(id=pool["id"], name="ps1b", tags="fast,ssd", capacitybytes=2048 * GIB,
                                    enabled=False)["storagepool"]
    assert updated["name"] == "ps1b" and updated["tags"] == "fast,ssd" and updated["state"] == "Disabled"
    assert updated["disksizetotal"] == 2048 * GIB
    assert api.updateStoragePool(id=pool["id"], enabled=True)["storagepool"]["state"] == "Up"
    assert api.enableStorageMaintenance(id=pool["id"])["storagepool"]["state"] == "Maintenance"
    fails(api.enableStorageMaintenance, 431, "already in maintenance", id=pool["id"])
    fails(api.updateStoragePool, 431, "maintenance", id=pool["id"], enabled=True)
    assert api.cancelStorageMaintenance(id=pool["id"])["storagepool"]["state"] == "Up"
    fails(api.cancelStorageMaintenance, 431, "not in maintenance", id=pool["id"])

    fails(api.deleteCluster, 536, "storage pools", id=cluster["id"])
    assert api.deleteStoragePool(id=pool["id"])["success"] is True
    api.deleteStoragePool(id=wide["id"])
    assert api.listStoragePools(zoneid=zone["id"]).get("count", 0) == 0
    api.deleteCluster(id=cluster["id"])
    api.deletePod(id=pod["id"])
    api.deleteZone(id=zone["id"])


def test_image_and_staging_stores(api: CloudStack) -> None:
    zone = new_zone(api)
    store = api.addImageStore(provider="NFS", url="nfs://10.1.1.2/export/secondary", zoneid=zone["id"],
                              name=name("sec"))["imagestore"]
    assert store["providername"] == "NFS" and store["protocol"] == "nfs" and store["scope"] == "ZONE"
    assert store["zoneid"] == zone["id"] and store["readonly"] is False
    listed = api.listImageStores(zoneid=zone["id"])["imagestore"]
    assert [s["id"] for s in listed] == [store["id"]]
    shaped("listImageStores", listed)
    fails(api.addImageStore, 431, "already exists", provider="NFS", url="nfs://10.1.1.2/export/other",
          zoneid=zone["id"], name=store["name"])
    fails(api.addImageStore, 431, "url", provider="NFS", url="http://10.1.1.2/x", zoneid=zone["id"])
    fails(api.addImageStore, 431, "zoneid", provider="NFS", url="nfs://10.1.1.2/export/nozone")
    fails(api.addImageStore, 431, "details[accesskey]", provider="S3", url="nfs://10.1.1.2/export/s3",
          zoneid=zone["id"])  # S3 is a provider (tests/test_image_stores.py); it needs its keys
    fails(api.addImageStore, 431, "Unknown image store provider SMB", provider="SMB", url="nfs://10.1.1.2/x",
          zoneid=zone["id"])  # no silent fallback to NFS
    fails(api.addImageStore, 431, "provider")
    legacy = api.addSecondaryStorage(url="file:///tmp/overcast-legacy-store", zoneid=zone["id"])["secondarystorage"]
    assert legacy["protocol"] == "file" and legacy["name"] == "file:///tmp/overcast-legacy-store"

    staging = api.createSecondaryStagingStore(url="nfs://10.1.1.5/export/cache", zoneid=zone["id"])
    staging = staging["secondarystorage"]
    listed = api.listSecondaryStagingStores(zoneid=zone["id"])["secondarystagingstore"]
    assert [s["id"] for s in listed] == [staging["id"]]
    shaped("listSecondaryStagingStores", listed)
    assert staging["id"] not in [s["id"] for s in api.listImageStores(zoneid=zone["id"])["imagestore"]]
    fails(api.createSecondaryStagingStore, 431, "scope", url="nfs://10.1.1.5/export/c2", zoneid=zone["id"],
          scope="region")
    fails(api.deleteSecondaryStagingStore, 431, "not a staging store", id=store["id"])
    fails(api.deleteImageStore, 431, "not an image store", id=staging["id"])
    assert api.deleteSecondaryStagingStore(id=staging["id"])["success"] is True
    assert api.deleteImageStore(id=store["id"])["success"] is True
    api.deleteImageStore(id=legacy["id"])
    assert api.listImageStores(zoneid=zone["id"]).get("count", 0) == 0
    api.deleteZone(id=zone["id"])


# -- physical networks, providers, ranges ---------------------------------------------------------


def test_physical_network_traffic_types_and_providers(api: CloudStack) -> None:
    zone = new_zone(api)
    pnet = api.createPhysicalNetwork(zoneid=zone["id"], name="pnet", isolationmethods="VLAN",
                                     tags="public")["physicalnetwork"]
    assert pnet["state"] == "Disabled" and pnet["broadcastdomainrange"] == "ZONE"
    assert pnet["isolationmethods"] == "VLAN" and pnet["zoneid"] == zone["id"]
    shaped("listPhysicalNetworks", api.listPhysicalNetworks(zoneid=zone["id"])["physicalnetwork"])
    fails(api.createPhysicalNetwork, 431, "vlan", zoneid=zone["id"], name="bad", vlan="10-5")
    fails(api.createPhysicalNetwork, 431, "isolationmethods", zoneid=zone["id"], name="bad",
          isolationmethods="CARRIER-PIGEON")
    fails(api.createPhysicalNetwork, 431, "broadcastdomainrange", zoneid=zone["id"], name="bad",
          broadcastdomainrange="POD")

    # Built-in providers come with every physical network, disabled.
    providers = api.listNetworkServiceProviders(physicalnetworkid=pnet["id"])["networkserviceprovider"]
    assert {p["name"] for p in providers} == {"VirtualRouter", "VpcVirtualRouter", "InternalLbVm", "ConfigDrive"}
    assert {p["state"] for p in providers} == {"Disabled"}
    shaped("listNetworkServiceProviders", providers)

    for traffic in ("Guest", "Management", "Public"):
        tt = api.addTrafficType(physicalnetworkid=pnet["id"], traffictype=traffic, kvmnetworklabel="cloudbr0")
        assert tt["traffictype"]["traffictype"] == traffic
    fails(api.addTrafficType, 431, "already supports", physicalnetworkid=pnet["id"], traffictype="guest")
    fails(api.addTrafficType, 431, "traffictype", physicalnetworkid=pnet["id"], traffictype="Telepathy")
    types = api.listTrafficTypes(physicalnetworkid=pnet["id"])["traffictype"]
    assert [t["traffictype"] for t in types] == ["Guest", "Management", "Public"]
    shaped("listTrafficTypes", types)
    guest = types[0]
    assert api.updateTrafficType(id=guest["id"], kvmnetworklabel="cloudbr1")["traffictype"]["kvmnetworklabel"] \
        == "cloudbr1"
    fails(api.listTrafficTypes, 431, "physicalnetworkid")

    vr = next(p for p in providers if p["name"] == "VirtualRouter")
    fails(api.updateNetworkServiceProvider, 431, "configure the provider first", id=vr["id"], state="Enabled")
    element = api.listVirtualRouterElements(nspid=vr["id"])["virtualrouterelement"][0]
    assert element["enabled"] is False and element["nspid"] == vr["id"]
    assert api.configureVirtualRouterElement(id=element["id"], enabled=True)["virtualrouterelement"]["enabled"]
    assert api.updateNetworkServiceProvider(id=vr["id"], state="Enabled")["networkserviceprovider"]["state"] \
        == "Enabled"
    ilb = next(p for p in providers if p["name"] == "InternalLbVm")
    ilb_element = api.listInternalLoadBalancerElements(nspid=ilb["id"])["internalloadbalancerelement"][0]
    api.configureInternalLoadBalancerElement(id=ilb_element["id"], enabled=True)
    api.updateNetworkServiceProvider(id=ilb["id"], state="Enabled")
    fails(api.configureInternalLoadBalancerElement, 431, "not an internal load balancer", id=element["id"],
          enabled=True)
    added = api.addNetworkServiceProvider(physicalnetworkid=pnet["id"], name="SecurityGroupProvider")
    assert added["networkserviceprovider"]["servicelist"] == ["SecurityGroup"]
    fails(api.addNetworkServiceProvider, 431, "already exists", physicalnetworkid=pnet["id"],
          name="SecurityGroupProvider")
    fails(api.addNetworkServiceProvider, 431, "Unable to find", physicalnetworkid=pnet["id"], name="Magic")
    api.deleteNetworkServiceProvider(id=added["networkserviceprovider"]["id"])

    enabled = api.updatePhysicalNetwork(id=pnet["id"], state="Enabled", vlan="100-200")["physicalnetwork"]
    assert enabled["state"] == "Enabled" and enabled["vlan"] == "100-200"
    fails(api.updatePhysicalNetwork, 431, "vlan", id=pnet["id"], vlan="5000-5001")
    fails(api.updatePhysicalNetwork, 431, "state", id=pnet["id"], state="Sideways")
    assert api.updateZone(id=zone["id"], allocationstate="Enabled")["zone"]["allocationstate"] == "Enabled"
    api.updateZone(id=zone["id"], allocationstate="Disabled")

    fails(api.deleteZone, 536, "physical networks", id=zone["id"])
    api.deleteTrafficType(id=guest["id"])
    assert len(api.listTrafficTypes(physicalnetworkid=pnet["id"])["traffictype"]) == 2
    assert api.deletePhysicalNetwork(id=pnet["id"])["success"] is True
    api.deleteZone(id=zone["id"])


def test_public_ip_ranges(api: CloudStack, infra_server: Server) -> None:
    zone = new_zone(api)
    pnet = api.createPhysicalNetwork(zoneid=zone["id"], name="pnet")["physicalnetwork"]
    fails(api.createVlanIpRange, 431, "Public traffic", zoneid=zone["id"], gateway="192.168.5.1",
          netmask="255.255.255.0", startip="192.168.5.10", endip="192.168.5.20", vlan="55")
    api.addTrafficType(physicalnetworkid=pnet["id"], traffictype="Public")
    rng = api.createVlanIpRange(zoneid=zone["id"], gateway="192.168.5.1", netmask="255.255.255.0",
                                startip="192.168.5.10", endip="192.168.5.20", vlan="55",
                                forvirtualnetwork=True)["vlan"]
    assert rng["vlan"] == "vlan://55" and rng["forvirtualnetwork"] is True and rng["cidr"] == "192.168.5.0/24"
    assert rng["physicalnetworkid"] == pnet["id"]
    listed = api.listVlanIpRanges(zoneid=zone["id"])["vlaniprange"]
    assert [r["id"] for r in listed] == [rng["id"]]
    shaped("listVlanIpRanges", listed)
    capacity = api.listCapacity(zoneid=zone["id"], type=4)["capacity"]
    assert [(c["capacityused"], c["capacitytotal"]) for c in capacity] == [(0, 11)]

    fails(api.createVlanIpRange, 431, "overlaps", zoneid=zone["id"], gateway="192.168.5.1",
          netmask="255.255.255.0", startip="192.168.5.20", endip="192.168.5.30", vlan="55")
    fails(api.createVlanIpRange, 431, "endip", zoneid=zone["id"], gateway="192.168.6.1",
          netmask="255.255.255.0", startip="192.168.6.10", endip="192.168.7.30")
    fails(api.createVlanIpRange, 431, "startip", zoneid=zone["id"], gateway="192.168.6.1",
          netmask="255.255.255.0", startip="bogus")
    fails(api.createVlanIpRange, 431, "gateway", zoneid=zone["id"], netmask="255.255.255.0", startip="192.168.6.10")
    fails(api.createVlanIpRange, 431, "vlan", zoneid=zone["id"], gateway="192.168.6.1", netmask="255.255.255.0",
          startip="192.168.6.10", vlan="99999")
    fails(api.createVlanIpRange, 431, "zoneid", gateway="192.168.6.1", netmask="255.255.255.0",
          startip="192.168.6.10")

    root = api.listDomains(name="ROOT")["domain"][0]
    dedicated = api.dedicatePublicIpRange(id=rng["id"], domainid=root["id"], account="admin")["vlan"]
    assert dedicated["account"] == "admin" and dedicated["domainid"] == root["id"]
    fails(api.dedicatePublicIpRange, 431, "already been dedicated", id=rng["id"], domainid=root["id"])
    assert api.releasePublicIpRange(id=rng["id"])["success"] is True
    fails(api.releasePublicIpRange, 431, "not dedicated", id=rng["id"])
    fails(api.deletePhysicalNetwork, 536, "IP ranges", id=pnet["id"])

    # An allocated address keeps the range.
    from sqlalchemy import create_engine, text

    engine = create_engine(infra_server.db_url or f"sqlite:///{infra_server.data_dir / 'overcast.db'}")
    with engine.begin() as c:
        c.execute(text("UPDATE public_ip SET state = 'Allocated' WHERE address = '192.168.5.12'"))
    fails(api.deleteVlanIpRange, 536, "allocated", id=rng["id"])
    assert api.listCapacity(zoneid=zone["id"], type=4)["capacity"][0]["capacityused"] == 1
    with engine.begin() as c:
        c.execute(text("UPDATE public_ip SET state = 'Free' WHERE address = '192.168.5.12'"))
    engine.dispose()
    assert api.deleteVlanIpRange(id=rng["id"])["success"] is True
    assert api.listVlanIpRanges(zoneid=zone["id"]).get("count", 0) == 0
    assert api.listCapacity(zoneid=zone["id"], type=4).get("count", 0) == 0
    api.deletePhysicalNetwork(id=pnet["id"])
    api.deleteZone(id=zone["id"])


# -- capacity after deployments -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox_api(server_factory: Any) -> CloudStack:
    srv = server_factory(extra_args=["--sandbox"])
    return client(srv, srv.api_key, srv.secret_key)


def sandbox_ids(api: CloudStack) -> tuple[str, str, str]:
    zone = next(z for z in api.listZones()["zone"] if z["name"] == "Sandbox-simulator-advanced")
    template = next(t for t in api.listTemplates(templatefilter="featured", zoneid=zone["id"])["template"]
                    if t["name"] == "CentOS 5.6 (64-bit) no GUI (Simulator)")
    small = api.listServiceOfferings(name="Small Instance")["serviceoffering"][0]
    return zone["id"], template["id"], small["id"]


def by_type(rows: list[dict[str, Any]]) -> dict[int, tuple[int, int, str]]:
    return {r["type"]: (r["capacityused"], r["capacitytotal"], r["percentused"]) for r in rows}


def test_capacity_is_exact_after_deployments(sandbox_api: CloudStack) -> None:
    api = sandbox_api
    zone_id, template_id, small_id = sandbox_ids(api)
    before = by_type(api.listCapacity(zoneid=zone_id)["capacity"])
    # Four hosts of 16 x 4000 MHz and 64 GiB; two pools of 4 TiB; 199 public addresses; VLANs 100-200.
    assert before[1] == (0, 4 * 16 * 4000, "0") and before[0] == (0, 4 * 64 * GIB, "0")
    assert before[2] == (0, 2 * 4 * 1024 * GIB, "0") and before[3] == (0, 2 * 2 * 4 * 1024 * GIB, "0")
    assert before[4] == (0, 199, "0") and before[7] == (0, 101, "0")
    vms = [api.deployVirtualMachine(zoneid=zone_id, templateid=template_id, serviceofferingid=small_id)
           ["virtualmachine"] for _ in range(3)]
    assert {vm["state"] for vm in vms} == {"Running"}
    after = by_type(api.listCapacity(zoneid=zone_id)["capacity"])
    assert after[1][:2] == (3 * 500, 256000) and after[1][2] == "0.59"
    assert after[0][:2] == (3 * 512 * 1024**2, 4 * 64 * GIB) and after[0][2] == "0.59"
    allocated = sum(p["disksizeallocated"] for p in api.listStoragePools(zoneid=zone_id)["storagepool"])
    assert allocated > 0 and after[3][0] == allocated and after[2][0] == allocated
    # The account's isolated network took a source NAT address and a guest VLAN.
    assert after[4][:2] == (1, 199) and after[7][:2] == (1, 101)
    hosts = api.listHosts(zoneid=zone_id, type="Routing")["host"]
    assert sum(h["cpuallocatedvalue"] for h in hosts) == 1500
    assert sum(h["memoryallocatedbytes"] for h in hosts) == 3 * 512 * 1024**2
    # Per pod and per cluster the same totals add up; sorted by usage, the busiest first.
    pod = api.listPods(zoneid=zone_id)["pod"][0]
    assert by_type(api.listCapacity(podid=pod["id"], type=1)["capacity"])[1][:2] == (1500, 256000)
    clusters = api.listClusters(zoneid=zone_id)["cluster"]
    per_cluster = [by_type(api.listCapacity(clusterid=c["id"], type=1)["capacity"])[1] for c in clusters]
    assert sum(u for u, _, _ in per_cluster) == 1500 and {t for _, t, _ in per_cluster} == {128000}
    ranked = api.listCapacity(zoneid=zone_id, sortby="usage")["capacity"]
    assert [float(r["percentused"]) for r in ranked] == sorted((float(r["percentused"]) for r in ranked), reverse=True)
    shaped("listCapacity", ranked)
    zone = api.listZones(id=zone_id, showcapacities=True)["zone"][0]
    assert by_type(zone["capacity"])[1][:2] == (1500, 256000)
    fails(api.listCapacity, 431, "sortBy", sortby="size")
    for vm in vms:
        api.destroyVirtualMachine(id=vm["id"], expunge=True)
    assert by_type(api.listCapacity(zoneid=zone_id, type=1)["capacity"])[1][:2] == (0, 256000)
