"""What SQLite and PostgreSQL do differently, in one place: services call these and never ask
which database they run on.

- Serialising writers: SQLite's ``BEGIN IMMEDIATE`` takes the one write lock before anything is
  read, so a write transaction there is alone; PostgreSQL runs writers side by side, so a write
  that decides about a link first locks the link's row (:func:`lock_link`, and
  :func:`locks_rows` for the "read again under the lock" dance).
- Upserts: ``INSERT ... ON CONFLICT`` is spelled with each dialect's own ``insert``; a
  :class:`ByDialect` holds both spellings, built once, and :func:`gateway.adapters.db.engine.run`
  (or :meth:`ByDialect.pick`) takes the one for the transaction's database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from gateway.adapters.db.engine import RowTransaction
from gateway.adapters.db.models import Link

# An upsert's insert, of either dialect (both have ``excluded`` and ``on_conflict_*``).
Insert = sqlite.Insert | postgresql.Insert


class ByDialect:
    """One statement spelled for each database, built once (a module-level constant)."""

    __slots__ = ("postgresql", "sqlite")

    def __init__(self, build: Callable[[Callable[[sa.Table], Insert]], Executable]) -> None:
        self.sqlite = build(sqlite.insert)
        self.postgresql = build(postgresql.insert)

    def pick(self, session: AsyncSession | RowTransaction) -> Executable:
        return self.sqlite if dialect_name(session) == "sqlite" else self.postgresql


def dialect_name(session: AsyncSession | RowTransaction) -> str:
    """``"sqlite"`` or ``"postgresql"``: the database a transaction runs on."""
    if isinstance(session, RowTransaction):
        return "sqlite"
    return session.get_bind().dialect.name


def locks_rows(session: AsyncSession | RowTransaction) -> bool:
    """Whether a write transaction must lock a link's row to decide about it alone: True on
    PostgreSQL; False on SQLite, where ``BEGIN IMMEDIATE`` took the write lock before anything
    was read (so what was read is already what the decision sees)."""
    return dialect_name(session) != "sqlite"


_LINK = sa.select(Link).where(Link.id == sa.bindparam("p_link_id"))
_LINK_FOR_UPDATE = _LINK.with_for_update()


async def lock_link(session: AsyncSession, link_id: str) -> Link | None:
    """Read a link and, on PostgreSQL, lock its row until the transaction ends.

    Every write that touches a link's orders takes this lock first (SQLite's BEGIN IMMEDIATE
    already serialises writers), so decisions about one link never interleave.
    """
    stmt = _LINK_FOR_UPDATE if locks_rows(session) else _LINK
    return (await session.execute(stmt, {"p_link_id": link_id})).scalar_one_or_none()


def upsert(
    table: sa.Table,
    *,
    values: Mapping[str, Any] | None = None,
    index_elements: Sequence[sa.Column[Any]],
    set_: Callable[[Any], Mapping[str, Any]],
    returning: Sequence[sa.ColumnElement[Any]] = (),
) -> ByDialect:
    """``INSERT ... ON CONFLICT (index_elements) DO UPDATE SET set_(excluded)``, for both
    databases. ``values`` (bindparams, usually) is left out for an executemany of row dicts."""

    def build(insert: Callable[[sa.Table], Insert]) -> Executable:
        statement = insert(table)
        if values is not None:
            statement = statement.values(dict(values))
        upserted = statement.on_conflict_do_update(
            index_elements=list(index_elements), set_=dict(set_(statement.excluded))
        )
        return upserted.returning(*returning) if returning else upserted

    return ByDialect(build)


def insert_ignore(
    table: sa.Table,
    *,
    index_elements: Sequence[sa.Column[Any]] | None = None,
    returning: Sequence[sa.ColumnElement[Any]] = (),
) -> ByDialect:
    """``INSERT ... ON CONFLICT DO NOTHING`` for both databases (rows as executemany dicts)."""

    def build(insert: Callable[[sa.Table], Insert]) -> Executable:
        statement = insert(table).on_conflict_do_nothing(
            index_elements=list(index_elements) if index_elements is not None else None
        )
        return statement.returning(*returning) if returning else statement

    return ByDialect(build)


def any_of(
    column: sa.ColumnElement[Any], values: Sequence[Any], *, postgres: bool
) -> sa.ColumnElement[bool]:
    """``column`` is one of ``values``: one array parameter on PostgreSQL (the same statement,
    prepared once, whatever the number of values), an IN list on SQLite. Not for ``run()``:
    the IN list is expanded per call."""
    if not postgres:
        return column.in_(values)
    return column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
