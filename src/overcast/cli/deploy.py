"""``overcast deploy-datacenter``: build zones from a Marvin configuration file, through the API.

The file is the one Marvin's ``deployDataCenter.py`` reads (``setup/dev/advanced.cfg``, ``basic.cfg``):
``zones[]`` with physical networks, pods, clusters, hosts, primary and secondary storage and IP ranges,
plus ``globalConfig[]``. Every object is created with signed API requests in Marvin's order, so what
works here works for Marvin against this server, and the other way round.

Usage::

    client = ApiClient("http://127.0.0.1:8080/client/api", apikey, secretkey)
    DataCenterDeployer(client, config, echo=print).deploy()
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from overcast.access.signing import sign


class ApiError(Exception):
    def __init__(self, command: str, code: int, text: str) -> None:
        super().__init__(f"{command} failed ({code}): {text}")
        self.command, self.code, self.text = command, code, text


def _flatten(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Request pairs: lists comma-joined, booleans ``true``/``false``, lists of dicts as ``name[i].key``."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        elif isinstance(value, dict):
            for i, (k, v) in enumerate(value.items()):
                pairs += [(f"{name}[{i}].key", str(k)), (f"{name}[{i}].value", str(v))]
        elif isinstance(value, (list, tuple)):
            if value and all(isinstance(v, dict) for v in value):
                for i, item in enumerate(value):
                    pairs += [(f"{name}[{i}].{k}", str(v)) for k, v in item.items() if v is not None]
            elif value:
                pairs.append((name, ",".join(str(v) for v in value)))
        else:
            pairs.append((name, str(value)))
    return pairs


class ApiClient:
    """A small signed CloudStack API client (POST, JSON, async jobs polled to completion)."""

    def __init__(self, url: str, apikey: str, secretkey: str, *, timeout: float = 60.0, poll: float = 0.2,
                 job_timeout: float = 600.0) -> None:
        self.url, self.apikey, self.secretkey = url, apikey, secretkey
        self.poll, self.job_timeout = poll, job_timeout
        self.http = httpx.Client(timeout=timeout)
        self._async: set[str] | None = None

    def close(self) -> None:
        self.http.close()

    def request(self, command: str, **params: Any) -> dict[str, Any]:
        pairs = [("command", command), ("response", "json"), ("apiKey", self.apikey), *_flatten(params)]
        pairs.append(("signature", sign(pairs, self.secretkey)))
        try:
            resp = self.http.post(self.url, data=dict(pairs))
        except httpx.HTTPError as exc:
            raise ApiError(command, 0, f"cannot reach {self.url}: {exc}") from exc
        try:
            body = resp.json()
        except ValueError:
            raise ApiError(command, resp.status_code, resp.text[:200]) from None
        inner = next(iter(body.values()), {}) if isinstance(body, dict) and body else {}
        if resp.status_code != 200 or "errorcode" in inner:
            raise ApiError(command, int(inner.get("errorcode", resp.status_code)), str(inner.get("errortext", "")))
        return dict(inner)

    def is_async(self, command: str) -> bool:
        if self._async is None:
            apis = self.request("listApis").get("api", [])
            self._async = {a["name"] for a in apis if a.get("isasync")}
            self._known = {a["name"] for a in apis}
        return command in self._async

    def supports(self, command: str) -> bool:
        self.is_async(command)
        return command in self._known

    def __call__(self, command: str, **params: Any) -> dict[str, Any]:
        """Run ``command``; async commands are polled and their job result returned."""
        body = self.request(command, **params)
        if not self.is_async(command) or "jobid" not in body:
            return body
        deadline = time.monotonic() + self.job_timeout
        while time.monotonic() < deadline:
            job = self.request("queryAsyncJobResult", jobid=body["jobid"])
            status = job.get("jobstatus")
            if status == 1:
                return dict(job.get("jobresult") or {})
            if status == 2:
                result = job.get("jobresult") or {}
                raise ApiError(command, int(result.get("errorcode", 530)), str(result.get("errortext", "")))
            time.sleep(self.poll)
        raise ApiError(command, 0, f"job {body['jobid']} did not finish in {self.job_timeout:.0f} s")


def _first(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The object under ``key`` of an answer (a list's first item for addCluster/addHost)."""
    value = body.get(key)
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, dict):
        raise ApiError(key, 0, f"unexpected answer: {json.dumps(body)[:200]}")
    return value


