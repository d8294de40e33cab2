"""Errors the API reports, and their CloudStack codes.

Every error a client can see is a :class:`CloudError`. The class carries the codes, so the dispatcher
maps an exception to a response in one place, by walking the MRO::

    CloudError                      530 / 4250  (hidden from non-root-admins)
    ├── Unauthorized                401         (no cserrorcode, as CloudStack)
    ├── MethodNotAllowed            405
    ├── ApiLimitExceeded            429 / 4545
    ├── MalformedParameter          430 / 9999
    ├── ParamError                  431 / 9999  (missing / badly typed parameters)
    ├── InvalidParameterValue       431 / 4350
    ├── UnsupportedAction           432 / 9999
    ├── PermissionDenied            531 / 4365
    ├── AuthenticationFailed        531 / 4290
    ├── AccountLimitExceeded        532 / 4280
    ├── InsufficientCapacity        533 / 4325  (hidden from non-root-admins)
    ├── ResourceUnavailable         534 / 4380  (hidden from non-root-admins)
    ├── ResourceAllocation          535 / 4370
    ├── ResourceInUse               536 / 4375
    ├── NetworkRuleConflict         537 / 4360
    ├── ConcurrentOperation         530 / 4300  (another operation changed the resource first)
    ├── WaitTimedOut                530 / 4250  (a parked job's deadline passed: readytimeout)
    └── ServiceUnavailable          503 / 4250
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

#: What CloudStack tells non-root-admins instead of an internal error's text (BaseCmd.USER_ERROR_MESSAGE).
USER_ERROR_MESSAGE = "Internal error executing command, please contact your system administrator"


class CloudError(Exception):
    """Base of every error the API reports."""

    error_code: ClassVar[int] = 530
    cs_error_code: ClassVar[int | None] = 4250
    #: False: the text is replaced by USER_ERROR_MESSAGE for callers that are not root admins.
    expose_to_users: ClassVar[bool] = False

    def __init__(self, message: str, *, uuids: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.message = message
        #: (uuid, description) pairs, rendered as uuidList.
        self.uuids = list(uuids)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InternalError(CloudError):
    pass


class Unauthorized(CloudError):
    error_code, cs_error_code, expose_to_users = 401, None, True


class MethodNotAllowed(CloudError):
    error_code, cs_error_code, expose_to_users = 405, None, True


class ApiLimitExceeded(CloudError):
    error_code, cs_error_code, expose_to_users = 429, 4545, True


class MalformedParameter(CloudError):
    error_code, cs_error_code, expose_to_users = 430, 9999, True


class ParamError(CloudError):
    """A parameter is missing or cannot be converted (CloudStack's ServerApiException PARAM_ERROR)."""

    error_code, cs_error_code, expose_to_users = 431, 9999, True


class InvalidParameterValue(CloudError):
    error_code, cs_error_code, expose_to_users = 431, 4350, True


class UnsupportedAction(CloudError):
    error_code, cs_error_code, expose_to_users = 432, 9999, True


class PermissionDenied(CloudError):
    error_code, cs_error_code, expose_to_users = 531, 4365, True


class AuthenticationFailed(CloudError):
    error_code, cs_error_code, expose_to_users = 531, 4290, True


class AccountLimitExceeded(CloudError):
    error_code, cs_error_code, expose_to_users = 532, 4280, True


class InsufficientCapacity(CloudError):
    error_code, cs_error_code = 533, 4325


class ResourceUnavailable(CloudError):
    error_code, cs_error_code = 534, 4380


class ResourceAllocation(CloudError):
    error_code, cs_error_code, expose_to_users = 535, 4370, True


class ResourceInUse(CloudError):
    error_code, cs_error_code, expose_to_users = 536, 4375, True


class NetworkRuleConflict(CloudError):
    error_code, cs_error_code, expose_to_users = 537, 4360, True


class ConcurrentOperation(CloudError):
    error_code, cs_error_code, expose_to_users = 530, 4300, True


class ServiceUnavailable(CloudError):
    error_code, cs_error_code, expose_to_users = 503, 4250, True


class WaitTimedOut(CloudError):
    """What a job waited for did not happen in time (a guest that never reported ready)."""

    error_code, cs_error_code, expose_to_users = 530, 4250, True


__all__ = [
    "USER_ERROR_MESSAGE",
    "AccountLimitExceeded",
    "ApiLimitExceeded",
    "AuthenticationFailed",
    "CloudError",
    "ConcurrentOperation",
    "InsufficientCapacity",
    "InternalError",
    "InvalidParameterValue",
    "MalformedParameter",
    "MethodNotAllowed",
    "NetworkRuleConflict",
    "ParamError",
    "PermissionDenied",
    "ResourceAllocation",
    "ResourceInUse",
    "ResourceUnavailable",
    "ServiceUnavailable",
    "WaitTimedOut",
    "Unauthorized",
    "UnsupportedAction",
]
