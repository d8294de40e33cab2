"""Resource limits and counts per account and domain, enforced atomically.

A count changes only through ``UPDATE resource_count SET count = count + n WHERE ... AND count + n <=
limit``: the check and the change are one statement, so concurrent deploys can't together pass a
limit (the race of CVE-2025-69233). The account's count and every ancestor domain's count move in the
caller's transaction; if any refuses, the transaction rolls back and nothing moved.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from overcast.access.roles import AccountType
from overcast.db.models import Account, Domain, ResourceCount, ResourceLimit
from overcast.errors import AccountLimitExceeded


class ResourceType(enum.IntEnum):
    """CloudStack's Resource.ResourceType ordinals (``resourcetype`` in listResourceLimits)."""

    user_vm = 0
    public_ip = 1
    volume = 2
    snapshot = 3
    template = 4
    project = 5
    network = 6
    vpc = 7
    cpu = 8
    memory = 9
    primary_storage = 10
    secondary_storage = 11

    @property
    def wire_name(self) -> str:
        return self.name


#: Account and domain defaults (CloudStack's max.account.* / max.domain.* settings; -1 unlimited).
#: primary_storage and secondary_storage are in GiB.
ACCOUNT_DEFAULTS = {
    ResourceType.user_vm: 20, ResourceType.public_ip: 20, ResourceType.volume: 20, ResourceType.snapshot: 20,
    ResourceType.template: 20, ResourceType.project: 10, ResourceType.network: 20, ResourceType.vpc: 20,
    ResourceType.cpu: 40, ResourceType.memory: 40960, ResourceType.primary_storage: 200,
    ResourceType.secondary_storage: 400,
}  # fmt: skip
DOMAIN_DEFAULTS = {rt: -1 for rt in ResourceType}

GIB = 1024**3


class Limits:
    def __init__(self, session: Session) -> None:
        self.s = session

    # -- limits --------------------------------------------------------------------------------
    def limit_for_account(self, account: Account, rtype: ResourceType) -> int:
        if account.account_type in (AccountType.ADMIN, AccountType.DOMAIN_ADMIN, AccountType.RESOURCE_DOMAIN_ADMIN):
            row = self._limit_row(rtype, account_id=account.id)
            return row.max if row is not None else -1
        row = self._limit_row(rtype, account_id=account.id)
        return row.max if row is not None else ACCOUNT_DEFAULTS[rtype]

    def limit_for_domain(self, domain: Domain, rtype: ResourceType) -> int:
        if domain.parent_id is None:
            return -1  # ROOT is unlimited
        row = self._limit_row(rtype, domain_id=domain.id)
        return row.max if row is not None else DOMAIN_DEFAULTS[rtype]

    def _limit_row(self, rtype: ResourceType, *, account_id: int | None = None,
                   domain_id: int | None = None) -> ResourceLimit | None:
        return self.s.scalar(select(ResourceLimit).where(
            ResourceLimit.resource_type == rtype.name, ResourceLimit.account_id.is_(account_id)
            if account_id is None else ResourceLimit.account_id == account_id,
            ResourceLimit.domain_id.is_(None) if domain_id is None else ResourceLimit.domain_id == domain_id))

    def set_limit(self, rtype: ResourceType, value: int, *, account_id: int | None = None,
                  domain_id: int | None = None) -> None:
        row = self._limit_row(rtype, account_id=account_id, domain_id=domain_id)
        if row is None:
            self.s.add(ResourceLimit(resource_type=rtype.name, account_id=account_id, domain_id=domain_id, max=value))
        else:
            row.max = value
        self.s.flush()

    # -- counts --------------------------------------------------------------------------------
    def _ensure(self, rtype: ResourceType, *, account_id: int | None = None, domain_id: int | None = None) -> None:
        stmt = select(ResourceCount.id).where(
            ResourceCount.resource_type == rtype.name,
            ResourceCount.account_id.is_(None) if account_id is None else ResourceCount.account_id == account_id,
            ResourceCount.domain_id.is_(None) if domain_id is None else ResourceCount.domain_id == domain_id)
        if self.s.scalar(stmt) is not None:
            return
        try:
            with self.s.begin_nested():
                self.s.add(ResourceCount(resource_type=rtype.name, account_id=account_id, domain_id=domain_id,
                                         count=0))
        except IntegrityError:
            pass  # a concurrent transaction created it first

    def count(self, rtype: ResourceType, *, account_id: int | None = None, domain_id: int | None = None) -> int:
        value = self.s.scalar(select(ResourceCount.count).where(
            ResourceCount.resource_type == rtype.name,
            ResourceCount.account_id.is_(None) if account_id is None else ResourceCount.account_id == account_id,
            ResourceCount.domain_id.is_(None) if domain_id is None else ResourceCount.domain_id == domain_id))
        return int(value or 0)

    def _bump(self, rtype: ResourceType, amount: int, limit: int, *, account_id: int | None = None,
              domain_id: int | None = None) -> bool:
        self._ensure(rtype, account_id=account_id, domain_id=domain_id)
        stmt = update(ResourceCount).where(
            ResourceCount.resource_type == rtype.name,
            ResourceCount.account_id.is_(None) if account_id is None else ResourceCount.account_id == account_id,
            ResourceCount.domain_id.is_(None) if domain_id is None else ResourceCount.domain_id == domain_id)
        if amount > 0 and limit >= 0:
            stmt = stmt.where(ResourceCount.count + amount <= limit)
        result = self.s.execute(stmt.values(count=ResourceCount.count + amount).execution_options(
            synchronize_session=False))
        return bool(result.rowcount)

    def domains_of(self, account: Account) -> list[Domain]:
        domain = self.s.get(Domain, account.domain_id)
        assert domain is not None
        path_prefixes = ["/"]
        parts = [p for p in domain.path.split("/") if p]
        for i in range(len(parts)):
            path_prefixes.append("/" + "".join(p + "/" for p in parts[: i + 1]))
        return list(self.s.scalars(select(Domain).where(Domain.path.in_(path_prefixes), Domain.removed.is_(None))))

    def consume(self, account: Account, amounts: Iterable[tuple[ResourceType, int]]) -> None:
        """Add ``amounts`` to the account's and its domains' counts, or raise AccountLimitExceeded
        (the caller's transaction must then roll back). Negative amounts release and never fail."""
        domains = self.domains_of(account)
        for rtype, amount in amounts:
            if amount == 0:
                continue
            if not self._bump(rtype, amount, self._scaled(rtype, self.limit_for_account(account, rtype)),
                              account_id=account.id):
                raise AccountLimitExceeded(
                    f"Maximum number of resources of type '{rtype.name}' for account name={account.name} in"
                    f" domain id={self.s.get(Domain, account.domain_id).uuid} has been exceeded.")  # type: ignore[union-attr]
            for domain in domains:
                if not self._bump(rtype, amount, self._scaled(rtype, self.limit_for_domain(domain, rtype)),
                                  domain_id=domain.id):
                    raise AccountLimitExceeded(
                        f"Maximum number of resources of type '{rtype.name}' for domain id={domain.uuid} has"
                        " been exceeded.")

    @staticmethod
    def _scaled(rtype: ResourceType, limit: int) -> int:
        """Storage limits are set in GiB and counted in bytes."""
        if limit >= 0 and rtype in (ResourceType.primary_storage, ResourceType.secondary_storage):
            return limit * GIB
        return limit

    def release(self, account: Account, amounts: Iterable[tuple[ResourceType, int]]) -> None:
        self.consume(account, [(rt, -abs(n)) for rt, n in amounts])
