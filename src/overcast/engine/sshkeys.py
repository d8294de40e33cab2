"""SSH key pairs: generated (RSA, the private key handed out once) or registered from a public key,
fingerprinted as CloudStack does (MD5 of the key blob, colon-separated hex), and set on stopped VMs."""

from __future__ import annotations

import base64
import binascii
import hashlib

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from overcast.db.models import Account, Domain, SshKeyPair, VirtualMachine
from overcast.engine.context import EngineContext
from overcast.errors import InvalidParameterValue

#: CloudStack's ssh.key.length default.
KEY_BITS = 2048
#: Key types CloudStack accepts in registerSSHKeyPair (SSHKeysHelper), plus FIDO keys.
KEY_TYPES = ("ssh-rsa", "ssh-dss", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
             "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")
#: Types the cryptography package parses fully (the others are checked structurally).
_PARSEABLE = ("ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")


def fingerprint(public_key: str) -> str:
    """CloudStack's fingerprint of an OpenSSH public key: MD5 of the decoded blob, ``aa:bb:...``."""
    blob = base64.b64decode(public_key.split()[1])
    return ":".join(f"{b:02x}" for b in hashlib.md5(blob, usedforsecurity=False).digest())


def normalize_public_key(material: str) -> str | None:
    """``type base64`` of OpenSSH key material (comment dropped; the material may itself be base64
    encoded, as CloudStack allows), or None when it is not a valid public key."""
    text = material.strip()
    if not text.startswith(KEY_TYPES):
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8").strip()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return None
    parts = text.split()
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        return None
    key_type, b64 = parts[0], parts[1]
    try:
        blob = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(blob) < 4:
        return None
    n = int.from_bytes(blob[:4], "big")
    if blob[4:4 + n] != key_type.encode():
        return None
    if key_type in _PARSEABLE:
        from cryptography.hazmat.primitives import serialization  # on use: importing it slows every start

        try:
            serialization.load_ssh_public_key(f"{key_type} {b64}".encode())
        except Exception:  # noqa: BLE001 - whatever the parser objects to, the key is invalid
            return None
    return f"{key_type} {b64}"


