"""Turning results and errors into CloudStack's JSON and XML envelopes.

JSON (ApiResponseSerializer): one top-level key ``<command>response``; lists as ``{"count": N,
"<object>": [...]}`` with ``count`` first and ``{}`` when nothing matched; nulls omitted; empty arrays
kept; dates as ``2024-01-01T00:00:00+0000``. XML mirrors the same tree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

import orjson

from overcast import CLOUDSTACK_VERSION
from overcast.api.declare import FlatResult, ListResult, ObjectResult, Result, Success

JSON_TYPE = "application/json; charset=UTF-8"
XML_TYPE = "text/xml; charset=UTF-8"


def cs_date(value: datetime | None) -> str | None:
    """A stored UTC timestamp the way CloudStack prints dates."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S+0000")


def prune(value: Any) -> Any:
    """Drop None values from dicts, recursively (Gson omits nulls)."""
    if isinstance(value, dict):
        # Recursing only into containers: a call per scalar cost more than the whole walk.
        return {k: prune(v) if isinstance(v, _CONTAINERS) else v for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune(v) if isinstance(v, _CONTAINERS) else v for v in value]
    return value


_CONTAINERS = (dict, list)


def body_of(result: Result, object_name: str) -> dict[str, Any]:
    """The dict under ``<command>response`` for a handler's result."""
    if isinstance(result, ListResult):
        if result.count == 0 and not result.items:
            return {}
        body: dict[str, Any] = {"count": result.count}
        if result.items:
            body[object_name] = result.items
        return body
    if isinstance(result, ObjectResult):
        return {object_name: result.item}
    if isinstance(result, Success):
        out: dict[str, Any] = {"success": result.success}
        if result.display_text:
            out["displaytext"] = result.display_text
        return out
    if isinstance(result, FlatResult):
        return result.fields
    raise TypeError(f"not a command result: {result!r}")


def to_json(response_key: str, body: dict[str, Any]) -> bytes:
    return orjson.dumps({response_key: prune(body)})


def _xml_value(name: str, value: Any, out: list[str]) -> None:
    if value is None:
        return
    if isinstance(value, dict):
        out.append(f"<{name}>")
        for k, v in value.items():
            _xml_value(k, v, out)
        out.append(f"</{name}>")
    elif isinstance(value, list):
        for item in value:
            _xml_value(name, item, out)
    elif isinstance(value, bool):
        out.append(f"<{name}>{'true' if value else 'false'}</{name}>")
    else:
        out.append(f"<{name}>{escape(str(value))}</{name}>")


def to_xml(response_key: str, body: dict[str, Any]) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8"?>', f'<{response_key} cloud-stack-version="{CLOUDSTACK_VERSION}">']
    for k, v in body.items():
        if k == "uuidList":
            for item in v:
                out.append("<uuidList>")
                _xml_value("uuid", item.get("uuid"), out)
                _xml_value("uuidProperty", item.get("uuidProperty"), out)
                out.append("</uuidList>")
            continue
        _xml_value(k, v, out)
    out.append(f"</{response_key}>")
    return "".join(out).encode()


def render(response_key: str, body: dict[str, Any], fmt: str) -> tuple[bytes, str]:
    if fmt == "json":
        return to_json(response_key, body), JSON_TYPE
    return to_xml(response_key, body), XML_TYPE
