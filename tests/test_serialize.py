"""Envelopes: JSON and XML as CloudStack writes them."""

from __future__ import annotations

import json
from datetime import datetime
from xml.etree import ElementTree

from overcast.api.declare import FlatResult, ListResult, ObjectResult, Success
from overcast.api.serialize import body_of, cs_date, render


def test_list_count_first_and_empty_list_is_empty_object() -> None:
    body = body_of(ListResult([{"id": "a"}], 7), "account")
    assert list(body) == ["count", "account"]
    assert body_of(ListResult([], 0), "account") == {}
    assert body_of(ListResult([], 5), "account") == {"count": 5}  # page past the end


def test_nulls_omitted_empty_arrays_kept() -> None:
    payload, ctype = render("listaccountsresponse", body_of(ObjectResult(
        {"id": "x", "gone": None, "groups": [], "nested": {"a": None, "b": 1}}), "account"), "json")
    assert ctype == "application/json; charset=UTF-8"
    assert json.loads(payload) == {"listaccountsresponse": {"account": {"id": "x", "groups": [], "nested": {"b": 1}}}}


def test_success_and_flat_shapes() -> None:
    assert body_of(Success(), "x") == {"success": True}
    assert body_of(Success(display_text="done"), "x") == {"success": True, "displaytext": "done"}
    assert body_of(FlatResult({"jobid": "j"}), "x") == {"jobid": "j"}


def test_dates_have_numeric_offset() -> None:
    assert cs_date(datetime(2024, 1, 1, 0, 0, 0)) == "2024-01-01T00:00:00+0000"
    assert cs_date(None) is None


def test_xml_envelope() -> None:
    body = body_of(ListResult([{"id": "1", "name": "a&b", "user": [{"id": "u1"}, {"id": "u2"}],
                                "isdefault": True}], 1), "account")
    payload, ctype = render("listaccountsresponse", body, "xml")
    assert ctype == "text/xml; charset=UTF-8"
    root = ElementTree.fromstring(payload)
    assert root.tag == "listaccountsresponse"
    assert root.attrib["cloud-stack-version"].startswith("4.")
    assert root.findtext("count") == "1"
    account = root.find("account")
    assert account is not None
    assert account.findtext("name") == "a&b"
    assert account.findtext("isdefault") == "true"
    assert [u.findtext("id") for u in account.findall("user")] == ["u1", "u2"]


def test_xml_error_uuid_list() -> None:
    body = {"uuidList": [{"uuid": "abc", "uuidProperty": "accountId"}], "errorcode": 531, "errortext": "no"}
    root = ElementTree.fromstring(render("errorresponse", body, "xml")[0])
    assert root.find("uuidList/uuid").text == "abc"  # type: ignore[union-attr]
    assert root.findtext("errorcode") == "531"
