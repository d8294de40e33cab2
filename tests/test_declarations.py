"""Every declaration is complete and consistent: what listApis and the docs are built from."""

from __future__ import annotations

import pytest

from overcast.api.commands import load_all
from overcast.api.declare import Command, ParamType, registry
from overcast.errors import CloudError

load_all()
COMMANDS = list(registry)


def test_registry_has_the_core_commands() -> None:
    names = {c.name for c in COMMANDS}
    for name in ("login", "logout", "listApis", "listCapabilities", "createDomain", "listDomains",
                 "listDomainChildren", "updateDomain", "deleteDomain", "createAccount", "listAccounts",
                 "updateAccount", "deleteAccount", "disableAccount", "enableAccount", "lockAccount",
                 "createUser", "listUsers", "updateUser", "deleteUser", "disableUser", "enableUser",
                 "lockUser", "registerUserKeys", "getUserKeys", "getUser", "createRole", "listRoles",
                 "updateRole", "deleteRole", "createRolePermission", "listRolePermissions",
                 "updateRolePermission", "deleteRolePermission", "queryAsyncJobResult", "listAsyncJobs",
                 "listEvents", "listEventTypes", "archiveEvents", "deleteEvents", "listConfigurations",
                 "updateConfiguration"):
        assert name in names, name


#: CloudStack's response keys that are not ``lower(name) + "response"`` (clients read these).
ODD_RESPONSE_KEYS = {"restoreVirtualMachine": "restorevmresponse",
                     "resetSSHKeyForVirtualMachine": "resetSSHKeyforvirtualmachineresponse"}


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: c.name)
def test_declaration_is_complete(cmd: type[Command]) -> None:
    assert cmd.description
    assert cmd.response_key == ODD_RESPONSE_KEYS.get(cmd.name, cmd.name.lower() + "response")
    for p in cmd.params.values():
        assert p.name == p.name.lower() and p.name, (cmd.name, p.attr)
        assert p.description, (cmd.name, p.name)
        if p.entity is not None:
            assert p.type is ParamType.UUID or p.item_type is ParamType.UUID, (cmd.name, p.name)
    if cmd.is_list:
        assert {"page", "pagesize", "keyword"} <= set(cmd.params)
    if cmd.is_async:
        assert "customjobid" in cmd.params
    if cmd.is_list or cmd.name.startswith("list"):
        assert cmd.read_only


def test_error_codes_match_cloudstack() -> None:
    from overcast import errors

    expected = {
        "ParamError": (431, 9999), "InvalidParameterValue": (431, 4350), "PermissionDenied": (531, 4365),
        "AccountLimitExceeded": (532, 4280), "InsufficientCapacity": (533, 4325),
        "ResourceUnavailable": (534, 4380), "ResourceAllocation": (535, 4370), "ResourceInUse": (536, 4375),
        "NetworkRuleConflict": (537, 4360), "UnsupportedAction": (432, 9999), "InternalError": (530, 4250),
        "MalformedParameter": (430, 9999), "Unauthorized": (401, None),
    }
    for name, (code, cs_code) in expected.items():
        cls: type[CloudError] = getattr(errors, name)
        assert (cls.error_code, cls.cs_error_code) == (code, cs_code), name
    # Internal, capacity and unavailability errors are hidden from non-root-admins.
    assert not errors.InternalError.expose_to_users
    assert not errors.InsufficientCapacity.expose_to_users
    assert errors.InvalidParameterValue.expose_to_users
