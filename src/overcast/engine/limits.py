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
from sqlalchemy.orm import Session

from overcast.access.roles import AccountType, RoleType
from overcast.db.models import Account, Domain, ResourceCount, ResourceLimit, Role, resource_owner_key
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
        self._root_admins: dict[int, bool] = {}

    # -- limits --------------------------------------------------------------------------------
    def is_root_admin(self, account: Account) -> bool:
        """CloudStack places no limits on root admin accounts (domain admins get the defaults)."""
        known = self._root_admins.get(account.id)
        if known is None:
            role_type = None
            if account.role_id is not None:
                role_type = self.s.scalar(select(Role.role_type).where(Role.id == account.role_id))
            if role_type is not None:
                known = role_type == RoleType.ADMIN.value
            else:
                known = account.account_type in (AccountType.ADMIN, AccountType.READ_ONLY_ADMIN)
            self._root_admins[account.id] = known
        return known

    def limit_for_account(self, account: Account, rtype: ResourceType) -> int:
        if self.is_root_admin(account):
            return -1
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
            ResourceLimit.resource_type == rtype.name,
            ResourceLimit.owner_key == resource_owner_key(account_id, domain_id)))

    def set_limit(self, rtype: ResourceType, value: int, *, account_id: int | None = None,
                  domain_id: int | None = None) -> None:
        self.s.flush()
        self._upsert(ResourceLimit, {"resource_type": rtype.name, "account_id": account_id, "domain_id": domain_id,
                                     "owner_key": resource_owner_key(account_id, domain_id), "max": value},
                     {"max": value})
        for obj in list(self.s.identity_map.values()):
            if isinstance(obj, ResourceLimit):
                self.s.expire(obj)  # loaded before the upsert: read the new max again

    # -- counts --------------------------------------------------------------------------------
    def _ensure(self, rtype: ResourceType, *, account_id: int | None = None, domain_id: int | None = None) -> None:
        stmt = select(ResourceCount.id).where(
            ResourceCount.resource_type == rtype.name,
            ResourceCount.owner_key == resource_owner_key(account_id, domain_id))
        if self.s.scalar(stmt) is not None:
            return
        # Created at most once whatever the concurrency: the (type, owner) key is unique, and a row a
        # concurrent transaction inserts first is kept. No savepoint: on MariaDB a deadlock between two
        # inserters ends the transaction, and must reach the retry loop as the deadlock it is.
        self._upsert(ResourceCount, {"resource_type": rtype.name, "account_id": account_id, "domain_id": domain_id,
                                     "owner_key": resource_owner_key(account_id, domain_id), "count": 0}, {})

    def _upsert(self, model: type[ResourceCount | ResourceLimit], values: dict[str, object],
                updates: dict[str, object]) -> None:
        """INSERT, or on a clash of (resource_type, owner_key) UPDATE ``updates`` (nothing when empty)."""
        dialect = self.s.get_bind().dialect.name
        if dialect in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import insert as mysql_insert

            ins = mysql_insert(model).values(**values)
            self.s.execute(ins.on_duplicate_key_update(**(updates or {"owner_key": ins.inserted.owner_key})))
            return
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(model).values(**values)
        keys = ["resource_type", "owner_key"]
        self.s.execute(ins.on_conflict_do_update(index_elements=keys, set_=updates) if updates
                       else ins.on_conflict_do_nothing(index_elements=keys))

    def count(self, rtype: ResourceType, *, account_id: int | None = None, domain_id: int | None = None) -> int:
        value = self.s.scalar(select(ResourceCount.count).where(
            ResourceCount.resource_type == rtype.name,
            ResourceCount.owner_key == resource_owner_key(account_id, domain_id)))
        return int(value or 0)

    def _bump(self, rtype: ResourceType, amount: int, limit: int, *, account_id: int | None = None,
              domain_id: int | None = None) -> bool:
        self._ensure(rtype, account_id=account_id, domain_id=domain_id)
        stmt = update(ResourceCount).where(
            ResourceCount.resource_type == rtype.name,
            ResourceCount.owner_key == resource_owner_key(account_id, domain_id))
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
        domains = self.s.scalars(select(Domain).where(Domain.path.in_(path_prefixes), Domain.removed.is_(None)))
        return sorted(domains, key=lambda d: len(d.path))  # ROOT first: one lock order for every caller

    def consume(self, account: Account, amounts: Iterable[tuple[ResourceType, int]]) -> None:
        """Add ``amounts`` to the account's and its domains' counts, or raise AccountLimitExceeded
        (the caller's transaction must then roll back). Negative amounts release and never fail."""
        domains = self.domains_of(account)
        # Rows are locked in one order by every transaction (type, then account, then domains from ROOT
        # down), so concurrent consumers queue instead of deadlocking.
        for rtype, amount in sorted(amounts, key=lambda a: int(a[0])):
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
