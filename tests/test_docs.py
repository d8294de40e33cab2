"""The generated documents are current, and every declaration is documented and named as CloudStack's.

A declaration change without regenerating the documents fails here; regenerate with::

    .venv/bin/overcast docs reference > docs/api-reference.md
    .venv/bin/overcast docs coverage --catalog ../shared/reference/cloudstack-api-catalog.json \\
        > docs/api-coverage.md
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from overcast.api.declare import Command
from overcast.cli.main import main
from overcast.docs import commands, coverage, load_catalog, reference

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CATALOG = ROOT.parent / "shared" / "reference" / "cloudstack-api-catalog.json"

#: Commands allowed to differ from the catalogue in name case or async flag, with the reason. None so
#: far: clients generated from listApis (CloudMonkey, Marvin, the Go SDK) depend on both.
CATALOGUE_EXCEPTIONS: dict[str, str] = {}


def catalog() -> dict[str, dict[str, Any]]:
    if not CATALOG.exists():
        pytest.skip(f"no CloudStack catalogue at {CATALOG}")
    return load_catalog(CATALOG)


def assert_current(path: Path, fresh: str, how: str) -> None:
    committed = path.read_text(encoding="utf-8") if path.exists() else ""
    if committed != fresh:
        diff = difflib.unified_diff(committed.splitlines(), fresh.splitlines(), "committed", "generated",
                                    lineterm="", n=1)
        shown = "\n".join(list(diff)[:60])
        pytest.fail(f"{path.relative_to(ROOT)} is out of date; regenerate it with `{how}`\n{shown}")


def test_reference_is_current() -> None:
    assert_current(DOCS / "api-reference.md", reference(),
                   "overcast docs reference > docs/api-reference.md")


def test_coverage_is_current() -> None:
    assert_current(DOCS / "api-coverage.md", coverage(catalog()),
                   "overcast docs coverage --catalog ../shared/reference/cloudstack-api-catalog.json"
                   " > docs/api-coverage.md")


def test_cli_prints_the_same_documents() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["docs", "reference"])
    assert result.exit_code == 0, result.output
    assert result.output == reference()
    if CATALOG.exists():
        result = runner.invoke(main, ["docs", "coverage", "--catalog", str(CATALOG)])
        assert result.exit_code == 0, result.output
        assert result.output == coverage(load_catalog(CATALOG))


def test_coverage_counts_implemented_commands() -> None:
    cat = catalog()
    text = coverage(cat)
    implemented = sum(1 for c in commands() if c.name in cat)
    assert f"**Implemented: {implemented} of {len(cat)} CloudStack commands" in text


def test_every_command_and_param_is_described() -> None:
    undocumented = []
    for cmd in commands():
        if not cmd.description.strip():
            undocumented.append(cmd.name)
        undocumented += [f"{cmd.name}.{p.name}" for p in cmd.params.values() if not p.description.strip()]
    assert not undocumented, f"missing descriptions: {', '.join(undocumented)}"


def _catalogue_mismatches(cmd: type[Command], cat: dict[str, dict[str, Any]], by_lower: dict[str, str]) -> list[str]:
    name = by_lower.get(cmd.name.lower())
    if name is None:
        return []  # an Overcast extension
    problems = []
    if name != cmd.name:
        problems.append(f"{cmd.name}: CloudStack names it {name}")
    if bool(cat[name]["async"]) != cmd.is_async:
        problems.append(f"{cmd.name}: CloudStack's is {'async' if cat[name]['async'] else 'sync'}")
    return problems


def test_catalogue_commands_keep_their_name_and_async_flag() -> None:
    cat = catalog()
    by_lower = {n.lower(): n for n in cat}
    problems = [p for cmd in commands() if cmd.name not in CATALOGUE_EXCEPTIONS
                for p in _catalogue_mismatches(cmd, cat, by_lower)]
    assert not problems, "; ".join(problems)


def test_catalogue_is_the_expected_shape() -> None:
    cat = catalog()
    assert len(cat) == 828
    entry = cat["createDomain"]
    assert set(entry) >= {"async", "listkey", "params", "required", "response", "service"}
    json.dumps(entry)  # plain data
