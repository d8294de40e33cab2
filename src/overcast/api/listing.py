"""Paging of list commands, done in SQL (BaseListCmd's rules)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select

from overcast.access.acl import resolve_owner_filters, scope_owned
from overcast.api.context import CallContext
from overcast.api.declare import BOOLEAN, STRING, UUID, Command, Param
from overcast.db.models import Domain
from overcast.errors import InvalidParameterValue, ParamError


def page_bounds(ctx: CallContext, page: int | None, page_size: int | None) -> tuple[int, int | None]:
    """(offset, limit) for ``page``/``pagesize``; limit None means unlimited (``pagesize=-1``)."""
    max_size = int(ctx.setting("default.page.size"))
    if page_size is not None and page_size == -1:
        if page is not None:
            raise InvalidParameterValue('"page" parameter is not allowed with "pagesize=-1"')
        return 0, None
    if page is not None and page_size is None:
        raise ParamError('"pagesize" parameter is required when "page" is specified')
    if page_size is not None and page is None:
        raise ParamError('"page" parameter is required when "pagesize" is specified')
    if page_size is None:
        return 0, max_size
    if page_size < 1:
        raise InvalidParameterValue(f"Page size must be a positive number, or -1 for all; got {page_size}")
    if page_size > max_size:
        raise InvalidParameterValue(f"Page size can't exceed max allowed page size value: {max_size}")
    assert page is not None
    return max(page - 1, 0) * page_size, page_size


def fetch_page(ctx: CallContext, stmt: Select[Any], cmd: Any) -> tuple[list[Any], int]:
    """Rows of one page of ``stmt`` and the total count of matches, in two queries."""
    offset, limit = page_bounds(ctx, getattr(cmd, "page", None), getattr(cmd, "page_size", None))
    paged = stmt.offset(offset)
    if limit is not None:
        paged = paged.limit(limit)
    return run_page(ctx, paged, stmt, offset, limit)


def run_page(ctx: CallContext, paged: Select[Any], stmt: Select[Any], offset: int, limit: int | None, *,
             entities: bool = True) -> tuple[list[Any], int]:
    """Rows of ``paged`` (``stmt`` at ``offset``/``limit``) and the count of ``stmt``'s matches, counted
    by a second query only when the page does not show them all. ``entities``: rows are the first
    entity of each row (``scalars``); else whole rows."""
    rows = list(ctx.session.scalars(paged)) if entities else list(ctx.session.execute(paged))
    return rows, page_total(ctx, stmt, len(rows), offset, limit)


def page_total(ctx: CallContext, stmt: Select[Any], shown: int, offset: int, limit: int | None) -> int:
    """How many rows ``stmt`` matches in all, when a page at ``offset``/``limit`` showed ``shown``:
    counted by a query only when the page does not show them all."""
    if offset == 0 and (limit is None or shown < limit):
        return shown
    total = ctx.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return int(total or 0)


def keyword_filter(keyword: str | None, *columns: Any) -> Any:
    """``keyword`` as CloudStack applies it: a case-insensitive substring of any of the columns."""
    if not keyword:
        return None
    pattern = f"%{keyword.lower().replace('%', '').replace('_', '')}%"
    clause = None
    for col in columns:
        c = func.lower(col).like(pattern)
        clause = c if clause is None else clause | c
    return clause


class OwnedList(Command):
    """A list command of tenant rows: CloudStack's ``account``/``domainid``/``isrecursive``/``listall``/
    ``projectid`` parameters, and :meth:`scoped` turning them into a scoped query (in SQL)."""

    account = Param(STRING, description="list resources by account. Must be used with the domainId parameter.")
    domain = Param(UUID, "domainid", entity=Domain, description="list only resources belonging to the domain"
                   " specified")
    is_recursive = Param(BOOLEAN, "isrecursive", description="defaults to false, but if true, lists all"
                         " resources from the parent specified by the domainId till leaves.")
    list_all = Param(BOOLEAN, "listall", description="If set to false, list only resources belonging to the"
                     " command's caller; if set to true - list resources that the caller is authorized to see."
                     " Default value is false")
    project = Param(UUID, "projectid", description="list objects by project; if projectid=-1 lists All VMs")

    def scoped(self, ctx: CallContext, model: type, *, by_id: bool = False) -> Any:
        """``select(model)`` of live rows the caller may see and asked for. ``by_id``: the caller names
        rows by id; an admin then finds any it may see, as CloudStack's list criteria do."""
        domain, account = resolve_owner_filters(ctx.acl, ctx.me, domain=self.domain, account_name=self.account)
        stmt = select(model).order_by(model.id)  # type: ignore[attr-defined]
        if hasattr(model, "removed"):  # soft-deleted kinds; the others' rows are gone when deleted
            stmt = stmt.where(model.removed.is_(None))
        return scope_owned(stmt, ctx.me,
                           account_col=model.account_id, domain_col=model.domain_id,  # type: ignore[attr-defined]
                           list_all=bool(self.list_all) or self.project == -1 or (by_id and ctx.me.is_admin),
                           is_recursive=bool(self.is_recursive), domain=domain, account=account)
