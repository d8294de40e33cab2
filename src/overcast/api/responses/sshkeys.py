"""SSH key pair responses."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from overcast.api.declare import Field, ResponseObject
from overcast.api.responses.common import Owners
from overcast.db.models import SshKeyPair

F = Field

_FIELDS = (
    F("id", "string", "ID of the ssh keypair"),
    F("name", "string", "Name of the keypair"),
    F("fingerprint", "string", "Fingerprint of the public key"),
    F("account", "string", "the owner of the keypair"),
    F("domainid", "string", "the domain id of the keypair owner"),
    F("domain", "string", "the domain name of the keypair owner"),
    F("projectid", "string", "the project id of the keypair owner"),
    F("project", "string", "the project name of the keypair owner"),
    F("hasannotations", "boolean", "whether this keypair has annotations"),
)


class SSHKeyPairResponse(ResponseObject):
    """A key pair as listSSHKeyPairs shows it."""

    object_name = "sshkeypair"
    fields = _FIELDS


class RegisteredKeyPairResponse(ResponseObject):
    """registerSSHKeyPair's answer: the key pair under ``keypair``."""

    object_name = "keypair"
    fields = _FIELDS


class CreatedKeyPairResponse(ResponseObject):
    """createSSHKeyPair's answer: the key pair and, this once, its private key."""

    object_name = "keypair"
    fields = (*_FIELDS, F("privatekey", "string", "Private key"))


def keypair_payload(s: Session, pairs: list[SshKeyPair]) -> list[dict[str, Any]]:
    owners = Owners(s, pairs)
    out = []
    for p in pairs:
        o = owners.fields(p)
        out.append({"id": p.uuid, "name": p.name, "fingerprint": p.fingerprint, "account": o["account"],
                    "domainid": o["domainid"], "domain": o["domain"], "hasannotations": False})
    return out


__all__ = ["CreatedKeyPairResponse", "RegisteredKeyPairResponse", "SSHKeyPairResponse", "keypair_payload"]
