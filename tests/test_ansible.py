"""Ansible's ``ngine_io.cloudstack`` collection against a sandbox server: real playbooks (one per area,
in ``tests/ansible/``) run by ``ansible-playbook``.

Each playbook takes ``-e phase=...`` and declares the state of that phase (present, attached,
stopped, absent...). Every phase is run twice: the first run must succeed (and change something where
the phase changes something), the second must report ``changed=0``: the modules are idempotent against
Overcast as they are against CloudStack. After the runs the test checks through the API that the cloud
holds what the playbook declared.

Installation: ``ansible-core`` and ``sshpubkeys`` (cs_sshkeypair) come with the test extra. The
collection itself ships only inside PyPI's ``ansible`` bundle (54 MB wheel, 470 MB and 21,000 files once
installed), so instead of installing the bundle the ``collections`` fixture downloads that wheel once
with pip (``COLLECTION_SOURCE``), keeps only ``ansible_collections/ngine_io/cloudstack`` (0.8 MB) in
pytest's cache directory and points ``ANSIBLE_COLLECTIONS_PATH`` at it. A collection already installed
(``pip install ansible``) is used as it is.

The playbooks run on SQLite only: their subject is what the modules send and read on the wire, and
every command they call is exercised on PostgreSQL and MariaDB by the other test modules; running
them once per database cost about four of the suite's minutes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cs import CloudStack

from conftest import client
from servers import Server

pytestmark = [pytest.mark.slow, pytest.mark.backends("sqlite")]

#: The PyPI release whose bundle carries the collection version these playbooks were written for.
COLLECTION_SOURCE = "ansible==12.3.0"
COLLECTION_VERSION = "2.5.0"
COLLECTION_DIR = "ansible_collections/ngine_io/cloudstack/"
PLAYBOOKS = Path(__file__).parent / "ansible"
BIN = Path(sys.executable).parent
RECAP = re.compile(r"^localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)
TEMPLATE = "CentOS 5.6 (64-bit) no GUI (Simulator)"


def installed_collection() -> Path | None:
    """The site-packages holding ngine_io.cloudstack when the ``ansible`` bundle is installed."""
    root = Path(sysconfig.get_paths()["purelib"])
    return root if (root / COLLECTION_DIR / "MANIFEST.json").exists() else None


def fetch_collection(cache: Path) -> Path:
    """``cache``, holding ``ansible_collections/ngine_io/cloudstack`` taken from the ``ansible`` wheel."""
    manifest = cache / COLLECTION_DIR / "MANIFEST.json"
    if manifest.exists():
        return cache
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--dest", tmp, COLLECTION_SOURCE], check=True, capture_output=True, timeout=600)
        (wheel,) = Path(tmp).glob("ansible-*.whl")
        staging = Path(tmp) / "staging"
        with zipfile.ZipFile(wheel) as z:
            z.extractall(staging, [n for n in z.namelist() if n.startswith(COLLECTION_DIR)])
        target = cache / "ansible_collections" / "ngine_io"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(staging / "ansible_collections" / "ngine_io", target)
    return cache


@pytest.fixture(scope="session")
def collections(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """Where ngine_io.cloudstack is (None: on the interpreter's own path)."""
    if installed_collection():
        return None
    cache_plugin = getattr(pytestconfig, "cache", None)
    cache = cache_plugin.mkdir("ansible-collections") if cache_plugin else tmp_path_factory.mktemp("collections")
    path = fetch_collection(Path(cache))
    version = json.loads((path / COLLECTION_DIR / "MANIFEST.json").read_text())["collection_info"]["version"]
    assert version == COLLECTION_VERSION, f"{COLLECTION_SOURCE} carries ngine_io.cloudstack {version}"
    return path


@pytest.fixture(scope="module")
def cloud(server_factory: Any) -> Server:
    """This module's own sandbox server: the playbooks act as its root admin with fixed names."""
    return server_factory(extra_args=["--sandbox"])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def api(cloud: Server) -> CloudStack:
    return client(cloud, cloud.api_key, cloud.secret_key)


class Playbooks:
    def __init__(self, server: Server, collections: Path | None, work: Path) -> None:
        self.server, self.work = server, work
        home = work / "ansible-home"
        (work / "ansible.cfg").write_text("[defaults]\n")  # and no ~/.ansible.cfg
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDSTACK_", "ANSIBLE_"))}
        env.update(
            CLOUDSTACK_ENDPOINT=server.url, CLOUDSTACK_KEY=server.api_key, CLOUDSTACK_SECRET=server.secret_key,
            CLOUDSTACK_TIMEOUT="60", ANSIBLE_CONFIG=str(work / "ansible.cfg"), ANSIBLE_HOME=str(home),
            ANSIBLE_LOCAL_TEMP=str(home / "tmp"), ANSIBLE_REMOTE_TMP=str(home / "remote"),
            ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_PIPELINING="1", ANSIBLE_NOCOLOR="1",
            ANSIBLE_RETRY_FILES_ENABLED="0", LC_ALL="C.UTF-8", LANG="C.UTF-8",
        )
        if collections is not None:
            env["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
        self.env = env

    def run(self, playbook: str, phase: str) -> tuple[int, str]:
        """Run ``playbook`` for ``phase``: the number of tasks it changed, and its output."""
        proc = subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", f"phase={phase}",
             str(PLAYBOOKS / playbook)],
            env=self.env, cwd=self.work, capture_output=True, text=True, timeout=600, check=False)
        out = proc.stdout + proc.stderr
        recap = RECAP.search(proc.stdout)
        if proc.returncode != 0 or recap is None or int(recap.group(4)) or int(recap.group(3)):
            raise AssertionError(f"{playbook} (phase={phase}) failed, exit {proc.returncode}:\n{out[-6000:]}"
                                 f"\n--- server log ---\n{self.server_log()}")
        return int(recap.group(2)), out

    def converge(self, playbook: str, phase: str, *, changes: bool = True) -> str:
        """Run ``phase`` twice: the first run changes something (when ``changes``), the second nothing."""
        changed, out = self.run(playbook, phase)
        if changes:
            assert changed > 0, f"{playbook} (phase={phase}) changed nothing:\n{out[-4000:]}"
        else:
            assert changed == 0, f"{playbook} (phase={phase}) changed {changed} tasks:\n{out[-4000:]}"
            return out  # that run was the idempotency check
        again, out = self.run(playbook, phase)
        assert again == 0, f"{playbook} (phase={phase}) is not idempotent: {again} changed on the second run:\n" \
                           f"{out[-6000:]}"
        return out

    def server_log(self) -> str:
        log = self.server.log_path
        return log.read_text()[-4000:] if log and log.exists() else ""


