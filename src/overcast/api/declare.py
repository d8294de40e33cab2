"""The command registry: one declaration per API command.

A command is a class with :class:`Param` attributes and an ``execute`` method, registered with
:func:`api_command`. The declaration drives everything else: request parsing and validation
(``overcast.api.params``), UUID-to-entity resolution and access checks, role checks, ``listApis``,
serialization, the job wrapper for async commands, and the docs.

Usage::

    @api_command("createDomain", response=DomainResponse, roles=ADMINS,
                 description="Creates a domain")
    class CreateDomain(Command):
        name = Param(STRING, required=True, description="creates domain with this name")
        parent = Param(UUID, "parentdomainid", entity=Domain, acl=Access.OPERATE,
                       description="assigns new domain a parent domain by domain ID of the parent")

        def execute(self, ctx: CallContext) -> Result:
            return ctx.services.domains.create(ctx.caller, self.name, parent=self.parent)
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from overcast.access.roles import ALL_ROLES, RoleType
from overcast.errors import InternalError

if TYPE_CHECKING:
    from overcast.api.context import CallContext


class ParamType(enum.StrEnum):
    """CloudStack's CommandType; the value is what listApis reports as ``type``."""

    STRING = "string"
    UUID = "uuid"
    BOOLEAN = "boolean"
    INTEGER = "integer"
    LONG = "long"
    SHORT = "short"
    LIST = "list"
    MAP = "map"
    DATE = "date"
    TZDATE = "tzdate"
    FLOAT = "float"
    DOUBLE = "double"
    OBJECT = "object"


STRING, UUID, BOOLEAN, INTEGER, LONG, SHORT, LIST, MAP, DATE, TZDATE, FLOAT, DOUBLE, OBJECT = (
    ParamType.STRING, ParamType.UUID, ParamType.BOOLEAN, ParamType.INTEGER, ParamType.LONG,
    ParamType.SHORT, ParamType.LIST, ParamType.MAP, ParamType.DATE, ParamType.TZDATE,
    ParamType.FLOAT, ParamType.DOUBLE, ParamType.OBJECT,
)  # fmt: skip


class Access(enum.Enum):
    """What the caller means to do with an entity named by a parameter (CloudStack's AccessType)."""

    LIST = "ListEntry"  # read it
    USE = "UseEntry"  # use it in a new resource (a template, an offering)
    OPERATE = "OperateEntry"  # change or delete it


@dataclass(frozen=True, slots=True)
class Param:
    """One request parameter of a command.

    ``name`` is the wire name (lower case); it defaults to the attribute name without underscores.
    A UUID parameter with ``entity`` set is resolved to the row (431 if no such row), and with ``acl``
    set the caller's access to it is checked. A LIST of UUIDs with ``entity`` resolves each item.
    """

    type: ParamType
    name: str = ""
    required: bool = False
    description: str = ""
    length: int = 255
    since: str | None = None
    entity: type[Any] | None = None
    acl: Access | None = None
    #: When set, the parameter is ignored for callers of other role types (and hidden from listApis).
    authorized: frozenset[RoleType] | None = None
    #: Masked in logs (passwords, secrets, user data).
    sensitive: bool = False
    #: For LIST parameters: the type of each item.
    item_type: ParamType = ParamType.STRING
    default: Any = None
    #: Inclusive bounds for numbers.
    min_value: int | None = None
    max_value: int | None = None
    #: Accepted values (compared case-insensitively) for strings.
    choices: tuple[str, ...] | None = None
    #: API names that return the referenced entity; listApis ``related``.
    related: tuple[str, ...] = ()
    #: A UUID parameter that takes CloudStack's ``-1`` ("all zones", "all projects"); elsewhere ``-1`` is
    #: refused like any unknown id. Set through ``Command.all_marker``; ``projectid`` always takes it.
    all_marker: bool = False
    #: An Overcast addition to a CloudStack command (not in CloudStack's catalogue of it).
    extension: bool = False
    attr: str = ""

    def named(self, attr: str) -> Param:
        return dataclasses.replace(self, attr=attr, name=(self.name or attr.replace("_", "")).lower())


