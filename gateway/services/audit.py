"""The audit trail: one append-only row per state change, with who made it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.adapters.db.models import AuditEntry


def audit(
    session: AsyncSession,
    *,
    at: datetime,
    link_id: str,
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
