"""Request parameters: decode the wire form, then bind and validate them against a declaration.

Wire rules (CloudStack's ParamUnpackWorker / ParamProcessWorker): names are case-insensitive except
inside map fields; the first of duplicate values wins; ``name[i].field=value`` builds maps; lists are
comma separated; booleans are true only for a case-insensitive ``true``; control characters are
refused; unknown parameters are ignored.
"""

from __future__ import annotations

import re
import uuid as uuidlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from overcast.api.declare import Command, Param, ParamType
from overcast.errors import InvalidParameterValue, MalformedParameter, ParamError

if TYPE_CHECKING:
    from overcast.api.context import CallContext

_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")
_MAP_KEY = re.compile(r"^([^\[\]]+)\[(\d+)\]\.([^\[\]]+)$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

#: Names that are part of the protocol rather than of any command.
PROTOCOL_PARAMS = frozenset(
    {"command", "response", "apikey", "signature", "signatureversion", "expires", "sessionkey", "_"}
)

Maps = dict[str, dict[int, dict[str, str]]]


class RequestParams:
    """The decoded parameters of one request: flat values (lower-case names) and maps."""

    __slots__ = ("values", "maps", "raw")

    def __init__(self, values: dict[str, str], maps: Maps, raw: list[tuple[str, str]]) -> None:
        self.values = values
        self.maps = maps
        #: Every (name, value) pair as sent, names unchanged: what the signature covers.
        self.raw = raw

    @classmethod
    def decode(cls, pairs: Iterable[tuple[str, str]]) -> RequestParams:
        values: dict[str, str] = {}
        maps: Maps = {}
        raw: list[tuple[str, str]] = []
        seen: set[str] = set()
        for name, value in pairs:
            if name in seen:
                continue  # CloudStack uses the first value of a repeated parameter
            seen.add(name)
            raw.append((name, value))
            if "[" in name or "]" in name:
                m = _MAP_KEY.match(name)
                if m is None:
                    base = name.split("[", 1)[0]
                    raise MalformedParameter(
                        f"Unable to decode parameter {base}; if specifying an object array, please use"
                        " parameter[index].field=XXX, e.g. userGroupList[0].group=httpGroup"
                    )
                base, index, fname = m.group(1).lower(), int(m.group(2)), m.group(3)
                maps.setdefault(base, {}).setdefault(index, {})[fname] = value
            else:
                values.setdefault(name.lower(), value)
        return cls(values, maps, raw)

    def check_characters(self) -> None:
        for name, value in self.raw:
            if _CONTROL.search(value) and name.lower() != "activationrule":
                raise ParamError(
                    "Received value containing illegal ASCII non-printable characters for parameter"
                    f" {name.lower()}"
                )


def short_name(cmd: type[Command]) -> str:
    """The name CloudStack puts in parameter errors: the response name minus ``response``."""
    return cmd.name.lower()


def parse_date(value: str, name: str) -> datetime:
    """Dates as CloudStack takes them: ``yyyy-MM-dd``, ``yyyy-MM-dd HH:mm:ss`` or ISO 8601."""
    text = value.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"):
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        return parsed
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameterValue(
            f"Unable to parse date {value} for parameter {name}; use yyyy-MM-dd or yyyy-MM-dd HH:mm:ss"
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


class Binder:
    """Converts and validates a request's values for one command, for one caller."""

    def __init__(self, cmd: type[Command], ctx: CallContext) -> None:
        self.cmd = cmd
        self.ctx = ctx
        self.cmd_name = short_name(cmd)

    def bind(self, req: RequestParams) -> dict[str, Any]:
        out: dict[str, Any] = {}
        role = self.ctx.caller.role_type if self.ctx.caller else None
        for p in self.cmd.params.values():
            if p.authorized is not None and role not in p.authorized:
                continue  # CloudStack ignores parameters the caller's role may not use
            if p.type is ParamType.MAP:
                raw_map = req.maps.get(p.name)
                if raw_map is None:
                    if p.required:
                        self._missing(p)
                    continue
                out[p.attr] = [raw_map[i] for i in sorted(raw_map)]
                continue
            raw = req.values.get(p.name)
            if raw is None or (raw == "" and p.type is not ParamType.STRING):
                if p.required:
                    self._missing(p)
                continue
            out[p.attr] = self.convert(p, raw)
        return out

    def _missing(self, p: Param) -> None:
        raise ParamError(f"Unable to execute API command {self.cmd_name} due to missing parameter {p.name}")

    def _invalid(self, p: Param, raw: str) -> ParamError:
        return ParamError(
            f"Unable to execute API command {self.cmd_name} due to invalid value {raw} for parameter {p.name}"
        )

    def convert(self, p: Param, raw: str) -> Any:
        t = p.type
        if t is ParamType.STRING:
            if len(raw) > p.length:
                raise ParamError(f"Value greater than max allowed length {p.length} for param: {p.name}")
            if p.choices is not None:
                match = next((c for c in p.choices if c.lower() == raw.lower()), None)
                if match is None:
                    raise InvalidParameterValue(
                        f"Invalid value {raw} for parameter {p.name}; allowed: {', '.join(p.choices)}"
                    )
                return match
            return raw
        if t is ParamType.BOOLEAN:
            return raw.strip().lower() == "true"
        if t in (ParamType.INTEGER, ParamType.LONG, ParamType.SHORT):
            try:
                number = int(raw.strip())
            except ValueError:
                raise self._invalid(p, raw) from None
            limit = {ParamType.INTEGER: 2**31, ParamType.LONG: 2**63, ParamType.SHORT: 2**15}[t]
            if not -limit <= number < limit:
                raise self._invalid(p, raw)
            if p.min_value is not None and number < p.min_value:
                raise InvalidParameterValue(f"Parameter {p.name} must be at least {p.min_value}")
            if p.max_value is not None and number > p.max_value:
                raise InvalidParameterValue(f"Parameter {p.name} must be at most {p.max_value}")
            return number
        if t in (ParamType.FLOAT, ParamType.DOUBLE):
            try:
                return float(raw.strip())
            except ValueError:
                raise self._invalid(p, raw) from None
        if t is ParamType.UUID:
            return self.resolve(p, raw.strip())
        if t is ParamType.LIST:
            items = [item.strip() for item in raw.split(",") if item.strip()]
            if p.item_type is ParamType.UUID:
                return [self.resolve(p, item) for item in items]
            if p.item_type in (ParamType.INTEGER, ParamType.LONG):
                try:
                    return [int(item) for item in items]
                except ValueError:
                    raise self._invalid(p, raw) from None
            return items
        if t in (ParamType.DATE, ParamType.TZDATE):
            return parse_date(raw, p.name)
        return raw

    def resolve(self, p: Param, raw: str) -> Any:
        """A UUID to its row (when the parameter names an entity), access-checked per ``acl``."""
        if raw == "-1":
            if p.all_marker:
                return -1  # CloudStack's "all" marker (projectid=-1, zoneid=-1 for templates)
            raise self.entity_error(p, raw)
        if not _UUID.match(raw):
            raise self.entity_error(p, raw)
        value = raw.lower()
        if p.entity is None:
            return value
        model = p.entity
        stmt = select(model).where(model.uuid == value)
        if hasattr(model, "removed"):
            stmt = stmt.where(model.removed.is_(None))
        row = self.ctx.session.scalar(stmt)
        if row is None:
            raise self.entity_error(p, raw)
        if p.acl is not None and self.ctx.caller is not None:
            self.ctx.acl.check(self.ctx.caller, row, p.acl)
        return row

    def entity_error(self, p: Param, raw: str) -> ParamError:
        return ParamError(
            f"Unable to execute API command {self.cmd_name} due to invalid value. Invalid parameter"
            f" {p.name} value={raw} due to incorrect long value format, or entity does not exist or due"
            " to incorrect parameter annotation for the field in api cmd class."
        )


def uuid_valid(value: str) -> bool:
    try:
        uuidlib.UUID(value)
    except ValueError:
        return False
    return True


def details_map(entries: list[Mapping[str, str]] | None) -> dict[str, str]:
    """A ``details`` MAP parameter as one dict, whichever encoding the client used.

    Clients send either every key in index 0 (``details[0].a=1&details[0].b=2``) or one per index
    (``details[0].a=1&details[1].b=2``), or key/value pairs (``details[0].key=a&details[0].value=1``).
    """
    out: dict[str, str] = {}
    for entry in entries or []:
        if set(entry) == {"key", "value"}:
            out[entry["key"]] = entry["value"]
        else:
            out.update(entry)
    return out
