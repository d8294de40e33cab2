"""Guest readiness: the guest reports ready through its KV storage (or the metadata service), the VM
shows it, VM.READY is recorded, and deployVirtualMachine's ``readytimeout`` parks the job until then."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import httpx
import pytest
from cs import CloudStack

from conftest import Sandbox, Tenant, unique
from test_vms import deploy, error_of


@pytest.fixture(scope="module")
def user(make_sandbox_tenant: Any) -> Tenant:
    return make_sandbox_tenant()  # type: ignore[no-any-return]


def wait_job(api: CloudStack, jobid: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = api.queryAsyncJobResult(jobid=jobid, fetch_result=False)
        if job["jobstatus"] != 0 or time.monotonic() > deadline:
            return job  # type: ignore[no-any-return]
        time.sleep(0.1)


def vm_of(api: CloudStack, vm_id: str) -> dict[str, Any]:
    return api.listVirtualMachines(id=vm_id)["virtualmachine"][0]  # type: ignore[no-any-return]


def test_the_simulated_guest_fetches_its_user_data_and_reports_ready(user: Tenant, sandbox: Sandbox,
                                                                    make_sandbox_tenant: Any) -> None:
    # Another account's guest holds the same address in its own network: the guest asks at its own
    # network's gateway, which tells the two apart, as on a virtual router.
    twin = deploy(make_sandbox_tenant().api, sandbox, name=unique("twin"))
    user_data = b"#cloud-config\nruncmd: [echo configured]\n"
    vm = deploy(user.api, sandbox, name=unique("guest"), readytimeout=60, ipaddress=twin["nic"][0]["ipaddress"],
                userdata=base64.b64encode(user_data).decode(), details=[{"simulator.guest.ready": "0.3"}])
    assert vm["nic"][0]["ipaddress"] == twin["nic"][0]["ipaddress"]
    # The job completed only once the guest had reported: the VM it answers is ready.
    assert vm["state"] == "Running" and vm["ready"] is True and vm["readyat"]
    storage = user.api.getKvStorage(storageid=vm["id"])["kvstorage"]
    got = user.api.getKvStorageValue(storageid=storage["id"], key="simulator.userdata.sha256")["kvresult"]
    assert got["value"] == hashlib.sha256(user_data).hexdigest()
    assert user.api.getKvStorageValue(storageid=storage["id"], key="ready")["kvresult"]["value"] == "true"
    events = user.api.listEvents(type="VM.READY")["event"]
    assert any(vm["id"] in (e.get("description") or "") for e in events)
    assert vm["id"] in {v["id"] for v in user.api.listVirtualMachines(ready=True)["virtualmachine"]}


def test_a_guest_reports_ready_through_the_kv_http_service(user: Tenant, sandbox: Sandbox) -> None:
    api = user.api
    name = unique("manual")
    job = api.deployVirtualMachine(zoneid=sandbox.advanced_zone, templateid=sandbox.template,
                                   serviceofferingid=sandbox.small, name=name, readytimeout=120, fetch_result=False)
    vm_id = job["id"]
    deadline = time.monotonic() + 30
    while vm_of(api, vm_id)["state"] != "Running":
        assert time.monotonic() < deadline, "the VM never ran"
        time.sleep(0.1)
    time.sleep(0.5)
    assert api.queryAsyncJobResult(jobid=job["jobid"], fetch_result=False)["jobstatus"] == 0  # parked, waiting for the guest
    assert vm_of(api, vm_id)["ready"] is False
    assert vm_id in {v["id"] for v in api.listVirtualMachines(ready=False)["virtualmachine"]}
    storage = api.getKvStorage(storageid=vm_id)["kvstorage"]
    # The guest, holding its storage's secret, writes the key over plain HTTP.
    answer = httpx.put(f"{storage['url']}set/{vm_id}/ready", content="yes",
                       headers={"Secret-Key": storage["secretkey"], "Content-Type": "text/plain"})
    assert answer.status_code == 200
    result = wait_job(api, job["jobid"])
    assert result["jobstatus"] == 1, result
    done = result["jobresult"]["virtualmachine"]
    assert done["id"] == vm_id and done["ready"] is True
    # Readiness belongs to a boot: a stopped VM is not ready, and reports again after its next start.
    api.stopVirtualMachine(id=vm_id)
    assert vm_of(api, vm_id)["ready"] is False and "readyat" not in vm_of(api, vm_id)


def test_a_guest_that_never_reports_fails_the_job_and_stays(user: Tenant, sandbox: Sandbox) -> None:
    api = user.api
    job = api.deployVirtualMachine(zoneid=sandbox.advanced_zone, templateid=sandbox.template,
                                   serviceofferingid=sandbox.small, name=unique("silent"), readytimeout=1,
                                   fetch_result=False)
    result = wait_job(api, job["jobid"], timeout=30)
    assert result["jobstatus"] == 2, result
    err = result["jobresult"]
    assert err["errorcode"] == 530 and "did not report ready within 1 s" in err["errortext"]
    assert "readytimeout" in err["errortext"]
    vm = vm_of(api, job["id"])
    assert vm["state"] == "Running" and vm["ready"] is False  # the VM stays, visible as not ready


def test_readytimeout_needs_a_started_vm(user: Tenant, sandbox: Sandbox) -> None:
    err = error_of(lambda: deploy(user.api, sandbox, name=unique("never"), startvm=False, readytimeout=5))
    assert err["errorcode"] == 431 and "readytimeout" in err["errortext"]
    err = error_of(lambda: deploy(user.api, sandbox, name=unique("never"), readytimeout=0))
    assert err["errorcode"] == 431 and "readytimeout" in err["errortext"]
