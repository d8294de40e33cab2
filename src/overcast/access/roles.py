"""Role types and account types, as CloudStack numbers and names them."""

from __future__ import annotations

import enum


class RoleType(enum.StrEnum):
    """CloudStack's RoleType; the value is the wire name (``roletype`` in responses)."""

    ADMIN = "Admin"
    RESOURCE_ADMIN = "ResourceAdmin"
    DOMAIN_ADMIN = "DomainAdmin"
    USER = "User"

    @property
    def rank(self) -> int:
        """Higher is more privileged; an account may only act on accounts of lower or equal rank."""
        return _RANK[self]


_RANK = {RoleType.USER: 0, RoleType.DOMAIN_ADMIN: 1, RoleType.RESOURCE_ADMIN: 2, RoleType.ADMIN: 3}


class AccountType(enum.IntEnum):
    """CloudStack's Account.Type ordinal (``accounttype`` on the wire)."""

    NORMAL = 0
    ADMIN = 1
    DOMAIN_ADMIN = 2
    RESOURCE_DOMAIN_ADMIN = 3
    READ_ONLY_ADMIN = 4
    PROJECT = 5

    @property
    def default_role_type(self) -> RoleType:
        return {
            AccountType.NORMAL: RoleType.USER,
            AccountType.ADMIN: RoleType.ADMIN,
            AccountType.DOMAIN_ADMIN: RoleType.DOMAIN_ADMIN,
            AccountType.RESOURCE_DOMAIN_ADMIN: RoleType.RESOURCE_ADMIN,
            AccountType.READ_ONLY_ADMIN: RoleType.ADMIN,
            AccountType.PROJECT: RoleType.USER,
        }[self]

    @classmethod
    def for_role_type(cls, role_type: RoleType) -> AccountType:
        return {
            RoleType.USER: cls.NORMAL,
            RoleType.ADMIN: cls.ADMIN,
            RoleType.DOMAIN_ADMIN: cls.DOMAIN_ADMIN,
            RoleType.RESOURCE_ADMIN: cls.RESOURCE_DOMAIN_ADMIN,
        }[role_type]


#: Shorthand sets for command declarations.
ALL_ROLES = frozenset(RoleType)
ADMINS = frozenset({RoleType.ADMIN, RoleType.RESOURCE_ADMIN, RoleType.DOMAIN_ADMIN})
ROOT_ADMIN = frozenset({RoleType.ADMIN})
