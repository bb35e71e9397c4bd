"""The admin's list of links: filters, statuses computed in SQL, cursor pages.

Listing is newest first, by ``(created_at, id)``, with an opaque cursor for the next page
(constant cost at any depth) and a count that stops at :data:`COUNT_CAP` (``total_exact`` says
whether it did). ``offset`` still works, at a cost that grows with it. A status is computed in
SQL exactly as the payer's page computes its state (:func:`status_condition`).

The console adds (issue 15): the search box's :class:`~gateway.services.link_search.LinkMatch`
(driven like a status: up to :data:`DRIVE_CAP` matches are fetched and only they looked at;
more, and the links are walked), the ``previewed`` filter (:data:`FILTERS`), and other orders
(:data:`SORTS`: oldest first, amount, name), paged by offset up to :data:`MAX_SORTED_OFFSET`
(``more`` says a next page exists).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import selectinload
from sqlalchemy.sql.visitors import InternalTraversal

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Link, LinkPreview, Order
from gateway.clock import Clock
from gateway.domain.checkout import LinkState
from gateway.domain.errors import NotFound, ValidationFailed
from gateway.domain.links import text_problem
from gateway.services.checkout import link_view
from gateway.services.link_search import LinkMatch

COUNT_CAP = 1000
# A status filter whose candidates (status_candidates) are at most this many looks only at them.
DRIVE_CAP = COUNT_CAP
# Above DRIVE_CAP and up to this many, a status's matches are counted from its orders.
WALK_FROM_ORDERS_CAP = 20_000
# The statuses whose count PostgreSQL runs faster as joins than as probes (status_condition's
# ``joins``), measured at 100,000 links: opened 24 -> 8 ms, issued 12 -> 5, paid 6 -> 1,
# pending 16 -> 12, processing 14 -> 12. Not revoked (a hash anti-join: 2.5 -> 18 ms) nor failed.
JOIN_COUNTED = frozenset({"issued", "opened", "expired", "pending", "processing", "paid"})

# What an admin can filter on. ``duplicate`` is a flag (a second payment arrived), the others are
# one status each, computed in SQL exactly as the payer's page computes its state.
STATUSES = (
    "issued",
    "opened",
    "pending",
    "failed",
    "paid",
    "processing",
    "expired",
    "revoked",
    "duplicate",
)
# The order statuses that decide a payable link's status.
_ORDER_STATUSES = ("paid", "processing", "pending", "failed")
# Every filter: the statuses, and ``previewed`` ("bot previews only": an issued link that preview
# bots fetched and no person opened; it shows as issued).
FILTERS = (*STATUSES, "previewed")
# The orders a list can be sorted in. The default (newest first) is paged by cursor at any depth;
# the others by offset, up to MAX_SORTED_OFFSET (each page sorts the matches: at 100,000 links
# unfiltered, a top-N sort of the table).
SORTS = ("created_desc", "created_asc", "amount_desc", "amount_asc", "name")
MAX_SORTED_OFFSET = 10_000
MAX_LIMIT = 500


@dataclass(frozen=True, slots=True)
class LinkFilter:
    status: str | None = None
    ref_prefix: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    limit: int = 100
    offset: int = 0
    cursor: str | None = None  # from a page's next_cursor; wins over offset
    match: LinkMatch | None = None  # the search box's (gateway.services.link_search)
    sort: str = "created_desc"  # one of SORTS; only the default pages by cursor


@dataclass(frozen=True, slots=True)
class LinkSummary:
    link: Link
    state: str  # what the payer's page shows: payable, paid, processing, revoked, expired
    status: str  # the admin's finer view (issued, opened, pending, failed instead of payable)
    duplicate: bool
    previews: dict[str, int]


@dataclass(frozen=True, slots=True)
class LinkPage:
    links: list[LinkSummary]
    total: int  # exact when total_exact, else "at least" (the count stops at COUNT_CAP)
    limit: int
    offset: int
    next_cursor: str | None = None
    total_exact: bool = True
    more: bool = False  # a next page exists (by cursor, or by offset in the other orders)

    @property
    def next_offset(self) -> int | None:
        if self.next_cursor is None and not self.more:
            return None
        return self.offset + len(self.links)


def encode_cursor(created_at: datetime, link_id: str) -> str:
    raw = f"{created_at.astimezone(UTC).isoformat()}|{link_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def date_bound(raw: str, *, end: bool) -> datetime:
    """A ``created_from``/``created_to`` bound as the API and the CLI read it: an ISO date or
    date-time, UTC when it names no zone; a bare date as an ``end`` bound includes that whole
    day. Raises ``ValueError``; each caller says what it expected in its own words."""
    if len(raw) == 10:
        day = date.fromisoformat(raw)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(days=1) if end else start
    value = datetime.fromisoformat(raw)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, link_id = raw.split("|", 1)
        created_at = datetime.fromisoformat(when)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ValidationFailed({"cursor": "not a cursor this API gave out"}) from None
    if created_at.tzinfo is None or not link_id:
        raise ValidationFailed({"cursor": "not a cursor this API gave out"})
    return created_at, link_id


def admin_status(state: LinkState, orders: Sequence[Order], open_count: int) -> str:
    """The admin's finer view of a payable link: issued, opened, a payment pending, or a
    delayed payment (bank debit) that failed and nothing paid since."""
    if state is not LinkState.PAYABLE:
        return state.value
    if any(o.status == "pending" for o in orders):
        return "pending"
    if any(o.status == "failed" for o in orders):
        return "failed"
    return "opened" if open_count else "issued"


class _Unindexed(sa.sql.expression.ColumnElement[Any]):
    """A column SQLite's planner must not pick an index for (``+column``): with no statistics
    it takes ``revoked_at IS NULL`` for a selective condition, reads nearly every link through
    that index and sorts them all, instead of walking ``(created_at, id)`` and stopping after a
    page. Other databases get the column as it is."""

    inherit_cache = True
    # Part of the statement's cache key: without it SQLAlchemy compiles every statement that
    # holds one anew, on every call (a millisecond or more each).
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, column: Any) -> None:
        self.column = column
        self.type = column.type


@compiles(_Unindexed)
def _render_unindexed(element: _Unindexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column, **kw))


@compiles(_Unindexed, "sqlite")
def _render_unindexed_sqlite(element: _Unindexed, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.column, **kw))


def _has_order(*statuses: str, joins: bool = False) -> sa.ColumnElement[bool]:
    """Whether the link has an order in one of ``statuses``: an index probe per link (a scalar
    subquery, which PostgreSQL never turns into a join: as NOT EXISTS it hashed every paid
    order before returning the first of a thousand links).

    With ``joins``, an ``EXISTS`` instead, which PostgreSQL may plan as a semi- or anti-join:
    what a count wants (no order to keep), walking ``pk_links`` and ``ix_orders_link_id`` side
    by side (a merge join) instead of descending the orders' index once per link: the count of
    "opened" at 100,000 links took 24 ms as probes and 8 ms as a merge anti-join.

    The statuses are written into the SQL, not bound: a database uses a partial index (pending's
    ``uq_orders_one_pending_per_link``) only where it can prove that the query's condition
    implies the index's, which it cannot do for a parameter."""
    if not statuses or not set(statuses) <= set(_ORDER_STATUSES):
        raise ValueError(statuses)
    conditions = (
        Order.link_id == Link.id,
        Order.status.in_([sa.literal_column(f"'{s}'") for s in statuses]),
    )
    if joins:
        return sa.exists().where(*conditions)
    first = sa.select(sa.literal(1)).where(*conditions).limit(1).scalar_subquery()
    return first.is_not(None)


