"""Who is calling: the user, its account, domain and role, resolved once per request."""

from __future__ import annotations

from dataclasses import dataclass

from overcast.access.roles import AccountType, RoleType


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: int
    user_uuid: str
    username: str
    account_id: int
    account_uuid: str
    account_name: str
    account_type: int
    role_id: int | None
    role_type: RoleType
    domain_id: int
    domain_uuid: str
    domain_name: str
    #: Internal path ("/" for ROOT, "/a/b/" below).
    domain_path: str

    @property
    def is_root_admin(self) -> bool:
        return self.role_type is RoleType.ADMIN

    @property
    def is_domain_admin(self) -> bool:
        return self.role_type in (RoleType.DOMAIN_ADMIN, RoleType.RESOURCE_ADMIN)

    @property
    def is_admin(self) -> bool:
        return self.role_type is not RoleType.USER

    @property
    def is_normal_user(self) -> bool:
        return self.role_type is RoleType.USER or self.account_type == AccountType.PROJECT
