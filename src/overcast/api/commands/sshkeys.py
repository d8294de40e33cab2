"""SSH key pair commands: create, register, list, delete, and reset the keys of a VM."""

from __future__ import annotations


from overcast.access.roles import ALL_ROLES
from overcast.api.commands.vms import RELATED, VmCommand, owner_account, vm_result
from overcast.api.context import CallContext
from overcast.api.declare import (
    LIST, STRING, UUID, Access, Command, ListResult, ObjectResult, Param, Result, Success,
    SuccessResponse, api_command,
)  # fmt: skip
from overcast.api.listing import OwnedList, fetch_page, keyword_filter
from overcast.api.responses.sshkeys import (
    CreatedKeyPairResponse,
    RegisteredKeyPairResponse,
    SSHKeyPairResponse,
    keypair_payload,
)
from overcast.api.responses.vms import UserVmResponse
from overcast.db.models import Account, Domain, SshKeyPair, VirtualMachine
from overcast.engine import sshkeys

KEY_RELATED = ("createSSHKeyPair", "registerSSHKeyPair", "listSSHKeyPairs", "deleteSSHKeyPair")


def _owner_params() -> tuple[Param, Param]:
    return (Param(STRING, description="an optional account for the ssh key. Must be used with domainId."),
            Param(UUID, "domainid", entity=Domain, acl=Access.LIST, description="an optional domainId for the ssh"
                  " key. If the account parameter is used, domainId must also be used."))


@api_command("createSSHKeyPair", response=CreatedKeyPairResponse, roles=ALL_ROLES, event_type="SSHKEYPAIR.CREATE",
             description="Create a new keypair and returns the private key")
class CreateSSHKeyPair(Command):
    name = Param(STRING, required=True, description="Name of the keypair")
    account, domain = _owner_params()

    def execute(self, ctx: CallContext) -> Result:
        owner = owner_account(ctx, self.account, self.domain)
        pair, private_key = sshkeys.create(ctx, owner, self.name)
        return ObjectResult({**keypair_payload(ctx.session, [pair])[0], "privatekey": private_key})


@api_command("registerSSHKeyPair", response=RegisteredKeyPairResponse, roles=ALL_ROLES,
             event_type="REGISTER.SSH.KEYPAIR", description="Register a public key in a keypair under a certain name")
class RegisterSSHKeyPair(Command):
    name = Param(STRING, required=True, description="Name of the keypair")
    public_key = Param(STRING, "publickey", required=True, length=5120, description="Public key material of the"
                       " keypair")
    account, domain = _owner_params()

    def execute(self, ctx: CallContext) -> Result:
        owner = owner_account(ctx, self.account, self.domain)
        pair = sshkeys.register(ctx, owner, self.name, self.public_key)
        return ObjectResult(keypair_payload(ctx.session, [pair])[0])


@api_command("deleteSSHKeyPair", response=SuccessResponse, roles=ALL_ROLES, event_type="SSHKEYPAIR.DELETE",
             description="Deletes a keypair by name")
class DeleteSSHKeyPair(Command):
    name = Param(STRING, required=True, description="Name of the keypair")
    account, domain = _owner_params()

    def execute(self, ctx: CallContext) -> Result:
        owner = owner_account(ctx, self.account, self.domain)
        sshkeys.delete(ctx, owner, self.name)
        return Success()


@api_command("listSSHKeyPairs", response=SSHKeyPairResponse, roles=ALL_ROLES, is_list=True,
             description="List registered keypairs")
class ListSSHKeyPairs(OwnedList):
    id = Param(UUID, since="4.17", related=KEY_RELATED, description="the ID of the ssh keypair")
    name = Param(STRING, description="A key pair name to look for")
    fingerprint = Param(STRING, description="A public key fingerprint to look for")

    def execute(self, ctx: CallContext) -> Result:
        stmt = self.scoped(ctx, SshKeyPair)
        if self.id:
            stmt = stmt.where(SshKeyPair.uuid == self.id)
        if self.name is not None:
            stmt = stmt.where(SshKeyPair.name == self.name)
        if self.fingerprint is not None:
            stmt = stmt.where(SshKeyPair.fingerprint == self.fingerprint.strip().lower())
        kw = keyword_filter(self.keyword, SshKeyPair.name, SshKeyPair.fingerprint)
        if kw is not None:
            stmt = stmt.where(kw)
        rows, count = fetch_page(ctx, stmt, self)
        return ListResult(keypair_payload(ctx.session, rows), count)


@api_command("resetSSHKeyForVirtualMachine", response=UserVmResponse, roles=ALL_ROLES, is_async=True,
             idempotent=True, response_key="resetSSHKeyforvirtualmachineresponse", event_type="VM.RESETSSHKEY",
             description="Resets the SSH Key for virtual machine. The virtual machine must be in a \"Stopped\""
             " state. [async]")
class ResetSSHKeyForVirtualMachine(VmCommand):
    id = Param(UUID, required=True, entity=VirtualMachine, acl=Access.OPERATE, related=RELATED,
               description="The ID of the virtual machine")
    keypair = Param(STRING, description="name of the ssh key pair used to login to the virtual machine")
    keypairs = Param(LIST, since="4.17", description="names of the ssh key pairs to be used to login to the"
                     " virtual machine")
    account = Param(STRING, description="an optional account for the ssh key. Must be used with domainId.")
    domain = Param(UUID, "domainid", entity=Domain, acl=Access.LIST, description="an optional domainId for the"
                   " virtual machine. If the account parameter is used, domainId must also be used.")

    def execute(self, ctx: CallContext) -> Result:
        vm = self.id
        if self.account:
            owner = owner_account(ctx, self.account, self.domain)
        else:
            owner = ctx.session.get(Account, vm.account_id)
            assert owner is not None
        names = list(self.keypairs or [])
        if self.keypair:
            names.insert(0, self.keypair)
        sshkeys.reset_vm_keys(ctx, vm, owner, names)
        return vm_result(ctx, vm)


__all__ = ["CreateSSHKeyPair", "DeleteSSHKeyPair", "ListSSHKeyPairs", "RegisterSSHKeyPair",
           "ResetSSHKeyForVirtualMachine"]
