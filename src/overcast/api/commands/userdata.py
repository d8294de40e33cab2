"""Registered user data (CloudStack 4.18+): register, list, delete, link to a template; and resetting a
VM's user data. Validation and the override policies are in :mod:`overcast.engine.userdata`."""

from __future__ import annotations


from overcast.access.roles import ALL_ROLES
from overcast.api.commands.templates import one as template_result
from overcast.api.commands.vms import RELATED, owner_account, set_user_data, vm_result
from overcast.api.context import CallContext
from overcast.api.declare import (
    MAP, STRING, UUID, Access, Command, ListResult, ObjectResult, Param, Result, Success,
    SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import OwnedList, fetch_page, keyword_filter
from overcast.api.responses.templates import TemplateResponse
from overcast.api.responses.userdata import UserDataResponse, userdata_payload
from overcast.api.responses.vms import UserVmResponse
from overcast.db.models import Domain, Template, UserData, VirtualMachine
from overcast.engine import userdata
from overcast.errors import InvalidParameterValue

UD_RELATED = ("registerUserData", "listUserData")


@api_command("registerUserData", response=UserDataResponse, roles=ALL_ROLES, since="4.18",
             event_type="REGISTER.USER.DATA", description="Register a new userdata.")
class RegisterUserData(Command):
    name = Param(STRING, required=True, description="Name of the userdata")
    user_data = Param(STRING, "userdata", required=True, length=1048576, sensitive=True, description="Base64"
                      " encoded userdata content. Using HTTP GET (via querystring), you can send up to 4KB of data"
                      " after base64 encoding. Using HTTP POST (via POST body), you can send up to 1MB of data"
                      " after base64 encoding. You also need to change vm.userdata.max.length value")
    params = Param(STRING, length=65535, description="comma separated list of variables declared in userdata"
                   " content")
    account = Param(STRING, description="an optional account for the userdata. Must be used with domainId.")
    domain = Param(UUID, "domainid", entity=Domain, acl=Access.LIST, description="an optional domainId for the"
                   " userdata. If the account parameter is used, domainId must also be used.")

    def execute(self, ctx: CallContext) -> Result:
        owner = owner_account(ctx, self.account, self.domain)
        row = userdata.register(ctx, owner, self.name, self.user_data, self.params, http_method=ctx.http_method)
        return ObjectResult(userdata_payload(ctx.session, [row])[0])


@api_command("listUserData", response=UserDataResponse, roles=ALL_ROLES, is_list=True, since="4.18",
             description="List registered userdatas")
class ListUserData(OwnedList):
    id = Param(UUID, related=UD_RELATED, description="the ID of the Userdata")
    name = Param(STRING, description="Userdata name to look for")

    def execute(self, ctx: CallContext) -> Result:
        stmt = self.scoped(ctx, UserData)
        if self.id:
            stmt = stmt.where(UserData.uuid == self.id)
        if self.name is not None:
            stmt = stmt.where(UserData.name == self.name)
        kw = keyword_filter(self.keyword, UserData.name)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult(userdata_payload(ctx.session, rows), count)


@api_command("deleteUserData", response=SuccessResponse, roles=ALL_ROLES, since="4.18",
             description="Deletes a userdata")
class DeleteUserData(Command):
    id = Param(UUID, required=True, entity=UserData, acl=Access.OPERATE, related=UD_RELATED,
               description="the ID of the Userdata")

    def execute(self, ctx: CallContext) -> Result:
        userdata.delete(ctx, self.id)
        return Success()


@api_command("linkUserDataToTemplate", response=TemplateResponse, roles=ALL_ROLES, since="4.18.0",
             description="Link or unlink a userdata to a template.")
class LinkUserDataToTemplate(Command):
    template = Param(UUID, "templateid", entity=Template, acl=Access.OPERATE, description="the ID of the template"
                     " for the virtual machine")
    iso = Param(UUID, "isoid", entity=Template, acl=Access.OPERATE, description="the ID of the ISO for the virtual"
                " machine")
    userdata_id = Param(UUID, "userdataid", entity=UserData, acl=Access.USE, related=UD_RELATED,
                        description="the ID of the userdata that has to be linked to template/ISO. If not provided"
                        " existing userdata will be unlinked from the template/ISO")
    policy = Param(STRING, "userdatapolicy", choices=userdata.POLICIES, description="an optional override policy"
                   " of the userdata. Possible values are - ALLOWOVERRIDE, APPEND, DENYOVERRIDE. Default policy is"
                   " allowoverride")

    def execute(self, ctx: CallContext) -> Result:
        if (self.template is None) == (self.iso is None):
            raise InvalidParameterValue("Please pass either templateid or isoid, not both")
        target = self.template if self.template is not None else self.iso
        if self.template is not None and target.format == "ISO":
            raise InvalidParameterValue("Please specify a valid template (parameter templateid)")
        if self.iso is not None and target.format != "ISO":
            raise InvalidParameterValue("Please specify a valid ISO (parameter isoid)")
        if self.userdata_id is None and self.policy is not None:
            raise InvalidParameterValue("userdatapolicy needs userdataid")
        userdata.link_to_template(ctx, target, self.userdata_id, self.policy)
        ctx.event("TEMPLATE.UPDATE", f"Linked user data to template {target.name}", account_id=target.account_id,
                  domain_id=target.domain_id, resource_type="Template", resource_uuid=target.uuid)
        return template_result(ctx, target)


@api_command("resetUserDataForVirtualMachine", response=UserVmResponse, roles=ALL_ROLES, since="4.18.0",
             event_type="VM.UPDATE", description="Resets the UserData for virtual machine. The virtual machine"
             " must be in a \"Stopped\" state.")
class ResetUserDataForVirtualMachine(Command):
    id = Param(UUID, required=True, entity=VirtualMachine, acl=Access.OPERATE, related=RELATED,
               description="The ID of the virtual machine")
    user_data = Param(STRING, "userdata", length=1048576, sensitive=True, description="an optional binary data"
                      " that can be sent to the virtual machine upon a successful deployment. This binary data must"
                      " be base64 encoded before adding it to the request. Using HTTP GET (via querystring), you"
                      " can send up to 4KB of data after base64 encoding. Using HTTP POST (via POST body), you can"
                      " send up to 1MB of data after base64 encoding. You also need to change"
                      " vm.userdata.max.length value")
    userdata_id = Param(UUID, "userdataid", entity=UserData, acl=Access.USE, related=UD_RELATED,
                        description="the ID of the userdata")
    userdata_details = Param(MAP, "userdatadetails", description="used to specify the parameters values for the"
                             " variables in userdata.")

    def execute(self, ctx: CallContext) -> Result:
        vm = self.id
        if vm.state != "Stopped":
            raise InvalidParameterValue(f"VM {vm.name} should be stopped to do UserData reset (it is {vm.state})")
        set_user_data(ctx, vm, self.user_data, self.userdata_id, self.userdata_details)
        ctx.event("VM.UPDATE", f"Reset user data of VM {vm.uuid}", account_id=vm.account_id,
                  domain_id=vm.domain_id, resource_type="VirtualMachine", resource_uuid=vm.uuid)
        return vm_result(ctx, vm)


__all__ = ["DeleteUserData", "LinkUserDataToTemplate", "ListUserData", "RegisterUserData",
           "ResetUserDataForVirtualMachine"]
