"""The audit trail: one append-only row per state change, with who made it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import AuditEntry


def audit(
    session: AsyncSession,
    *,
    at: datetime,
    link_id: str | None,
    action: str,
    actor: str,
    order_id: str | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    detail: str | None = None,
) -> None:
    session.add(
        AuditEntry(
            at=at,
            link_id=link_id,
            order_id=order_id,
            action=action,
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            detail=detail,
        )
    )


# The console's Activity page reads at most this many entries a page.
MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str | None = None  # exact, e.g. "admin:kim@riverside.example"
    # Entries whose action starts with one of these ("login", "account.", "link." ...).
    action_prefixes: tuple[str, ...] = ()
    link_id: str | None = None
    before_id: int | None = None  # the next page: entries older than this one
    limit: int = 50


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]
    next_before_id: int | None  # None on the last page


class AuditTrail:
    """Reading the trail back, newest first (the console's Activity page): by the entry id,
    which grows with time, so any page costs the same whatever its depth."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def recent(self, f: AuditFilter) -> AuditPage:
        limit = max(1, min(f.limit, MAX_PAGE))
        query = sa.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
        if f.before_id is not None:
            query = query.where(AuditEntry.id < f.before_id)
        if f.actor:
            query = query.where(AuditEntry.actor == f.actor[:100])
        if f.action_prefixes:
            query = query.where(sa.or_(*(_starts_with(p) for p in f.action_prefixes[:8])))
        if f.link_id:
            query = query.where(AuditEntry.link_id == f.link_id[:32])
        async with self._db.read() as session:
            rows = list((await session.scalars(query)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        return AuditPage(rows, rows[-1].id if more and rows else None)

    async def actors(self) -> list[str]:
        """Who appears in the trail (for the filter), bounded."""
        query = sa.select(AuditEntry.actor).distinct().order_by(AuditEntry.actor).limit(MAX_PAGE)
        async with self._db.read() as session:
            return list((await session.scalars(query)).all())


def _starts_with(prefix: str) -> sa.ColumnElement[bool]:
    escaped = prefix[:64].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return AuditEntry.action.like(escaped + "%", escape="\\")