def _listed(body: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    return list(body.get(key) or [])


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _true(value: Any) -> bool:
    return str(value).strip().lower() == "true"


class DataCenterDeployer:
    """Creates the zones of a Marvin configuration, in the order Marvin's deployDataCenter uses."""

    def __init__(self, api: Callable[..., dict[str, Any]], config: Mapping[str, Any], *,
                 echo: Callable[[str], None] = print, supports: Callable[[str], bool] | None = None) -> None:
        self.api, self.config, self.echo = api, config, echo
        self.supports = supports or (lambda _command: True)
        self.created: dict[str, list[str]] = {}

    def note(self, kind: str, name: str, uuid: str) -> None:
        self.created.setdefault(kind, []).append(uuid)
        self.echo(f"{kind} {name}: {uuid}")

    # -- the whole file ---------------------------------------------------------------------------
    def deploy(self) -> dict[str, list[str]]:
        self.global_config(self.config.get("globalConfig") or [])
        for zone in self.config.get("zones") or []:
            self.zone(zone)
        return self.created

    def global_config(self, entries: list[Mapping[str, Any]]) -> None:
        for entry in entries:
            name, value = entry.get("name"), entry.get("value")
            if not name:
                continue
            try:
                self.api("updateConfiguration", name=name, value=_str(value))
                self.echo(f"setting {name} = {value}")
            except ApiError as exc:
                if exc.code == 431 and "not found" in exc.text.lower():
                    self.echo(f"setting {name}: not known to this server, skipped")
                    continue
                raise

    # -- one zone -----------------------------------------------------------------------------------
    def zone(self, z: Mapping[str, Any]) -> str:
        network_type = str(z.get("networktype") or "Advanced")
        params: dict[str, Any] = {
            "name": z["name"], "networktype": network_type, "dns1": z.get("dns1"), "dns2": z.get("dns2"),
            "internaldns1": z.get("internaldns1") or z.get("dns1"), "internaldns2": z.get("internaldns2"),
            "guestcidraddress": z.get("guestcidraddress"), "domain": z.get("domain"),
            "localstorageenabled": z.get("localstorageenabled"),
        }  # fmt: skip
        if z.get("securitygroupenabled") is not None:
            params["securitygroupenabled"] = _true(z.get("securitygroupenabled"))
        zone = _first(self.api("createZone", **params), "zone")
        zone_id = zone["id"]
        self.note("zone", z["name"], zone_id)
        for pnet in z.get("physical_networks") or []:
            self.physical_network(pnet, zone_id)
        sg_advanced = network_type == "Advanced" and _true(z.get("securitygroupenabled"))
        if network_type == "Basic" or sg_advanced:
            network_id = self.guest_network(z, zone_id)
            self.pods(z.get("pods") or [], zone_id, network_id)
            if sg_advanced:
                self.ip_ranges(z.get("ipranges") or [], zone_id, network_id=network_id, virtual=False)
        else:
            self.pods(z.get("pods") or [], zone_id, None)
            self.ip_ranges(z.get("ipranges") or [], zone_id, virtual=True)
        self.primary_storages(z.get("primaryStorages") or [], zone_id, None, None)
        for cache in z.get("cacheStorages") or []:
            store = _first(self.api("createSecondaryStagingStore", url=cache["url"], zoneid=zone_id,
                                    provider=cache.get("provider")), "secondarystorage")
            self.note("staging store", cache["url"], store["id"])
        for sec in z.get("secondaryStorages") or []:
            provider = sec.get("provider") or "NFS"
            store = _first(self.api("addImageStore", url=sec.get("url"), provider=provider, name=sec.get("name"),
                                    zoneid=zone_id if provider.lower() not in ("s3", "swift") else None,
                                    details=_details(sec.get("details"))), "imagestore")
            self.note("image store", str(sec.get("name") or sec.get("url")), store["id"])
        if str(z.get("enabled", "True")).lower() != "false":
            self.api("updateZone", id=zone_id, allocationstate="Enabled")
            self.echo(f"zone {z['name']}: Enabled")
        if z.get("details"):
            self.api("updateZone", id=zone_id, details=_details(z.get("details")))
        return zone_id

    def physical_network(self, pnet: Mapping[str, Any], zone_id: str) -> str:
        body = self.api("createPhysicalNetwork", name=pnet["name"], zoneid=zone_id,
                        isolationmethods=pnet.get("isolationmethods"), tags=pnet.get("tags"),
                        broadcastdomainrange=pnet.get("broadcastdomainrange"))
        net_id = _first(body, "physicalnetwork")["id"]
        self.note("physical network", pnet["name"], net_id)
        for tt in pnet.get("traffictypes") or []:
            self.api("addTrafficType", physicalnetworkid=net_id, traffictype=tt["typ"],
                     kvmnetworklabel=tt.get("kvm"), xennetworklabel=tt.get("xen"),
                     vmwarenetworklabel=tt.get("vmware"))
            self.echo(f"traffic type {tt['typ']} on {pnet['name']}")
        for provider in pnet.get("providers") or []:
            self.provider(net_id, provider["name"])
        self.api("updatePhysicalNetwork", id=net_id, state="Enabled", vlan=pnet.get("vlan"))
        self.echo(f"physical network {pnet['name']}: Enabled")
        return net_id

    def provider(self, net_id: str, name: str) -> None:
        found = _listed(self.api("listNetworkServiceProviders", physicalnetworkid=net_id, name=name,
                                 state="Disabled"), "networkserviceprovider")
        if not found:
            found = [_first(self.api("addNetworkServiceProvider", name=name, physicalnetworkid=net_id),
                            "networkserviceprovider")]
        nsp_id = found[0]["id"]
        if name in ("VirtualRouter", "VpcVirtualRouter"):
            elements = _listed(self.api("listVirtualRouterElements", nspid=nsp_id), "virtualrouterelement")
            for element in elements[:1]:
                self.api("configureVirtualRouterElement", id=element["id"], enabled=True)
        elif name == "InternalLbVm":
            elements = _listed(self.api("listInternalLoadBalancerElements", nspid=nsp_id),
                               "internalloadbalancerelement")
            for element in elements[:1]:
                self.api("configureInternalLoadBalancerElement", id=element["id"], enabled=True)
        self.api("updateNetworkServiceProvider", id=nsp_id, state="Enabled")
        self.echo(f"provider {name}: Enabled")

    def guest_network(self, z: Mapping[str, Any], zone_id: str) -> str | None:
        """The shared guest network of a basic (or security-group advanced) zone. Servers without
        createNetwork make it from the first guest range instead."""
        if not (self.supports("createNetwork") and self.supports("listNetworkOfferings")):
            return None
        name = z.get("networkofferingname") or "DefaultSharedNetworkOfferingWithSGService"
        offerings = _listed(self.api("listNetworkOfferings", name=name), "networkoffering")
        if not offerings:
            return None
        try:
            body = self.api("createNetwork", name="guestNetworkForBasicZone",
                            displaytext="guestNetworkForBasicZone", zoneid=zone_id,
                            networkofferingid=offerings[0]["id"])
        except ApiError as exc:
            self.echo(f"guest network: {exc}; the first guest IP range will make the zone's network")
            return None
        net_id = _first(body, "network")["id"]
        self.note("network", "guestNetworkForBasicZone", net_id)
        return net_id

    def pods(self, pods: list[Mapping[str, Any]], zone_id: str, network_id: str | None) -> None:
        for p in pods:
            pod = _first(self.api("createPod", name=p["name"], zoneid=zone_id, gateway=p.get("gateway"),
                                  netmask=p.get("netmask"), startip=p.get("startip"), endip=p.get("endip")), "pod")
            self.note("pod", p["name"], pod["id"])
            if p.get("guestIpRanges"):
                self.ip_ranges(p["guestIpRanges"], zone_id, pod_id=pod["id"], network_id=network_id, virtual=False)
            for c in p.get("clusters") or []:
                self.cluster(c, zone_id, pod["id"])

    def cluster(self, c: Mapping[str, Any], zone_id: str, pod_id: str) -> str:
        body = self.api("addCluster", clustername=c["clustername"], clustertype=c.get("clustertype") or
                        "CloudManaged", hypervisor=c.get("hypervisor") or "Simulator", podid=pod_id,
                        zoneid=zone_id, url=c.get("url"), username=c.get("username"), password=c.get("password"))
        cluster_id = _first(body, "cluster")["id"]
        self.note("cluster", c["clustername"], cluster_id)
        for h in c.get("hosts") or []:
            host = _first(self.api("addHost", zoneid=zone_id, podid=pod_id, clusterid=cluster_id, url=h["url"],
                                   username=h.get("username"), password=h.get("password"),
                                   hypervisor=c.get("hypervisor") or "Simulator", hosttags=h.get("hosttags")),
                          "host")
            self.note("host", h["url"], host["id"])
            listed = _listed(self.api("listHosts", id=host["id"]), "host")
            if not listed or listed[0].get("state") != "Up":
                raise ApiError("addHost", 0, f"host {h['url']} is not Up after being added")
        self.primary_storages(c.get("primaryStorages") or [], zone_id, pod_id, cluster_id)
        return cluster_id

    def primary_storages(self, pools: list[Mapping[str, Any]], zone_id: str, pod_id: str | None,
                         cluster_id: str | None) -> None:
        for ps in pools:
            scope = ps.get("scope") or (None if cluster_id else "zone")
            body = self.api("createStoragePool", name=ps["name"], url=ps["url"], zoneid=zone_id, podid=pod_id,
                            clusterid=cluster_id, scope=scope, hypervisor=ps.get("hypervisor") or
                            (None if cluster_id else "Simulator"), tags=ps.get("tags"),
                            capacitybytes=ps.get("capacitybytes"), provider=ps.get("provider"),
                            details=_details(ps.get("details")))
            self.note("primary storage", ps["name"], _first(body, "storagepool")["id"])

    def ip_ranges(self, ranges: list[Mapping[str, Any]], zone_id: str, *, pod_id: str | None = None,
                  network_id: str | None = None, virtual: bool) -> None:
        for r in ranges:
            body = self.api("createVlanIpRange", zoneid=zone_id, podid=pod_id, networkid=network_id,
                            gateway=r.get("gateway"), netmask=r.get("netmask"), startip=r.get("startip"),
                            endip=r.get("endip"), vlan=_str(r.get("vlan")), forvirtualnetwork=virtual)
            self.note("IP range", f"{r.get('startip')}-{r.get('endip')}", _first(body, "vlan")["id"])


def _details(value: Any) -> dict[str, Any] | None:
    """Marvin's ``details``: a dict, a list of {key: value} dicts, or a list of {key, value} pairs."""
    if not value:
        return None
    if isinstance(value, dict):
        return dict(value)
    out: dict[str, Any] = {}
    for item in value:
        if isinstance(item, dict) and set(item) == {"key", "value"}:
            out[str(item["key"])] = item["value"]
        elif isinstance(item, dict):
            out.update(item)
    return out or None


__all__ = ["ApiClient", "ApiError", "DataCenterDeployer"]