def status_condition(status: str, now: datetime, *, joins: bool = False) -> sa.ColumnElement[bool]:
    """The SQL twin of :func:`admin_status` (a test checks they agree on every status), with at
    most two order look-ups per link. Only the asked-for condition is built (building all
    nine took about a millisecond a call). ``joins``: the look-ups as ``EXISTS`` (see
    :func:`_has_order`), for a count on PostgreSQL (:data:`JOIN_COUNTED`)."""
    revoked = _Unindexed(Link.revoked_at).is_not(None)
    expired = _Unindexed(Link.valid_until) <= now
    live = sa.and_(~revoked, ~expired)  # neither revoked nor expired

    def has(*statuses: str) -> sa.ColumnElement[bool]:
        return _has_order(*statuses, joins=joins)

    settled = has("paid", "processing")
    if status == "paid":
        return has("paid")
    if status == "processing":
        return sa.and_(has("processing"), ~has("paid"))
    if status == "revoked":
        return sa.and_(revoked, ~settled)
    if status == "expired":
        return sa.and_(~revoked, expired, ~settled)
    if status == "pending":
        return sa.and_(live, has("pending"), ~settled)
    if status == "failed":
        return sa.and_(live, has("failed"), ~has("paid", "processing", "pending"))
    if status in ("opened", "issued"):
        untouched = ~has(*_ORDER_STATUSES)
        opened = Link.open_count > 0 if status == "opened" else Link.open_count == 0
        return sa.and_(live, opened, untouched)  # SQLite tests in this order: the probe last
    if status == "duplicate":
        return (
            sa.select(sa.literal(1))
            .where(Order.link_id == Link.id, Order.duplicate_of.is_not(None))
            .limit(1)
            .scalar_subquery()
            .is_not(None)
        )
    if status == "previewed":  # issued, and fetched by a preview bot: the PK's prefix
        previewed = sa.exists().where(LinkPreview.link_id == Link.id)
        return sa.and_(status_condition("issued", now, joins=joins), previewed)
    raise ValueError(status)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def status_candidates(status: str, now: datetime) -> sa.Select[Any]:
    """Link ids that a status can only be found among, read from an index: when they are few,
    a list looks only at them (see :meth:`LinkListing.list`)."""
    if status in _ORDER_STATUSES:
        return sa.select(Order.link_id).where(Order.status == status)
    if status == "duplicate":
        return sa.select(Order.link_id).where(Order.duplicate_of.is_not(None))
    if status == "revoked":
        # A range, not IS NOT NULL: SQLite reads a range from the index.
        return sa.select(Link.id).where(Link.revoked_at > _EPOCH)
    if status == "expired":
        return sa.select(Link.id).where(Link.valid_until <= now)
    if status == "previewed":
        return sa.select(LinkPreview.link_id).distinct()
    return sa.select(Link.id).where(Link.valid_until > now)  # issued, opened


