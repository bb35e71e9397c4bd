"""Counting who opened a link, without a write transaction per GET.

Human opens, bot previews and problem pages seen (an error or expired page shown to the payer of
a link: ``Link.problem_seen_at``, so a payment recorded after it gets a receipt that says it
went through after all) are added up in memory and flushed in one transaction every few
seconds (and at shutdown). Losing a few seconds of counts in a crash is acceptable; a database
write on every page view, on the path bots hammer, is not.

Previews are stored under a bounded set of bot names (:func:`gateway.visitors.names.bot_label`:
the known ones, else "other"), so made-up names cannot add rows, nor bytes that are not text.

A flush must never wedge: if the database still refuses the batch for
what is in it (rather than for being unreachable or locked), the batch is written in halves until
each refused row is alone: that row is logged and dropped, every other row is written. Only a
failure of the database itself puts the counts back for the next flush.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias, TypeVar, cast

import sqlalchemy as sa

from gateway.adapters.db.dialects import upsert
from gateway.adapters.db.engine import Database, RowTransaction, prepared_for
from gateway.adapters.db.models import Link, LinkPreview
from gateway.clock import Clock
from gateway.visitors.names import bot_label

log = logging.getLogger(__name__)
K = TypeVar("K", bound=Hashable)


@dataclass(slots=True)
class _Tally:
    count: int
    first: float
    last: float

    def add(self, when: float) -> None:
        self.count += 1
        if when > self.last:
            self.last = when
        elif when < self.first:  # an injected clock may step back
            self.first = when


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


_second: list[Any] = [None, ""]


def _sqlite_time(timestamp: float) -> str:
    """``timestamp`` as a UTCDateTime column is stored on SQLite ("2026-12-07 07:00:01.250000",
    what SQLAlchemy's binding writes), the part up to the second made once per second."""
    whole = int(timestamp // 1)
    if _second[0] != whole:
        _second[0] = whole
        _second[1] = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%d %H:%M:%S")
    micro = round((timestamp - whole) * 1e6)
    if micro >= 1_000_000:
        return _utc(timestamp).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"{_second[1]}.{micro:06d}"


_links = cast(sa.Table, Link.__table__)
_last = sa.bindparam("b_last", type_=_links.c.last_opened_at.type)
_ADD_OPENS = (
    sa.update(_links)
    .where(_links.c.id == sa.bindparam("b_id"))
    .values(
        open_count=_links.c.open_count + sa.bindparam("b_count", type_=sa.Integer),
        first_opened_at=sa.func.coalesce(
            _links.c.first_opened_at,
            sa.bindparam("b_first", type_=_links.c.first_opened_at.type),
        ),
        last_opened_at=sa.case(
            (
                _links.c.last_opened_at.is_(None) | (_links.c.last_opened_at < _last),
                _last,
            ),
            else_=_links.c.last_opened_at,
        ),
    )
)
# The same update straight on SQLite's driver (see OpenRecorder._write): the times are passed as
# whole microseconds since the epoch (_micros) and written by SQLite itself as the column stores
# them ("2026-12-07 07:00:01.250000", what SQLAlchemy's binding writes), so a row costs Python one
# tuple, not a dict of formatted times (~2 us a row more, and garbage to collect, every row of
# every flush, on the event loop). Text in that form sorts as time: max() keeps the later of the
# stored and the new last open (NULL counts as '').
_SQLITE_ADD_OPENS = """
UPDATE links SET
    open_count = open_count + ?2,
    first_opened_at = coalesce(
        first_opened_at,
        strftime('%Y-%m-%d %H:%M:%S', ?3 / 1000000, 'unixepoch') || printf('.%06d', ?3 % 1000000)
    ),
    last_opened_at = max(
        coalesce(last_opened_at, ''),
        strftime('%Y-%m-%d %H:%M:%S', ?4 / 1000000, 'unixepoch') || printf('.%06d', ?4 % 1000000)
    )
WHERE id = ?1
"""


def _micros(timestamp: float) -> int:
    """``timestamp`` in whole microseconds, rounded as :func:`_sqlite_time` (and datetime) do."""
    return int(timestamp // 1) * 1_000_000 + round(timestamp % 1 * 1e6)


_seen = sa.bindparam("b_seen", type_=_links.c.problem_seen_at.type)
# The latest problem page a payer saw (several replicas may flush, in any order).
_PROBLEM_SEEN = (
    sa.update(_links)
    .where(_links.c.id == sa.bindparam("b_id"))
    .values(
        problem_seen_at=sa.case(
            (
                _links.c.problem_seen_at.is_(None) | (_links.c.problem_seen_at < _seen),
                _seen,
            ),
            else_=_links.c.problem_seen_at,
        )
    )
)


_previews = cast(sa.Table, LinkPreview.__table__)
# Insert a (link, bot) tally, or add to the one there (several replicas may flush).
_ADD_PREVIEWS = upsert(
    _previews,
    index_elements=[_previews.c.link_id, _previews.c.bot_name],
    set_=lambda added: {
        "count": _previews.c.count + added.count,
        "last_at": sa.case(
            (_previews.c.last_at < added.last_at, added.last_at), else_=_previews.c.last_at
        ),
    },
)


# One counted row: ("open", link id, tally) for human opens, ("preview", (link id, bot),
# tally) for bot previews, ("problem", link id, tally) for problem pages seen.
_Kind: TypeAlias = Literal["open", "preview", "problem"]
_Row: TypeAlias = tuple[_Kind, str | tuple[str, str], _Tally]
# Errors that say the database could not be used, not that it refused what it was given.
_UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, OSError)


def _unavailable(exc: Exception) -> bool:
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _UNAVAILABLE)


def _refused(row: _Row, exc: Exception) -> None:
    kind, key, tally = row
    link_id, bot = (key, None) if isinstance(key, str) else key
    log.error(
        "open count dropped: the database refused it",
        extra={
            "kind": kind,
            "link_id": ascii(link_id)[:80],
            "bot": None if bot is None else ascii(bot)[:120],
            "count": tally.count,
            "error": type(exc).__name__,
        },
    )


class OpenRecorder:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._opens: dict[str, _Tally] = {}
        self._previews: dict[tuple[str, str], _Tally] = {}
        self._problems: dict[str, _Tally] = {}

    def human_open(self, link_id: str) -> None:
        self._bump(self._opens, link_id)

    def problem_seen(self, link_id: str) -> None:
        """The link's payer was shown an error or expired page (now)."""
        self._bump(self._problems, link_id)

    def bot_preview(self, link_id: str, bot_name: str) -> None:
        self._bump(self._previews, (link_id, bot_label(bot_name)))

    def _bump(self, table: dict[K, _Tally], key: K) -> None:
        now = self._clock.now()
        tally = table.get(key)
        if tally is None:
            table[key] = _Tally(1, now, now)
        else:
            tally.add(now)

    @property
    def pending(self) -> int:
        return len(self._opens) + len(self._previews) + len(self._problems)

    async def flush(self) -> None:
        """Write what was counted since the last flush, in one transaction if the database
        takes it (see the module's docstring for what happens when it does not)."""
        if not self.pending:
            return
        rows: list[_Row] = [("open", key, tally) for key, tally in self._opens.items()]
        rows += [("preview", pkey, tally) for pkey, tally in self._previews.items()]
        rows += [("problem", key, tally) for key, tally in self._problems.items()]
        self._opens, self._previews, self._problems = {}, {}, {}
        pending = [rows]  # chunks not yet written, the next one last
        try:
            while pending:
                chunk = pending[-1]
                try:
                    await self._write(chunk)
                except Exception as exc:
                    if _unavailable(exc):
                        raise
                    pending.pop()
                    if len(chunk) == 1:
                        _refused(chunk[0], exc)
                    else:
                        middle = len(chunk) // 2
                        pending += [chunk[middle:], chunk[:middle]]
                else:
                    pending.pop()
        except BaseException:  # the database is unavailable, or the task is being cancelled
            # Put the counts back so the next flush tries again, then let the caller log it.
            for chunk in pending:
                for kind, key, tally in chunk:
                    if kind == "preview":
                        self._merge(self._previews, cast(tuple[str, str], key), tally)
                    else:
                        table = self._opens if kind == "open" else self._problems
                        self._merge(table, cast(str, key), tally)
            raise

    async def _write(self, rows: list[_Row]) -> None:
        opens = [(cast(str, key), tally) for kind, key, tally in rows if kind == "open"]
        previews = [
            (cast(tuple[str, str], key), tally) for kind, key, tally in rows if kind == "preview"
        ]
        problems = [(cast(str, key), tally) for kind, key, tally in rows if kind == "problem"]
        async with self._db.write_rows() as session:
            # Three statements however many links were opened: one executemany each. On SQLite
            # straight on the driver, times written as SQLite stores them (_sqlite_time, or by
            # SQLite itself for the opens: _SQLITE_ADD_OPENS): SQLAlchemy's bind processing of
            # three datetimes cost ~50 us a row, every row of every flush, on the event loop.
            stamp = _sqlite_time if isinstance(session, RowTransaction) else _utc
            batches: list[tuple[Any, list[dict[str, Any]]]] = []
            if opens and isinstance(session, RowTransaction):
                session.connection.executemany(
                    _SQLITE_ADD_OPENS,
                    [
                        (link_id, tally.count, _micros(tally.first), _micros(tally.last))
                        for link_id, tally in opens
                    ],
                )
            elif opens:
                batches.append(
                    (
                        _ADD_OPENS,
                        [
                            {
                                "b_id": link_id,
                                "b_count": tally.count,
                                "b_first": stamp(tally.first),
                                "b_last": stamp(tally.last),
                            }
                            for link_id, tally in opens
                        ],
                    )
                )
            if previews:
                batches.append(
                    (
                        _ADD_PREVIEWS.pick(session),
                        [
                            {
                                "link_id": link_id,
                                "bot_name": bot,
                                "count": tally.count,
                                "first_at": stamp(tally.first),
                                "last_at": stamp(tally.last),
                            }
                            for (link_id, bot), tally in previews
                        ],
                    )
                )
            if problems:
                batches.append(
                    (
                        _PROBLEM_SEEN,
                        [
                            {"b_id": link_id, "b_seen": stamp(tally.last)}
                            for link_id, tally in problems
                        ],
                    )
                )
            for statement, params in batches:
                if isinstance(session, RowTransaction):
                    prepared = prepared_for(session.dialect)[statement]
                    session.connection.executemany(
                        prepared.sql,
                        [
                            [p.get(name, default) for name, _, default in prepared.binds]
                            for p in params
                        ],
                    )
                else:
                    await session.execute(statement, params)

    @staticmethod
    def _merge(table: dict[K, _Tally], key: K, tally: _Tally) -> None:
        existing = table.get(key)
        if existing is None:
            table[key] = tally
        else:
            existing.count += tally.count
            existing.first = min(existing.first, tally.first)
            existing.last = max(existing.last, tally.last)
