"""What the server emits matches what listApis declares: names and JSON types.

Go clients are generated from listApis types and fail on a mismatch, so every key of every object a
list command returns must be a declared field with the declared JSON type; and every name we emit must
be one CloudStack's catalogue lists for that command (when the catalogue is beside the repo).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cs import CloudStack

from overcast.api.commands import load_all
from overcast.api.declare import registry

load_all()
CATALOG = Path(__file__).resolve().parents[2] / "shared" / "reference" / "cloudstack-api-catalog.json"
DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

LISTS = ["listAccounts", "listUsers", "listDomains", "listDomainChildren", "listRoles", "listEvents",
         "listAsyncJobs", "listConfigurations", "listRolePermissions", "listManagementServers",
         "listEventTypes", "listApis", "listResourceLimits", "listAffinityGroupTypes"]


def check(value: Any, jtype: str, where: str) -> None:
    if jtype in ("string", "state", "responseobject"):
        if jtype == "string":
            assert isinstance(value, str), where
    elif jtype in ("integer", "long", "short"):
        assert isinstance(value, int) and not isinstance(value, bool), where
    elif jtype == "boolean":
        assert isinstance(value, bool), where
    elif jtype == "date":
        assert isinstance(value, str) and DATE.match(value), where
    elif jtype in ("list", "set"):
        assert isinstance(value, list), where
    elif jtype == "map":
        assert isinstance(value, dict), where


def check_object(obj: dict[str, Any], fields: dict[str, Any], where: str) -> None:
    for key, value in obj.items():
        assert key in fields, f"{where}: undeclared field {key}"
        field = fields[key]
        check(value, field.type, f"{where}.{key}")
        if field.response is not None and isinstance(value, list):
            nested = {f.name: f for f in field.response.all_fields()}
            for item in value:
                if isinstance(item, dict):
                    check_object(item, nested, f"{where}.{key}[]")
        if key in ("id", "domainid", "accountid", "userid", "roleid", "jobid") and isinstance(value, str):
            assert UUID.match(value), f"{where}.{key}={value}"


@pytest.fixture(scope="module")
def populated(admin: CloudStack, make_domain: Any, make_tenant: Any) -> None:
    dom = make_domain()
    make_tenant(domainid=dom["id"])
    make_tenant(accounttype=2, domainid=dom["id"])
    acct = make_tenant()
    admin.disableAccount(id=acct.id, lock=True)


@pytest.mark.parametrize("command", LISTS)
def test_list_items_match_declaration(populated: None, admin: CloudStack, command: str) -> None:
    cls = registry.get(command)
    assert cls is not None
    params: dict[str, Any] = {"listall": True} if "listall" in cls.params else {}
    result = getattr(admin, command)(fetch_list=False, **params)
    key = cls.response.object_name
    items = result.get(key, [])
    assert items, f"{command} returned nothing to check"
    assert result["count"] >= len(items)
    fields = {f.name: f for f in cls.response.all_fields()}
    for item in items:
        check_object(item, fields, command)


#: Commands whose listApis entry names another response class than the one they answer with; their
#: fields are checked against the command whose catalogue entry has the right class. listTrafficTypes
#: declares ProviderResponse, but ListTrafficTypesCmd.execute answers TrafficTypeResponse items (the UI
#: and Ansible read ``traffictype`` from them), the class addTrafficType declares. The authorize
#: security group commands declare SecurityGroupRuleResponse, but their execute answers the group
#: (``securitygroup`` with ``ingressrule``/``egressrule``: Ansible reads it), createSecurityGroup's class.
#: registerUserData's annotation names SuccessResponse, but it answers the UserDataResponse that
#: listUserData declares (the catalogue's entry for it lacks domainpath).
RESPONSE_CLASS_OF = {"listTrafficTypes": "addTrafficType", "authorizeSecurityGroupIngress": "createSecurityGroup",
                     "authorizeSecurityGroupEgress": "createSecurityGroup", "registerUserData": "listUserData"}


@pytest.mark.skipif(not CATALOG.exists(), reason="CloudStack catalogue not beside the repository")
@pytest.mark.parametrize("command", [c.name for c in registry])
def test_declared_names_are_cloudstacks(command: str) -> None:
    catalog = json.loads(CATALOG.read_text())
    entry = catalog.get(command)
    if entry is None:
        pytest.skip(f"{command} is an Overcast extension")
    cls = registry.get(command)
    assert cls is not None
    assert cls.is_async == entry["async"]
    known = {p.lower() for p in entry["params"]}
    # Overcast's additions to CloudStack commands are declared ``extension=True`` (bundleid of
    # listVirtualMachines, bundle fields of UserVmResponse); everything else must be CloudStack's.
    ours = {p.name for p in cls.params.values() if not p.extension} - {"page", "pagesize", "keyword", "customjobid"}
    assert ours <= known, f"params not in CloudStack's {command}: {sorted(ours - known)}"
    # The catalogue names a required parameter by its Java field when that differs from the wire name,
    # always for a parameter called ``type`` (createAffinityGroup: affinityGroupType).
    required = {p.lower() if p.lower() in known else "type" for p in entry["required"]}
    assert {p.name for p in cls.params.values() if p.required} == required
    if entry["response"] and set(entry["response"]) <= {"count", cls.response.object_name}:
        return  # the catalogue records only the wrapper keys (listCapabilities -> capability; registerTemplate)
    if entry["response"]:
        declared = {f.name for f in cls.response.all_fields() if not f.extension}
        catalog_fields = set(catalog[RESPONSE_CLASS_OF.get(command, command)]["response"])
        extra = declared - catalog_fields
        assert not extra, f"response fields not in CloudStack's {command}: {sorted(extra)}"