@dataclass(frozen=True, slots=True)
class Field:
    """One response field, for listApis and the docs."""

    name: str
    type: str = "string"
    description: str = ""
    #: Nested response object, for fields that hold one (or a list of them).
    response: type[ResponseObject] | None = None
    #: When set, only callers of these role types see it.
    authorized: frozenset[RoleType] | None = None
    #: An Overcast addition to a CloudStack response object (not in CloudStack's catalogue of it).
    extension: bool = False


class ResponseObject:
    """A CloudStack response object: its ``object_name`` (the list or object key) and fields.

    Subclasses build wire dicts in ``of`` (a plain function from model to dict: fast, explicit); the
    golden tests check that every key they emit is declared here with the declared JSON type.
    """

    object_name: ClassVar[str] = ""
    fields: ClassVar[tuple[Field, ...]] = ()
    #: Fields every CloudStack response object carries (BaseResponse).
    base_fields: ClassVar[tuple[Field, ...]] = (
        Field("jobid", "string", "the UUID of the latest async job acting on this object"),
        Field("jobstatus", "integer", "the current status of the latest async job acting on this object"),
    )

    @classmethod
    def all_fields(cls) -> tuple[Field, ...]:
        return cls.fields + cls.base_fields


class SuccessResponse(ResponseObject):
    """The flat ``{"success": true, "displaytext": ...}`` answer of delete-style commands."""

    fields = (
        Field("success", "boolean", "true if operation is executed successfully"),
        Field("displaytext", "string", "any text associated with the success or failure"),
    )


class AsyncJobHandle(ResponseObject):
    fields = (Field("jobid", "string", "the ID of the async job"),)


# -- results a command returns ----------------------------------------------------------------


@dataclass(slots=True)
class ListResult:
    """A page of items (already wire dicts) and the total count of matches."""

    items: list[dict[str, Any]]
    count: int


@dataclass(slots=True)
class ObjectResult:
    """One object, serialized under the response's object name."""

    item: dict[str, Any]


@dataclass(slots=True)
class Success:
    success: bool = True
    display_text: str | None = None


@dataclass(slots=True)
class FlatResult:
    """Fields directly under the ``<command>response`` key (login, capabilities-style answers)."""

    fields: dict[str, Any]


@dataclass(slots=True)
class Park:
    """An async command's work is done but its job waits for ``key`` (``"vm-ready:<uuid>"``) until
    ``until``: the job stays pending with no worker holding it, and the command's ``resume()`` hook
    gives the result when the key is resumed or the deadline passes."""

    key: str
    until: datetime


Result = ListResult | ObjectResult | Success | FlatResult


# -- commands ---------------------------------------------------------------------------------


class Command:
    """Base class of every API command. Instances hold the parsed parameter values as attributes."""

    name: ClassVar[str]
    description: ClassVar[str]
    since: ClassVar[str | None]
    response: ClassVar[type[ResponseObject]]
    is_async: ClassVar[bool] = False
    #: True when the entity exists before the job runs: the first reply is ``{id, jobid}``.
    creates_entity: ClassVar[bool] = False
    #: Role types allowed by default when no role permission rule matches (CloudStack's authorized).
    roles: ClassVar[frozenset[RoleType]]
    params: ClassVar[dict[str, Param]]
    #: List commands get page/pagesize/keyword checks and paging.
    is_list: ClassVar[bool] = False
    #: Key of the top-level response when it is not ``lower(name) + "response"``.
    response_key: ClassVar[str]
    #: Action event type recorded for the command (async jobs record Scheduled/Started/Completed).
    event_type: ClassVar[str | None] = None
    #: An async job whose run was cut short may be run again from the start (a crash recovery rule).
    idempotent: ClassVar[bool] = False
    #: Module path of the command class as CloudStack names it in ``cmd`` of job responses.
    requires_auth: ClassVar[bool] = True
    #: Runs on a read-only session (no write lock on SQLite). Lists are read-only. On SQLite such a
    #: command signed with a key runs on the event loop (``inline_reads``): it must wait on nothing but
    #: the database (no driver or network call), or it holds up every other request meanwhile.
    read_only: ClassVar[bool] = False
    #: Wire names of the UUID parameters that accept ``-1`` meaning "all" (``zoneid`` of registerTemplate).
    all_marker: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, values: Mapping[str, Any]) -> None:
        for p in self.params.values():
            setattr(self, p.attr, values.get(p.attr, p.default))
        self.raw = values

    def execute(self, ctx: CallContext) -> Result:  # pragma: no cover - abstract
        raise NotImplementedError

    # Async commands: what the job acts on, for jobinstancetype/jobinstanceid and ordering.
    def instance(self) -> tuple[str | None, str | None]:
        """(instance type, entity uuid) the job acts on, for the job record and for ordering."""
        return None, None

    def event_description(self) -> str:
        return f"{self.name}"

    def precheck(self, ctx: CallContext) -> None:
        """Async commands: checks run before the job is queued (the caller's access to a resource named by
        a plain string rather than an ``entity`` parameter), so a refusal is answered at once."""

    def prepare(self, ctx: CallContext) -> str | None:
        """For ``creates_entity`` commands: create the entity before queueing; return its uuid."""
        return None

    def recover(self, ctx: CallContext) -> None:
        """Called when a non-idempotent job was interrupted by a crash: leave its resource consistent."""

    def resume(self, ctx: CallContext, how: str) -> Result:
        """The result of a job that ``execute()`` parked (returned :class:`Park`), once woken: ``how``
        is "ready" or "timeout"."""
        raise InternalError(f"{self.name} does not wait")


