"""The server starts and answers a signed call through the ``cs`` client."""

from __future__ import annotations

from cs import CloudStack


def test_list_accounts_as_admin(admin: CloudStack) -> None:
    accounts = admin.listAccounts(listall=True)["account"]
    assert {"admin", "system"} <= {a["name"] for a in accounts}