def generate() -> tuple[str, str]:
    """A new RSA key pair: (OpenSSH public key, PEM "RSA PRIVATE KEY")."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return public, private


def find(ctx: EngineContext, owner: Account, name: str) -> SshKeyPair | None:
    return ctx.session.scalar(select(SshKeyPair).where(SshKeyPair.account_id == owner.id, SshKeyPair.name == name))


def _check_name(name: str | None) -> str:
    if name is None or not name.strip():
        raise InvalidParameterValue("Please specify a valid name for the key pair. The key name can't be empty")
    return name


def _name_taken(ctx: EngineContext, owner: Account, name: str) -> bool:
    # Case-insensitively, so every database answers alike (MariaDB compares names without case).
    return ctx.session.scalar(select(SshKeyPair.id).where(
        SshKeyPair.account_id == owner.id, func.lower(SshKeyPair.name) == name.lower())) is not None


def _save(ctx: EngineContext, owner: Account, name: str, public_key: str, taken: str) -> SshKeyPair:
    s = ctx.session
    pair = SshKeyPair(name=name, account_id=owner.id, domain_id=owner.domain_id, public_key=public_key,
                      fingerprint=fingerprint(public_key))
    try:
        with s.begin_nested():
            s.add(pair)
            s.flush()
    except IntegrityError:  # a concurrent request took the name first
        raise InvalidParameterValue(taken) from None
    return pair


def create(ctx: EngineContext, owner: Account, name: str | None) -> tuple[SshKeyPair, str]:
    """createSSHKeyPair: a new key pair for ``owner``; returns the row and the private key (not stored)."""
    name = _check_name(name)
    taken = f"A key pair with name '{name}' already exists."
    if _name_taken(ctx, owner, name):
        raise InvalidParameterValue(taken)
    public, private = generate()
    pair = _save(ctx, owner, name, public, taken)
    ctx.event("SSHKEYPAIR.CREATE", f"Creating SSH key pair {name}", account_id=owner.id, domain_id=owner.domain_id,
              resource_type="SSHKeyPair", resource_uuid=pair.uuid)
    return pair, private


def register(ctx: EngineContext, owner: Account, name: str | None, material: str | None) -> SshKeyPair:
    """registerSSHKeyPair: store a public key the owner brings."""
    name = _check_name(name)
    taken = f"A key pair with name '{name}' already exists for this account."
    if _name_taken(ctx, owner, name):
        raise InvalidParameterValue(taken)
    public = normalize_public_key(material or "")
    if public is None:
        raise InvalidParameterValue("Public key is invalid")
    if ctx.session.scalar(select(SshKeyPair.id).where(SshKeyPair.account_id == owner.id,
                                                      SshKeyPair.public_key == public)) is not None:
        raise InvalidParameterValue(f"A key pair with key '{public}' already exists for this account.")
    pair = _save(ctx, owner, name, public, taken)
    ctx.event("REGISTER.SSH.KEYPAIR", f"Registering SSH key pair {name}", account_id=owner.id,
              domain_id=owner.domain_id, resource_type="SSHKeyPair", resource_uuid=pair.uuid)
    return pair


def delete(ctx: EngineContext, owner: Account, name: str) -> None:
    """deleteSSHKeyPair by name in the owner's account. VMs keep the key they were given."""
    pair = find(ctx, owner, name)
    if pair is None:
        domain = ctx.session.get(Domain, owner.domain_id)
        raise InvalidParameterValue(f"A key pair with name '{name}' does not exist for account {owner.name} in"
                                    " specified domain id", uuids=[(domain.uuid if domain else "", "domainId")])
    ctx.session.delete(pair)
    ctx.event("SSHKEYPAIR.DELETE", f"Deleting SSH key pair {name}", account_id=owner.id, domain_id=owner.domain_id,
              resource_type="SSHKeyPair", resource_uuid=pair.uuid)
    ctx.session.flush()


def reset_vm_keys(ctx: EngineContext, vm: VirtualMachine, owner: Account, names: list[str]) -> VirtualMachine:
    """resetSSHKeyForVirtualMachine: the stopped VM gets ``names`` (key pairs of ``owner``) as its keys."""
    if vm.state in ("Error", "Expunging") or vm.removed is not None:
        raise InvalidParameterValue("Vm with specified id is not in the right state",
                                    uuids=[(vm.uuid, "virtualMachineId")])
    if vm.state != "Stopped":
        raise InvalidParameterValue(f"Vm {vm.display_name or vm.name} should be stopped to do SSH Key reset",
                                    uuids=[(vm.uuid, "virtualMachineId")])
    unique_names = list(dict.fromkeys(n for n in names if n.strip()))
    if not unique_names:
        raise InvalidParameterValue("'keypair' or 'keypairs' must be specified")
    found = set(ctx.session.scalars(select(SshKeyPair.name).where(SshKeyPair.account_id == owner.id,
                                                                  SshKeyPair.name.in_(unique_names))))
    missing = [n for n in unique_names if n not in found]
    if missing:
        raise InvalidParameterValue(f"Not all specified keypairs exist: no key pair named {', '.join(missing)}"
                                    f" in account {owner.name}")
    vm.keypairs = ",".join(unique_names)
    ctx.event("VM.RESETSSHKEY", f"Resetting SSH key for Vm. Vm Id: {vm.uuid}", account_id=vm.account_id,
              domain_id=vm.domain_id, resource_type="VirtualMachine", resource_uuid=vm.uuid)
    ctx.session.flush()
    return vm


__all__ = ["create", "delete", "find", "fingerprint", "generate", "normalize_public_key", "register",
           "reset_vm_keys"]
