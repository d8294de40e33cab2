"""User data: validation (CloudStack's UserDataManagerImpl.validateUserData), registered user data
(registerUserData and friends, 4.18+), and the effective user data of a VM (UserVmManagerImpl
finalizeUserData: the template's linked user data and its override policy, and the variables).

A VM stores the effective base64 user data in ``user_data``, the registered user data it came from in
``userdata_id`` and the variables' values as a JSON object in ``userdata_details``; the metadata
service and the config drive serve those (one metadata file per variable, as CloudStack).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesParser
from email import policy as email_policy
from urllib.parse import unquote

from sqlalchemy import func, select

from overcast.db.models import Account, Template, UserData, VirtualMachine
from overcast.engine.context import EngineContext
from overcast.errors import InvalidParameterValue, ResourceInUse

#: Encoded characters accepted by GET and by POST (CloudStack's limits).
MAX_GET = 4096
MAX_POST = 1048576
#: Template override policies (linkUserDataToTemplate ``userdatapolicy``).
POLICIES = ("ALLOWOVERRIDE", "APPEND", "DENYOVERRIDE")
#: Characters Apache Commons' Base64.isBase64 accepts: both alphabets, padding and whitespace.
_BASE64_CHARS = re.compile(r"^[A-Za-z0-9+/\-_=\s]*$")
_WHITESPACE = re.compile(r"\s+")
_VARIABLE = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
#: Metadata file names a variable can't take: it would replace the VM's own metadata item.
RESERVED_VARIABLES = frozenset({
    "service-offering", "availability-zone", "local-ipv4", "local-hostname", "public-ipv4", "public-hostname",
    "instance-id", "vm-id", "public-keys", "cloud-identifier", "hypervisor-host-name", "cloud-name",
    "cloud-domain", "cloud-domain-id", "user-data", "meta-data",
})  # fmt: skip


def validate_user_data(value: str | None, *, http_method: str, max_length: int,
                       param: str = "userdata") -> str | None:
    """The base64 user data to store (URL-decoded if needed, re-encoded with padding), None for blank
    input, or InvalidParameterValue naming ``param``. The checks run in CloudStack's order."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if "%" in text:
        text = unquote(text)
    if not _BASE64_CHARS.match(text):
        raise InvalidParameterValue(f"User data is not base64 encoded (parameter {param})")
    compact = _WHITESPACE.sub("", text).translate(str.maketrans("-_", "+/")).rstrip("=")
    try:
        decoded = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameterValue(f"User data is not base64 encoded (parameter {param})") from None
    if not decoded:
        raise InvalidParameterValue(f"User data is too short (parameter {param}): it decodes to nothing")
    method = "POST" if http_method.upper() == "POST" else "GET"
    limit = MAX_POST if method == "POST" else MAX_GET
    if len(text) > limit:
        hint = f"; send it by POST for up to {MAX_POST}" if method == "GET" else ""
        raise InvalidParameterValue(
            f"User data is too long for http {method} request (parameter {param}): {len(text)} characters of"
            f" base64, at most {limit}{hint}")
    if len(text) > max_length:
        raise InvalidParameterValue(
            f"User data has exceeded configurable max length: {max_length} (vm.userdata.max.length; parameter"
            f" {param} has {len(text)} characters of base64)")
    return base64.b64encode(decoded).decode("ascii")


def validate_for(ctx: EngineContext, value: str | None, *, http_method: str, param: str = "userdata") -> str | None:
    return validate_user_data(value, http_method=http_method, max_length=int(ctx.setting("vm.userdata.max.length")),
                              param=param)


def decode(value: str | None) -> str | None:
    if value is None:
        return None
    return base64.b64decode(value).decode("utf-8", "replace")


# -- registered user data ----------------------------------------------------------------------