@pytest.fixture(scope="module")
def playbooks(cloud: Server, collections: Path | None, tmp_path_factory: pytest.TempPathFactory) -> Playbooks:
    return Playbooks(cloud, collections, tmp_path_factory.mktemp("ansible"))


def listed(api: CloudStack, command: str, key: str, **params: Any) -> list[dict[str, Any]]:
    return getattr(api, command)(**params).get(key, [])  # type: ignore[no-any-return]


@pytest.mark.timeout(600)
def test_zones_offerings_and_templates(playbooks: Playbooks, api: CloudStack) -> None:
    playbooks.converge("catalog.yml", "present")
    (so,) = listed(api, "listServiceOfferings", "serviceoffering", name="ansible-small")
    assert (so["cpunumber"], so["cpuspeed"], so["memory"], so["offerha"], so["hosttags"]) == (1, 1000, 512, True,
                                                                                             "ansible")
    disks = {d["name"]: d for d in listed(api, "listDiskOfferings", "diskoffering") if d["name"].startswith("ansible")}
    assert (disks["ansible-20g"]["disksize"], disks["ansible-20g"]["iscustomized"]) == (20, False)
    assert disks["ansible-custom"]["iscustomized"] is True
    (tmpl,) = listed(api, "listTemplates", "template", templatefilter="self", name="ansible-debian")
    assert (tmpl["format"], tmpl["ostypename"], tmpl["passwordenabled"], tmpl["zonename"]) == (
        "QCOW2", "CentOS 7", True, "Sandbox-simulator-advanced")

    playbooks.converge("catalog.yml", "absent")
    assert listed(api, "listServiceOfferings", "serviceoffering", name="ansible-small") == []
    assert not [d for d in listed(api, "listDiskOfferings", "diskoffering") if d["name"].startswith("ansible")]
    assert listed(api, "listTemplates", "template", templatefilter="self", name="ansible-debian") == []


