"""Request parameter decoding and binding rules (no server needed)."""

from __future__ import annotations

from datetime import datetime

import pytest

from overcast.api.params import RequestParams, details_map, parse_date
from overcast.errors import InvalidParameterValue, MalformedParameter, ParamError


def test_names_lowercased_first_value_wins_and_maps_decoded() -> None:
    req = RequestParams.decode([
        ("Command", "listAccounts"), ("ListAll", "true"), ("listall", "false"),
        ("details[0].cpuNumber", "2"), ("details[1].memory", "512"), ("Tags[0].key", "k"),
        ("tags[0].value", "v"),
    ])
    assert req.values == {"command": "listAccounts", "listall": "true"}
    assert req.maps["details"] == {0: {"cpuNumber": "2"}, 1: {"memory": "512"}}
    assert req.maps["tags"] == {0: {"key": "k", "value": "v"}}
    assert req.raw[1] == ("ListAll", "true")


@pytest.mark.parametrize("key", ["details[0]", "details[a].x", "details[0][1].x", "details]0[.x"])
def test_malformed_map_keys_are_430(key: str) -> None:
    with pytest.raises(MalformedParameter) as err:
        RequestParams.decode([(key, "1")])
    assert err.value.error_code == 430
    assert "parameter[index].field=XXX" in err.value.message


@pytest.mark.parametrize("value", ["a\x00b", "tab\there", "\x1b[31m", "del\x7f"])
def test_control_characters_refused(value: str) -> None:
    req = RequestParams.decode([("name", value)])
    with pytest.raises(ParamError) as err:
        req.check_characters()
    assert err.value.error_code == 431
    assert err.value.message.endswith("for parameter name")


def test_newlines_allowed() -> None:
    RequestParams.decode([("description", "line1\nline2\r\n")]).check_characters()


def test_details_map_accepts_every_client_encoding() -> None:
    assert details_map([{"a": "1", "b": "2"}]) == {"a": "1", "b": "2"}
    assert details_map([{"a": "1"}, {"b": "2"}]) == {"a": "1", "b": "2"}
    assert details_map([{"key": "a", "value": "1"}]) == {"a": "1"}
    assert details_map(None) == {}


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-01-02", datetime(2024, 1, 2)),
    ("2024-01-02 03:04:05", datetime(2024, 1, 2, 3, 4, 5)),
    ("2024-01-02T03:04:05+0000", datetime(2024, 1, 2, 3, 4, 5)),
    ("2024-01-02T05:04:05+0200", datetime(2024, 1, 2, 3, 4, 5)),
    ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5)),
])
def test_dates(text: str, expected: datetime) -> None:
    assert parse_date(text, "startdate") == expected


def test_bad_date_names_parameter() -> None:
    with pytest.raises(InvalidParameterValue, match="startdate"):
        parse_date("yesterday", "startdate")
