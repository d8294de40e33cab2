"""Generated documentation: API coverage against CloudStack's catalogue, and the API reference.

Both documents are built from the command declarations alone (``overcast.api.declare.registry``), so
they cannot drift from what the server does; ``tests/test_docs.py`` fails when a committed document
differs from a fresh generation. Regenerate them with the ``overcast docs`` command::

    overcast docs coverage --catalog ../shared/reference/cloudstack-api-catalog.json > docs/api-coverage.md
    overcast docs reference > docs/api-reference.md

(``python -m overcast.docs ...`` runs the same command group.)

The catalogue is a JSON object mapping each CloudStack command name to ``{async, listkey, params,
required, response, service}``: CloudStack 4.22's commands as its listApis describes them.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from overcast import CLOUDSTACK_VERSION
from overcast.access.roles import RoleType
from overcast.api.declare import Command, Param, ParamType, ResponseObject, registry

#: Parameters CloudStack accepts that its catalogue does not list, so they are not reported as ours
#: alone: ``customjobid`` is taken by every async command (BaseAsyncCmd, since 4.17).
UNLISTED_CLOUDSTACK_PARAMS = frozenset({"customjobid"})

_ROLE_ORDER = sorted(RoleType, key=lambda r: -r.rank)


# -- shared helpers ---------------------------------------------------------------------------


def load_catalog(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        data: dict[str, dict[str, Any]] = json.load(fh)
    return data


def commands() -> list[type[Command]]:
    """Every declared command (built-in and plug-in), sorted by name."""
    from overcast.api.commands import load_all

    load_all()
    return list(registry)


def area_of(cmd: type[Command]) -> str:
    """The area a command belongs to: its module, without the package prefix."""
    module = cmd.__module__
    for prefix in ("overcast.api.commands.", "overcast.api.", "overcast."):
        if module.startswith(prefix):
            module = module[len(prefix):]
            break
    return module.removesuffix("_commands")


def cell(text: object) -> str:
    """Text for one Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def anchor(heading: str) -> str:
    """The GitHub anchor of a heading made of letters, digits, spaces, dots and hyphens."""
    return "".join(c for c in heading.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def roles_text(roles: Iterable[RoleType]) -> str:
    chosen = set(roles)
    return ", ".join(r.value for r in _ROLE_ORDER if r in chosen)


def sentences(text: str, *notes: str) -> str:
    """``text`` followed by notes, each a sentence of its own."""
    text = text.strip()
    notes = tuple(n for n in notes if n)
    if text and notes and not text.endswith("."):
        text += "."
    return " ".join(t for t in (text, *notes) if t)


def links(cmds: Iterable[type[Command]]) -> str:
    return ", ".join(f"[{c.name}](#{anchor(c.name)})" for c in cmds)


def names(items: Iterable[str]) -> str:
    return ", ".join(f"`{n}`" for n in sorted(items))


_COUNTERS = ("available", "limit", "total")


def field_names(items: Iterable[str]) -> str:
    """Response field names, with CloudStack's resource counters (``<r>available``, ``<r>limit``,
    ``<r>total``) folded into one group."""
    left = set(items)
    prefixes = {n.removesuffix("available") for n in left if n.endswith("available")}
    resources = sorted(r for r in prefixes if all(r + c in left for c in _COUNTERS))
    for r in resources:
        left -= {r + c for c in _COUNTERS}
    parts = [names(left)] if left else []
    if resources:
        parts.append(f"`<r>available`/`<r>limit`/`<r>total` for r in {', '.join(resources)}")
    return "; ".join(parts)


# -- coverage ---------------------------------------------------------------------------------


@dataclass
class Differences:
    """How one implemented command differs from its catalogue entry."""

    missing_params: list[str] = field(default_factory=list)
    extra_params: list[str] = field(default_factory=list)
    #: (param, catalogue says required, we say required)
    required: list[tuple[str, bool, bool]] = field(default_factory=list)
    #: (catalogue async, our async) when they differ
    is_async: tuple[bool, bool] | None = None
    missing_fields: list[str] = field(default_factory=list)
    #: (catalogue list key, ours) when they differ
    list_key: tuple[str, str] | None = None

    def __bool__(self) -> bool:
        return bool(self.missing_params or self.extra_params or self.required or self.is_async
                    or self.missing_fields or self.list_key)


def compare(cmd: type[Command], entry: Mapping[str, Any]) -> Differences:
    """The differences between a declaration and its catalogue entry.

    Parameter names are compared case-insensitively, as the server reads them. A catalogue response
    field that is the name of our response object counts as declared (the catalogue lists a few
    commands, such as listCapabilities, by their wrapping object).
    """
    ours = {name.lower(): p for name, p in cmd.params.items()}
    theirs = {name.lower() for name in entry.get("params", [])}
    # The catalogue names a required parameter by its Java field when that differs from the wire name,
    # always for a parameter called ``type`` (createAffinityGroup: affinityGroupType).
    required = {name.lower() if name.lower() in theirs else "type" for name in entry.get("required", [])}
    diff = Differences()
    diff.missing_params = sorted(theirs - set(ours))
    diff.extra_params = sorted(set(ours) - theirs - UNLISTED_CLOUDSTACK_PARAMS)
    diff.required = [(n, n in required, ours[n].required) for n in sorted(theirs & set(ours))
                     if (n in required) != ours[n].required]
    if bool(entry.get("async")) != cmd.is_async:
        diff.is_async = (bool(entry.get("async")), cmd.is_async)
    declared = {f.name for f in cmd.response.all_fields()}
    if cmd.response.object_name:
        declared.add(cmd.response.object_name)
    diff.missing_fields = sorted(set(entry.get("response", [])) - declared)
    listkey = entry.get("listkey")
    # The catalogue's list keys come lower-cased from listApis; CloudStack's wire keys keep their case
    # (listAffinityGroupTypes answers ``affinityGroupType``).
    if cmd.is_list and listkey and listkey != cmd.response.object_name.lower():
        diff.list_key = (listkey, cmd.response.object_name)
    return diff


def coverage(catalog: Mapping[str, Mapping[str, Any]], cmds: list[type[Command]] | None = None) -> str:
    """The coverage document, in Markdown."""
    cmds = commands() if cmds is None else cmds
    ours = {c.name: c for c in cmds}
    implemented = sorted(n for n in ours if n in catalog)
    extensions = sorted(n for n in ours if n not in catalog)
    diffs = {n: compare(ours[n], catalog[n]) for n in implemented}
    by_service: dict[str, list[str]] = defaultdict(list)
    for name, entry in catalog.items():
        by_service[entry.get("service") or "(none)"].append(name)
    total = len(catalog)
    pct = 100.0 * len(implemented) / total if total else 0.0

    out: list[str] = []
    w = out.append
    w("# CloudStack API coverage")
    w("")
    w("Generated by `overcast docs coverage --catalog cloudstack-api-catalog.json` from the command")
    release = ".".join(CLOUDSTACK_VERSION.split(".")[:2])
    w(f"declarations and the catalogue of CloudStack {release}'s {total} commands. Do not edit by hand.")
    w("")
    w(f"**Implemented: {len(implemented)} of {total} CloudStack commands ({pct:.1f}%)**, with"
      f" {sum(1 for d in diffs.values() if d)} of them differing from the catalogue in some way (see"
      f" [Differences](#differences)), plus {len(extensions)} Overcast"
      f" extension{'s' if len(extensions) != 1 else ''} (see [Extensions](#overcast-extensions)).")
    w("")
    w("## By service")
    w("")
    w("| service | implemented | commands |")
    w("|---|---:|---:|")
    for service in sorted(by_service):
        done = sum(1 for n in by_service[service] if n in ours)
        w(f"| [{service}](#{anchor(service)}) | {done} | {len(by_service[service])} |")
    w(f"| **total** | **{len(implemented)}** | **{total}** |")
    w("")

    w("## Differences")
    w("")
    w("For each implemented command that differs from its catalogue entry: catalogue parameters we do")
    w("not accept, parameters we accept that the catalogue does not list, parameters whose `required`")
    w("flag differs, an `isasync` mismatch, a list key mismatch, and catalogue response fields we do not")
    w("declare. Parameter names compare case-insensitively (the server reads them so); `customjobid`,")
    w("which CloudStack accepts on every async command but the catalogue leaves out, is not counted.")
    w("")
    differing = [n for n in implemented if diffs[n]]
    if not differing:
        w("None: every implemented command matches its catalogue entry.")
        w("")
    else:
        w("| command | params not accepted | params not in catalogue | required differs | async differs"
          " | response fields not declared |")
        w("|---|---:|---:|---:|---|---:|")
        for n in differing:
            d = diffs[n]
            async_text = "" if d.is_async is None else f"catalogue {'async' if d.is_async[0] else 'sync'}"
            w(f"| [{n}](#{anchor(n)}) | {len(d.missing_params) or ''} | {len(d.extra_params) or ''} |"
              f" {len(d.required) or ''} | {async_text} | {len(d.missing_fields) or ''} |")
        w("")
        described: dict[tuple[str, ...], str] = {}
        for n in differing:
            d = diffs[n]
            w(f"### {n}")
            w("")
            if d.missing_params:
                req = {r.lower() for r in catalog[n].get("required", [])}
                listed = ", ".join(f"`{p}`" + (" (required)" if p in req else "") for p in d.missing_params)
                w(f"- params not accepted ({len(d.missing_params)}): {listed}")
            if d.extra_params:
                w(f"- params not in catalogue ({len(d.extra_params)}): {names(d.extra_params)}")
            if d.required:
                text = ", ".join(f"`{p}` (catalogue {'required' if c else 'optional'}, ours"
                                 f" {'required' if o else 'optional'})" for p, c, o in d.required)
                w(f"- required differs ({len(d.required)}): {text}")
            if d.is_async is not None:
                w(f"- async differs: catalogue {'async' if d.is_async[0] else 'sync'},"
                  f" ours {'async' if d.is_async[1] else 'sync'}")
            if d.list_key is not None:
                w(f"- list key differs: catalogue `{d.list_key[0]}`, ours `{d.list_key[1]}`")
            if d.missing_fields:
                key = tuple(d.missing_fields)
                if key in described:
                    listed = f"the same as [{described[key]}](#{anchor(described[key])})"
                else:
                    described[key] = n
                    listed = field_names(d.missing_fields)
                w(f"- response fields not declared ({len(d.missing_fields)}): {listed}")
            w("")

    w("## Commands by service")
    w("")
    for service in sorted(by_service):
        members = sorted(by_service[service])
        done = sum(1 for n in members if n in ours)
        w(f"### {service}")
        w("")
        w(f"{done} of {len(members)} implemented.")
        w("")
        w("| command | async | implemented |")
        w("|---|---|---|")
        for n in members:
            if n not in ours:
                mark = ""
            elif diffs[n]:
                mark = f"yes ([differs](#{anchor(n)}))"
            else:
                mark = "yes"
            w(f"| {n} | {'yes' if catalog[n].get('async') else ''} | {mark} |")
        w("")

    w("## Overcast extensions")
    w("")
    if not extensions:
        w("None yet: every command Overcast implements is a CloudStack command.")
        w("")
    else:
        w("Commands Overcast implements that CloudStack's catalogue does not have.")
        w("")
        w("| command | area | async | description |")
        w("|---|---|---|---|")
        for n in extensions:
            c = ours[n]
            w(f"| {n} | {area_of(c)} | {'yes' if c.is_async else ''} | {cell(c.description)} |")
        w("")
    return "\n".join(out).rstrip("\n") + "\n"


# -- reference --------------------------------------------------------------------------------


def param_type(p: Param) -> str:
    if p.type is ParamType.LIST:
        return f"list of {p.item_type.value}"
    return p.type.value


def param_description(p: Param) -> str:
    text = p.description.strip()
    notes = []
    if p.choices and not all(c in text for c in p.choices):
        notes.append("One of: " + ", ".join(p.choices) + ".")
    if p.min_value is not None and p.max_value is not None:
        notes.append(f"From {p.min_value} to {p.max_value}.")
    elif p.min_value is not None:
        notes.append(f"At least {p.min_value}.")
    elif p.max_value is not None:
        notes.append(f"At most {p.max_value}.")
    if p.default is not None and isinstance(p.default, str | int | float | bool):
        default = str(p.default).lower() if isinstance(p.default, bool) else p.default
        notes.append(f"Default: {default}.")
    if p.authorized is not None:
        notes.append(f"Only for {roles_text(p.authorized)}.")
    if p.sensitive:
        notes.append("Masked in logs.")
    return cell(sentences(text, *notes))


def response_objects(cmds: Iterable[type[Command]]) -> list[type[ResponseObject]]:
    """Response objects of these commands and the objects nested in them, sorted by class name."""
    seen: dict[str, type[ResponseObject]] = {}
    todo = [c.response for c in cmds]
    while todo:
        obj = todo.pop()
        if obj.__name__ in seen:
            continue
        seen[obj.__name__] = obj
        todo.extend(f.response for f in obj.all_fields() if f.response is not None)
    return [seen[k] for k in sorted(seen)]


def response_text(cmd: type[Command]) -> str:
    obj = cmd.response
    link = f"[{obj.__name__}](#{anchor(obj.__name__)})"
    if cmd.is_list and obj.object_name:
        body = f"`count` and a list `{obj.object_name}` of {link}"
    elif obj.object_name:
        body = f"{link}, object name `{obj.object_name}`"
    else:
        body = link
    if cmd.is_async:
        first = "`jobid` and the new entity's `id`" if cmd.creates_entity else "`jobid`"
        return f"{first} at once, then in the job result: {body}"
    return f"`{cmd.response_key}` with {body}" if cmd.is_list else body


def reference(cmds: list[type[Command]] | None = None) -> str:
    """The API reference, in Markdown: every declared command, its response objects, the settings."""
    from overcast.config.globals import SETTINGS

    cmds = commands() if cmds is None else cmds
    by_area: dict[str, list[type[Command]]] = defaultdict(list)
    for c in cmds:
        by_area[area_of(c)].append(c)
    areas = sorted(by_area)

    out: list[str] = []
    w = out.append
    w("# Overcast API reference")
    w("")
    w("Generated by `overcast docs reference` from the command declarations. Do not edit by hand.")
    w("")
    w(f"{len(cmds)} commands in {len(areas)} areas. Every command is called as CloudStack's are:"
      " `GET` or form `POST` to `/client/api` with `command=<name>`, signed with an API key or sent"
      " with a login session. \"Roles allowed by default\" apply when no role permission rule of the"
      " caller's role matches the command (see the user guide, *Roles and access*).")
    w("")
    w("- Areas: " + ", ".join(f"[{a}](#{anchor(a)})" for a in areas))
    w("- [Response objects](#response-objects)")
    w("- [Global settings](#global-settings)")
    w("")
    for a in areas:
        members = sorted(by_area[a], key=lambda c: c.name)
        w(f"## {a}")
        w("")
        w(f"Module `{members[0].__module__}`: {links(members)}")
        w("")
        for c in members:
            w(f"### {c.name}")
            w("")
            w(cell(c.description))
            w("")
            facts = ["async" if c.is_async else "sync"]
            if c.since:
                facts.append(f"since {c.since}")
            facts.append(f"roles allowed by default: {roles_text(c.roles)}")
            if not c.requires_auth:
                facts.append("no credentials needed")
            w("- " + "; ".join(facts))
            w(f"- Response: {response_text(c)}")
            w("")
            params = sorted(c.params.values(), key=lambda p: (not p.required, p.name))
            if params:
                w("| parameter | type | required | length | since | description |")
                w("|---|---|---|---:|---|---|")
                for p in params:
                    w(f"| {p.name} | {param_type(p)} | {'yes' if p.required else ''} | {p.length} |"
                      f" {p.since or ''} | {param_description(p)} |")
            else:
                w("No parameters.")
            w("")

    w("## Response objects")
    w("")
    w("Every object also carries `jobid` and `jobstatus` when an async job is acting on it.")
    w("")
    objects = response_objects(cmds)
    for obj in objects:
        w(f"### {obj.__name__}")
        w("")
        users = [c for c in cmds if c.response is obj]
        parents = [o.__name__ for o in objects if any(f.response is obj for f in o.all_fields())]
        if obj.object_name:
            where = f"Object name `{obj.object_name}`."
        elif users:
            where = "Fields directly under the command's response key (or in the job result)."
        else:
            where = ""
        nested = ", ".join(f"[{n}](#{anchor(n)})" for n in parents)
        w(sentences(where, f"Used by: {links(users)}." if users else "",
                    f"Nested in: {nested}." if parents else ""))
        w("")
        w("| field | type | description |")
        w("|---|---|---|")
        for f in obj.fields:
            ftype = f.type
            if f.response is not None:
                ftype += f" of [{f.response.__name__}](#{anchor(f.response.__name__)})"
            only = f"Only for {roles_text(f.authorized)}." if f.authorized is not None else ""
            w(f"| {f.name} | {ftype} | {cell(sentences(f.description, only))} |")
        w("")

    w("## Global settings")
    w("")
    w("CloudStack-style settings stored in the database (generated from"
      " `overcast.config.globals.SETTINGS`): read them with `listConfigurations`, change them with"
      " `updateConfiguration` and restore the default with `resetConfiguration`. `scopes` lists where a"
      " value can be set; a value set for one account or domain (`accountid=` or `domainid=`) wins over"
      " the global value there. `dynamic` is what listConfigurations reports as `isdynamic`.")
    w("")
    w("| name | type | default | scopes | dynamic | category | description |")
    w("|---|---|---|---|---|---|---|")
    for s in sorted(SETTINGS.values(), key=lambda s: s.name):
        default = "(empty)" if s.default == "" else ("(none)" if s.default is None else f"`{s.default}`")
        scopes = ", ".join(("global", *s.scopes))
        desc = sentences(s.description, f"Minimum {s.min_value:g}." if s.min_value is not None else "")
        w(f"| {s.name} | {s.type} | {default} | {scopes} | {'yes' if s.is_dynamic else 'no'} |"
          f" {s.category} | {cell(desc)} |")
    return "\n".join(out).rstrip("\n") + "\n"


__all__ = ["Differences", "compare", "coverage", "load_catalog", "reference"]


if __name__ == "__main__":  # pragma: no cover
    from overcast.cli.main import docs

    docs(prog_name="python -m overcast.docs")