def _order(sort: str, c: Any) -> list[Any]:
    """The ORDER BY of ``sort`` over ``c`` (the ``Link`` class, or a subquery's columns);
    ties newest first, so that every order is total and offset pages do not overlap."""
    newest = [c.created_at.desc(), c.id.desc()]
    if sort == "created_asc":
        return [c.created_at.asc(), c.id.asc()]
    if sort == "amount_desc":
        return [c.amount_total.desc(), *newest]
    if sort == "amount_asc":
        return [c.amount_total.asc(), *newest]
    if sort == "name":
        return [sa.func.lower(c.name), c.name, *newest]
    return newest


def _before(key: tuple[datetime, str]) -> sa.ColumnElement[bool]:
    """Links after ``key`` in the list's order. ``created_at <= x`` comes first and alone so
    that the index on ``(created_at, id)`` is read from ``key`` on, not from the top."""
    created_at, link_id = key
    return sa.and_(
        Link.created_at <= created_at,
        sa.or_(Link.created_at < created_at, Link.id < link_id),
    )


def _successor(prefix: str) -> str | None:
    """The smallest string after every string that starts with ``prefix`` (code point order,
    which is UTF-8's byte order and SQLite's BINARY collation), or None."""
    for cut in range(len(prefix) - 1, -1, -1):
        point = ord(prefix[cut]) + 1
        if 0xD800 <= point <= 0xDFFF:
            point = 0xE000
        if point <= 0x10FFFF:
            return prefix[:cut] + chr(point)
    return None


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class LinkListing:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def list(self, f: LinkFilter) -> LinkPage:
        """A page of links, newest first, at a cost that does not grow with the table.

        With a status filter, or else a ref prefix on PostgreSQL, the links it can only be
        found among are fetched first from an index (:func:`status_candidates`,
        :meth:`_ref_range`): up to :data:`DRIVE_CAP` of them, only those links are looked at
        (an exact total); more, and the links are walked newest first until the page is full,
        the total counted up to :data:`COUNT_CAP`.
        """
        now = self.now()
        where: list[sa.ColumnElement[bool]] = []
        # On PostgreSQL, where a page walks (created_at, id) whatever else it is given, a ref
        # prefix's range (_ref_range) narrows the candidates and the count only.
        by_ref: list[sa.ColumnElement[bool]] = []
        if f.status and f.status not in FILTERS:
            raise ValidationFailed({"status": f"one of {', '.join(FILTERS)}"})
        if f.sort not in SORTS:
            raise ValidationFailed({"sort": f"one of {', '.join(SORTS)}"})
        if f.sort != SORTS[0] and f.cursor:
            raise ValidationFailed(
                {"cursor": "only the default order (created_desc) pages by cursor"}
            )
        if f.sort != SORTS[0] and f.offset > MAX_SORTED_OFFSET:
            raise ValidationFailed({"offset": f"at most {MAX_SORTED_OFFSET} in this order"})
        if not 1 <= f.limit <= MAX_LIMIT:
            raise ValidationFailed({"limit": f"from 1 to {MAX_LIMIT}"})
        if f.ref_prefix:
            problem = text_problem(f.ref_prefix)
            if problem:
                raise ValidationFailed({"ref_prefix": problem})
            where.append(Link.ref.like(_like_prefix(f.ref_prefix), escape="\\"))
            upper = _successor(f.ref_prefix)
            if upper is not None:
                by_ref.append(self._ref_range(f.ref_prefix, upper))
                if self._db.is_sqlite:
                    where.extend(by_ref)
        if f.created_from:
            where.append(Link.created_at >= f.created_from)
        if f.created_to:
            where.append(Link.created_at < f.created_to)
        after = decode_cursor(f.cursor) if f.cursor else None
        offset = 0 if after else f.offset
        async with self._read() as session:
            candidates: sa.Select[Any] | None = None
            # The count's conditions: the page's, with the range of a ref prefix on PostgreSQL
            # (see above), and a status's order look-ups as joins where that is faster there.
            counting = list(where) if self._db.is_sqlite else [*where, *by_ref]
            if f.status:
                where.append(status_condition(f.status, now))
                joins = not self._db.is_sqlite and f.status in JOIN_COUNTED
                counting.append(status_condition(f.status, now, joins=joins))
                candidates = status_candidates(f.status, now)
            elif by_ref and not self._db.is_sqlite:
                # (SQLite reads the range with the page and the count, as fast.)
                candidates = sa.select(Link.id).where(*by_ref)
            few: list[str] | None = None
            if f.match is not None:
                # The search box's: exact ids are the few candidates; anything else drives like
                # a status (up to DRIVE_CAP matches: only those looked at; more: a walk).
                searched = f.match.condition(sqlite=self._db.is_sqlite)
                where.append(searched)
                counting.append(searched)
                if f.match.link_ids is not None:
                    few, candidates = sorted(set(f.match.link_ids)), None
                else:
                    # Fetched at once, not counted first: without an index on names and
                    # emails this is a scan, and one scan is enough.
                    found = (
                        await session.execute(
                            sa.select(Link.id).where(searched).limit(DRIVE_CAP + 1)
                        )
                    ).scalars()
                    ids = sorted(set(found))
                    if len(ids) <= DRIVE_CAP:
                        few, candidates = ids, None
            count_from: sa.Select[Any] | None = None
            if candidates is not None:
                # Counted, not fetched, unless they are few: a thousand ids cost more to fetch
                # than to count, and a walk does not need them.
                from_orders = f.status in (*_ORDER_STATUSES, "duplicate")
                cap = WALK_FROM_ORDERS_CAP if from_orders else DRIVE_CAP
                some = (
                    await session.execute(
                        sa.select(sa.func.count()).select_from(candidates.limit(cap + 1).subquery())
                    )
                ).scalar_one()
                if some <= DRIVE_CAP:
                    few = sorted(set((await session.execute(candidates)).scalars()))
                elif f.match is None and from_orders and some <= WALK_FROM_ORDERS_CAP:
                    # Not that many: count the links reached from the status's orders rather
                    # than walk every link (when they are many, the walk finds matches at once).
                    count_from = candidates
            if few is not None:
                rows, total, exact = await self._few(
                    session, few, where, after, offset, f.limit, sort=f.sort
                )
            else:
                rows, total, exact = await self._walk(
                    session,
                    f.status,
                    count_from,
                    (where, counting),
                    after,
                    offset,
                    f.limit,
                    sort=f.sort,
                )
            links, more = rows[: f.limit], len(rows) > f.limit
            previews: dict[str, dict[str, int]] = {}
            if links:
                preview_rows = await session.execute(
                    sa.select(LinkPreview).where(LinkPreview.link_id.in_([x.id for x in links]))
                )
                for p in preview_rows.scalars():
                    previews.setdefault(p.link_id, {})[p.bot_name] = p.count
        last = links[-1] if links and more and f.sort == SORTS[0] else None
        return LinkPage(
            [self._summary(link, now, previews.get(link.id, {})) for link in links],
            total,
            f.limit,
            f.offset,
            next_cursor=encode_cursor(last.created_at, last.id) if last else None,
            total_exact=exact,
            more=more,
        )

    async def _few(
        self,
        session: Any,
        few: Sequence[str],
        where: Sequence[sa.ColumnElement[bool]],
        after: tuple[datetime, str] | None,
        offset: int,
        limit: int,
        *,
        sort: str = SORTS[0],
    ) -> tuple[Sequence[Link], int, bool]:
        """A page from a filter's few candidates: the database counts and sorts the matches
        among them and returns one page (the ids are sent, not a subquery: PostgreSQL would
        hash-join the whole table). The total is exact."""
        matches = (
            sa.select(
                Link.id,
                Link.created_at,
                Link.amount_total,
                Link.name,
                sa.func.count().over().label("total"),
            )
            .where(self._id_in(few), *where)
            .subquery()
        )
        page = sa.select(matches.c.id, matches.c.total)
        if after:
            page = page.where(
                matches.c.created_at <= after[0],
                sa.or_(matches.c.created_at < after[0], matches.c.id < after[1]),
            )
        found = (
            await session.execute(
                page.order_by(*_order(sort, matches.c)).limit(limit + 1).offset(offset)
            )
        ).all()
        ids = [row[0] for row in found]
        if found:
            total = int(found[0][1])
        else:  # past the end: count on its own
            total = (
                await session.execute(sa.select(sa.func.count()).select_from(matches))
            ).scalar_one()
        loaded = await session.execute(
            sa.select(Link).where(self._id_in(ids)).options(selectinload(Link.orders))
        )
        by_id = {link.id: link for link in loaded.scalars()}
        return [by_id[i] for i in ids if i in by_id], int(total), True

    async def _walk(
        self,
        session: Any,
        status: str | None,
        count_from: sa.Select[Any] | None,
        where: tuple[Sequence[sa.ColumnElement[bool]], Sequence[sa.ColumnElement[bool]]],
        after: tuple[datetime, str] | None,
        offset: int,
        limit: int,
        *,
        sort: str = SORTS[0],
    ) -> tuple[Sequence[Link], int, bool]:
        """A page walked newest first along ``(created_at, id)`` until it is full, and the
        matches counted up to :data:`COUNT_CAP` (among ``count_from``'s links when given);
        ``where`` is the page's conditions and the count's (the same links, written for
        different index use).

        With a status, the count and the page each look at hundreds or thousands of links, and
        neither needs the other: the count runs at the same time on a connection of its own
        (its own snapshot too; a link that changes meanwhile may be counted as it was)."""
        paging, counting = where
        if status is None:
            counted = await self._count(session, count_from, counting)
            rows = await self._page(session, paging, after, offset, limit, sort=sort)
        else:
            count_apart = asyncio.ensure_future(self._count_apart(count_from, counting))
            try:
                rows = await self._page(session, paging, after, offset, limit, sort=sort)
            except BaseException:
                count_apart.cancel()
                await asyncio.gather(count_apart, return_exceptions=True)  # its session closed
                raise
            counted = await count_apart
        return rows, min(counted, COUNT_CAP), counted <= COUNT_CAP

    async def _page(
        self,
        session: Any,
        where: Sequence[sa.ColumnElement[bool]],
        after: tuple[datetime, str] | None,
        offset: int,
        limit: int,
        *,
        sort: str = SORTS[0],
    ) -> Sequence[Link]:
        paging = [*where, _before(after)] if after else list(where)
        rows = (
            await session.execute(
                sa.select(Link)
                .where(*paging)
                .options(selectinload(Link.orders))
                .order_by(*_order(sort, Link))
                .limit(limit + 1)
                .offset(offset)
            )
        ).scalars()
        return list(rows)

    async def _count_apart(
        self, count_from: sa.Select[Any] | None, where: Sequence[sa.ColumnElement[bool]]
    ) -> int:
        async with self._read() as session:
            return await self._count(session, count_from, where)

    async def _count(
        self,
        session: Any,
        count_from: sa.Select[Any] | None,
        where: Sequence[sa.ColumnElement[bool]],
    ) -> int:
        """The matches, counted up to ``COUNT_CAP + 1``, among the links of ``count_from``
        (link ids) when given."""
        counting = list(where)
        if count_from is not None:
            counting.append(Link.id.in_(count_from))
        counted = (
            await session.execute(
                sa.select(sa.func.count()).select_from(
                    sa.select(Link.id).where(*counting).limit(COUNT_CAP + 1).subquery()
                )
            )
        ).scalar_one()
        return int(counted)

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Any]:
        async with self._db.read() as session:
            if not self._db.is_sqlite:
                # A page reads a few thousand rows at most: starting parallel workers, or
                # compiling the plan (its cost looks high: a subquery per link), costs more.
                # And sorting: it takes "(subquery) IS NULL" for rare, expects to read most of
                # the table for a page, and sorts it all instead of walking (created_at, id).
                await session.execute(
                    sa.text(
                        "SELECT set_config('max_parallel_workers_per_gather', '0', true),"
                        " set_config('jit', 'off', true), set_config('enable_sort', 'off', true)"
                    )
                )
            yield session

    def _ref_range(self, prefix: str, upper: str) -> sa.ColumnElement[bool]:
        """The refs from ``prefix`` up to ``upper`` (:func:`_successor`) in code point order,
        as ``ix_links_ref`` reads them: exactly the refs that start with ``prefix`` (beside the
        LIKE, case for case on SQLite too, whose LIKE ignores case). SQLite's LIKE never uses
        an index. PostgreSQL's does only under the C collation and with the pattern known when
        the plan is made, so there the range is written with the byte-wise operators that the
        index (``varchar_pattern_ops``) reads whatever the database's collation."""
        if self._db.is_sqlite:
            return sa.and_(Link.ref >= prefix, Link.ref < upper)
        return sa.and_(
            Link.ref.op("~>=~", is_comparison=True)(prefix),
            Link.ref.op("~<~", is_comparison=True)(upper),
        )

    def _id_in(self, ids: Sequence[str]) -> sa.ColumnElement[bool]:
        if self._db.is_sqlite:
            return Link.id.in_(ids)
        # One array parameter: the same statement (prepared once) whatever the number of ids.
        return Link.id == sa.any_(sa.bindparam("ids", list(ids), type_=ARRAY(sa.String)))

    def _summary(self, link: Link, now: datetime, previews: dict[str, int]) -> LinkSummary:
        state = link_view(link, [], link.orders, now).state
        return LinkSummary(
            link,
            state.value,
            admin_status(state, link.orders, link.open_count),
            any(o.duplicate_of for o in link.orders),
            previews,
        )

    async def status_of(self, link_id: str) -> str:
        async with self._db.read() as session:
            link = (
                await session.execute(
                    sa.select(Link).where(Link.id == link_id).options(selectinload(Link.orders))
                )
            ).scalar_one_or_none()
        if link is None:
            raise NotFound(link_id)
        return self._summary(link, self.now(), {}).status