def parse_params(params: str | None) -> list[str]:
    """The variable names of a ``params`` value (comma separated), validated."""
    names: list[str] = []
    for raw in (params or "").split(","):
        name = raw.strip()
        if not name:
            continue
        if not _VARIABLE.match(name):
            raise InvalidParameterValue(f"Invalid variable name {name!r} (parameter params): use letters, digits,"
                                        " '_', '.' and '-'")
        if name.lower() in RESERVED_VARIABLES:
            raise InvalidParameterValue(f"Variable name {name} (parameter params) is a metadata item's name")
        if name in names:
            raise InvalidParameterValue(f"Variable {name} is given twice (parameter params)")
        names.append(name)
    return names


def register(ctx: EngineContext, owner: Account, name: str, user_data: str, params: str | None,
             *, http_method: str) -> UserData:
    s = ctx.session
    name = name.strip()
    if not name:
        raise InvalidParameterValue("Please give the user data a name (parameter name)")
    content = validate_for(ctx, user_data, http_method=http_method)
    if content is None:
        raise InvalidParameterValue("User data is empty (parameter userdata)")
    names = parse_params(params)
    if s.scalar(select(UserData.id).where(UserData.account_id == owner.id, UserData.name == name)) is not None:
        raise InvalidParameterValue(f"A userdata with name {name} already exists for this account.")
    digest = hashlib.sha256(content.encode("ascii")).hexdigest()
    clash = s.scalar(select(UserData.name).where(UserData.account_id == owner.id, UserData.content_hash == digest))
    if clash is not None:
        raise InvalidParameterValue(f"Userdata {clash} with same content already exists for this account.")
    row = UserData(name=name, account_id=owner.id, domain_id=owner.domain_id, user_data=content, content_hash=digest,
                   params=",".join(names) or None)
    s.add(row)
    s.flush()
    ctx.event("REGISTER.USER.DATA", f"Registered user data {name}", account_id=owner.id, domain_id=owner.domain_id,
              resource_type="UserData", resource_uuid=row.uuid)
    return row


def delete(ctx: EngineContext, row: UserData) -> None:
    s = ctx.session
    templates = s.scalar(select(func.count(Template.id)).where(Template.userdata_id == row.id,
                                                               Template.removed.is_(None)))
    if templates:
        raise ResourceInUse(f"Cannot delete user data {row.name}: it is linked to active template/templates")
    vms = s.scalar(select(func.count(VirtualMachine.id)).where(VirtualMachine.userdata_id == row.id,
                                                               VirtualMachine.removed.is_(None)))
    if vms:
        raise ResourceInUse(f"Cannot delete user data {row.name}: it is used by {vms} VM(s)")
    from overcast.engine.bundles import using_user_data

    bundles = using_user_data(ctx, row.id)
    if bundles:
        raise ResourceInUse(f"Cannot delete user data {row.name}: bundle(s) {', '.join(sorted(bundles))} deploy it")
    s.delete(row)
    s.flush()


def link_to_template(ctx: EngineContext, template: Template, row: UserData | None, policy: str | None) -> None:
    """Link ``row`` to the template with ``policy`` (default ALLOWOVERRIDE), or unlink when ``row`` is None."""
    if row is None:
        template.userdata_id = None
        template.userdata_policy = None
    else:
        policy = (policy or "ALLOWOVERRIDE").upper()
        if policy not in POLICIES:
            raise InvalidParameterValue(f"Invalid value {policy} for parameter userdatapolicy: use one of"
                                        f" {', '.join(POLICIES)}")
        template.userdata_id = row.id
        template.userdata_policy = policy
    ctx.session.flush()


# -- the effective user data of a VM -----------------------------------------------------------


@dataclass
class Effective:
    """What a VM stores: base64 user data, the registered user data it came from, the variables (JSON)."""

    user_data: str | None
    userdata_id: int | None
    details: str | None