@dataclass
class Registry:
    commands: dict[str, type[Command]] = field(default_factory=dict)

    def add(self, cls: type[Command]) -> None:
        if cls.name in self.commands and self.commands[cls.name] is not cls:
            raise ValueError(f"command {cls.name} declared twice")
        self.commands[cls.name] = cls

    def get(self, name: str) -> type[Command] | None:
        return self.commands.get(name)

    def __iter__(self) -> Iterable[type[Command]]:  # type: ignore[override]
        return iter(sorted(self.commands.values(), key=lambda c: c.name))

    def __len__(self) -> int:
        return len(self.commands)


#: Commands declared in this process. Plug-ins add theirs through the ``overcast.api.commands``
#: entry-point group (loaded by :func:`overcast.api.commands.load_all`).
registry = Registry()


#: Parameters every list command takes (BaseListCmd).
LIST_PARAMS = {
    "keyword": Param(STRING, description="List by keyword"),
    "page": Param(INTEGER, description="The page number of the results", min_value=None),
    "page_size": Param(INTEGER, "pagesize", description="The number of results per page"),
}


def api_command(
    name: str,
    *,
    response: type[ResponseObject],
    description: str,
    roles: frozenset[RoleType] = ALL_ROLES,
    since: str | None = None,
    is_async: bool = False,
    creates_entity: bool = False,
    is_list: bool = False,
    response_key: str | None = None,
    event_type: str | None = None,
    idempotent: bool = False,
    requires_auth: bool = True,
    read_only: bool | None = None,
    reg: Registry | None = None,
) -> Callable[[type[Command]], type[Command]]:
    """Register a command class under its API name and collect its parameters."""

    def wrap(cls: type[Command]) -> type[Command]:
        params: dict[str, Param] = {}
        extra: dict[str, Param] = {}
        if is_list:
            extra.update(LIST_PARAMS)
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, Param):
                    extra[attr] = value
        for attr, p in extra.items():
            p = p.named(attr)
            if p.name in cls.all_marker or p.name == "projectid":
                p = dataclasses.replace(p, all_marker=True)
            params[p.name] = p
        if is_async:
            cj = Param(STRING, "customjobid", description=(
                "an optional field, in case you want to set a custom id to the job. If not provided the"
                " server will create a new uuid for the job"), since="4.17").named("custom_job_id")
            params.setdefault(cj.name, cj)
        for attr in list(extra):
            if isinstance(vars(cls).get(attr), Param):
                delattr(cls, attr)  # instances carry the values
        cls.name = name
        cls.description = description
        cls.since = since
        cls.response = response
        cls.roles = frozenset(roles)
        cls.is_async = is_async
        cls.creates_entity = creates_entity
        cls.is_list = is_list
        cls.response_key = response_key or name.lower() + "response"
        cls.event_type = event_type
        cls.idempotent = idempotent
        cls.requires_auth = requires_auth
        cls.read_only = (is_list and not is_async) if read_only is None else read_only
        cls.params = params
        (reg or registry).add(cls)
        return cls

    return wrap