@pytest.mark.timeout(600)
def test_domains_accounts_users_and_limits(playbooks: Playbooks, api: CloudStack) -> None:
    playbooks.converge("identity.yml", "present")
    domains = {d["path"]: d for d in listed(api, "listDomains", "domain", listall=True)}
    assert domains["ROOT/engineering"]["networkdomain"] == "eng.example.com"
    assert domains["ROOT/engineering/team-a"]["parentdomainid"] == domains["ROOT/engineering"]["id"]
    eng = domains["ROOT/engineering"]["id"]
    (builder,) = listed(api, "listAccounts", "account", name="builder", domainid=eng, listall=True)
    assert (builder["accounttype"], builder["networkdomain"], builder["state"]) == (0, "builder.example.com", "enabled")
    assert {u["username"] for u in builder["user"]} == {"builder", "builder-2"}
    (second,) = listed(api, "listUsers", "user", username="builder-2", domainid=eng, listall=True)
    assert (second["email"], second["timezone"], second["account"]) == ("builder-2@example.com", "Europe/Zurich",
                                                                        "builder")
    assert api.getUserKeys(id=second["id"])["userkeys"]["apikey"]
    (admin,) = listed(api, "listAccounts", "account", name="team-admin", listall=True)
    assert (admin["accounttype"], admin["domain"]) == (2, "team-a")
    (vm_limit,) = listed(api, "listResourceLimits", "resourcelimit", account="builder", domainid=eng, resourcetype=0)
    assert int(vm_limit["max"]) == 15
    (volume_limit,) = listed(api, "listResourceLimits", "resourcelimit", domainid=eng, resourcetype=2)
    assert int(volume_limit["max"]) == 40

    playbooks.converge("identity.yml", "absent")
    paths = {d["path"] for d in listed(api, "listDomains", "domain", listall=True)}
    assert not {"ROOT/engineering", "ROOT/engineering/team-a"} & paths
    assert listed(api, "listAccounts", "account", name="builder", listall=True) == []


@pytest.mark.timeout(900)
def test_instance_lifecycle(playbooks: Playbooks, api: CloudStack) -> None:
    def vm() -> dict[str, Any] | None:
        vms = listed(api, "listVirtualMachines", "virtualmachine", name="ansible-web", listall=True)
        return vms[0] if vms else None

    playbooks.converge("instance.yml", "present")
    got = vm()
    assert got is not None and got["state"] == "Running"
    assert (got["displayname"], got["group"], got["keypairs"], got["serviceofferingname"], got["templatename"]) == (
        "Ansible web server", "ansible-web-group", "ansible-key", "Small Instance", TEMPLATE)
    assert [a["name"] for a in got["affinitygroup"]] == ["ansible-spread"]
    assert {t["key"]: t["value"] for t in got["tags"]} == {"role": "web", "env": "test"}
    assert got["zonename"] == "Sandbox-simulator-advanced"
    (key,) = listed(api, "listSSHKeyPairs", "sshkeypair", name="ansible-key")
    assert key["fingerprint"].count(":") == 15
    (group,) = listed(api, "listInstanceGroups", "instancegroup", name="ansible-web-group")
    (affinity,) = listed(api, "listAffinityGroups", "affinitygroup", name="ansible-spread")
    assert affinity["virtualmachineIds"] == [got["id"]] and affinity["type"] == "host anti-affinity"

    playbooks.converge("instance.yml", "started", changes=False)  # it is running already
    playbooks.converge("instance.yml", "stopped")
    assert vm()["state"] == "Stopped"  # type: ignore[index]
    playbooks.converge("instance.yml", "started")
    assert vm()["state"] == "Running"  # type: ignore[index]
    playbooks.converge("instance.yml", "absent")
    assert vm()["state"] == "Destroyed"  # type: ignore[index]
    playbooks.converge("instance.yml", "expunged")
    assert vm() is None
    assert listed(api, "listSSHKeyPairs", "sshkeypair", name="ansible-key") == []
    assert listed(api, "listInstanceGroups", "instancegroup", id=group["id"]) == []
    assert listed(api, "listAffinityGroups", "affinitygroup", name="ansible-spread") == []