def effective(ctx: EngineContext, template: Template, *, user_data: str | None, registered: UserData | None,
              details: dict[str, str] | None) -> Effective:
    """CloudStack's finalizeUserData: the template's linked user data under its policy, the given user
    data (already validated) or registered user data, and the variables checked against the declared
    ones. Every declared variable needs a value; undeclared ones are refused."""
    s = ctx.session
    if user_data and registered is not None:
        raise InvalidParameterValue("Both userdata and userdataid can't be given: pass one of them")
    linked = s.get(UserData, template.userdata_id) if template.userdata_id else None
    content: str | None
    used: list[UserData] = []
    if linked is None:
        content = registered.user_data if registered is not None else user_data
        used = [registered] if registered is not None else []
    else:
        policy = (template.userdata_policy or "ALLOWOVERRIDE").upper()
        given = registered.user_data if registered is not None else user_data
        if policy == "DENYOVERRIDE":
            if given:
                raise InvalidParameterValue(
                    f"UserData input is not allowed here since template {template.name} is configured to deny any"
                    " userdata (parameters userdata, userdataid)")
            content, used = linked.user_data, [linked]
        elif policy == "APPEND":
            if given:
                content = append(linked.user_data, given)
                used = [linked, *([registered] if registered is not None else [])]
            else:
                content, used = linked.user_data, [linked]
        elif given:
            content = given
            used = [registered] if registered is not None else []
        else:
            content, used = linked.user_data, [linked]
    declared: list[str] = []
    for row in used:
        for name in parse_params(row.params):
            if name not in declared:
                declared.append(name)
    values = {str(k): str(v) for k, v in (details or {}).items()}
    if values and not declared:
        raise InvalidParameterValue("userdatadetails can only be given with registered user data that declares"
                                    " variables (parameter userdatadetails)")
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise InvalidParameterValue(f"Variables {', '.join(unknown)} are not declared by the user data (parameter"
                                    f" userdatadetails; declared: {', '.join(declared)})")
    missing = [n for n in declared if n not in values]
    if missing:
        raise InvalidParameterValue(f"Values for the user data variables {', '.join(missing)} are missing"
                                    " (parameter userdatadetails)")
    primary = registered if registered is not None else (linked if linked is not None and linked in used else None)
    return Effective(content, primary.id if primary is not None else None,
                     json.dumps(values, sort_keys=True) if values else None)


_SUBTYPES = (("#cloud-config", "cloud-config"), ("#!", "x-shellscript"), ("#include", "x-include-url"),
             ("#cloud-boothook", "cloud-boothook"), ("#part-handler", "part-handler"),
             ("## template: jinja", "jinja2"), ("#upstart-job", "upstart-job"))


def _mime_parts(b64: str) -> list[MIMEText]:
    raw = base64.b64decode(b64)
    head = raw.lstrip()[:200].lower()
    if head.startswith(b"content-type: multipart") or head.startswith(b"mime-version:"):
        msg = BytesParser(policy=email_policy.compat32).parsebytes(raw)
        if msg.is_multipart():
            return [p for p in msg.get_payload() if not p.is_multipart()]  # type: ignore[union-attr]
    text = raw.decode("utf-8", "replace")
    first = text.lstrip().splitlines()[0].lower() if text.strip() else ""
    subtype = next((st for prefix, st in _SUBTYPES if first.startswith(prefix)), "plain")
    return [MIMEText(text, subtype, "utf-8")]


def append(template_data: str, given: str) -> str:
    """The template's user data and the given one as one multipart MIME document (cloud-init's format),
    base64-encoded: CloudStack's APPEND policy (CloudInitUserDataProvider)."""
    doc = MIMEMultipart("mixed")
    for part in (*_mime_parts(template_data), *_mime_parts(given)):
        doc.attach(part)
    return base64.b64encode(doc.as_bytes()).decode("ascii")


__all__ = ["MAX_GET", "MAX_POST", "POLICIES", "Effective", "append", "decode", "delete", "effective",
           "link_to_template", "parse_params", "register", "validate_for", "validate_user_data"]