@pytest.mark.timeout(600)
def test_isolated_network_and_public_address(playbooks: Playbooks, api: CloudStack) -> None:
    playbooks.converge("network.yml", "present")
    (net,) = listed(api, "listNetworks", "network", name="ansible-net")
    assert (net["type"], net["state"], net["networkdomain"]) == ("Isolated", "Implemented", "ansible.example.com")
    addresses = listed(api, "listPublicIpAddresses", "publicipaddress", associatednetworkid=net["id"])
    tagged = [a for a in addresses if a["tags"]]
    assert len(addresses) == 2 and len(tagged) == 1  # the source NAT address and the one Ansible asked for
    assert tagged[0]["tags"] == [{"key": "purpose", "value": "ansible-web"}] and not tagged[0]["issourcenat"]

    playbooks.converge("network.yml", "absent")
    assert listed(api, "listNetworks", "network", name="ansible-net") == []
    assert listed(api, "listPublicIpAddresses", "publicipaddress", id=tagged[0]["id"]) == []


@pytest.mark.timeout(600)
def test_security_groups_in_the_basic_zone(playbooks: Playbooks, api: CloudStack) -> None:
    playbooks.converge("securitygroups.yml", "present")
    (group,) = listed(api, "listSecurityGroups", "securitygroup", securitygroupname="ansible-web-sg")
    ingress = sorted((r["protocol"], r.get("startport", r.get("icmptype")), r.get("cidr", r.get("securitygroupname")))
                     for r in group["ingressrule"])
    assert ingress == [("icmp", -1, "0.0.0.0/0"), ("tcp", 22, "0.0.0.0/0"), ("tcp", 5432, "ansible-web-sg"),
                       ("tcp", 8000, "10.0.0.0/8")]
    assert [(r["protocol"], r["startport"], r["endport"]) for r in group["egressrule"]] == [("udp", 53, 53)]
    (vm,) = listed(api, "listVirtualMachines", "virtualmachine", name="ansible-sg-vm")
    assert [g["name"] for g in vm["securitygroup"]] == ["ansible-web-sg"]
    assert group["virtualmachineids"] == [vm["id"]]

    playbooks.converge("securitygroups.yml", "absent")
    assert listed(api, "listSecurityGroups", "securitygroup", securitygroupname="ansible-web-sg") == []
    assert listed(api, "listVirtualMachines", "virtualmachine", name="ansible-sg-vm") == []


@pytest.mark.timeout(900)
def test_volume_lifecycle_snapshot_policy_and_vm_snapshot(playbooks: Playbooks, api: CloudStack) -> None:
    def volume() -> dict[str, Any] | None:
        vols = listed(api, "listVolumes", "volume", name="ansible-data")
        return vols[0] if vols else None

    playbooks.converge("volumes.yml", "present")
    (vm,) = listed(api, "listVirtualMachines", "virtualmachine", name="ansible-vol-vm")
    vol = volume()
    assert vol is not None and "virtualmachineid" not in vol and vol["size"] == 5 * 1024 ** 3
    assert vol["tags"][0]["key"] == "backup"

    playbooks.converge("volumes.yml", "attached")
    vol = volume()
    assert vol is not None and (vol["virtualmachineid"], vol["deviceid"]) == (vm["id"], 1)
    (policy,) = listed(api, "listSnapshotPolicies", "snapshotpolicy", volumeid=vol["id"])
    assert (policy["intervaltype"], policy["schedule"], policy["maxsnaps"], policy["timezone"]) == (
        1, "30:2", 7, "Europe/Zurich")

    playbooks.converge("volumes.yml", "detached")
    assert "virtualmachineid" not in volume()  # type: ignore[operator]
    (snap,) = listed(api, "listVMSnapshot", "vmSnapshot", virtualmachineid=vm["id"])
    assert (snap["displayname"], snap["state"]) == ("ansible-after-data", "Ready")

    playbooks.converge("volumes.yml", "absent")
    assert volume() is None
    assert listed(api, "listVirtualMachines", "virtualmachine", name="ansible-vol-vm") == []


def test_image_store(playbooks: Playbooks, api: CloudStack) -> None:
    playbooks.converge("image_stores.yml", "present")
    (store,) = listed(api, "listImageStores", "imagestore", name="ansible-secondary")
    assert (store["url"], store["providername"]) == ("nfs://10.1.1.9/export/ansible-secondary", "NFS")
    playbooks.converge("image_stores.yml", "absent")
    assert listed(api, "listImageStores", "imagestore", name="ansible-secondary") == []
