"""Recording what Stripe says about a session: the one transition every path shares.

The webhook, the return page, the stale-session check and the reconciler all end here, so a
payment is recorded the same way whichever path saw it first, and seeing it twice changes
nothing. A payment is never dropped: one on a canceled or expired order is still recorded, and a
second payment for a link that is already paid is kept and flagged as a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.adapters.db.models import Link, Order
from gateway.domain.orders import OrderStatus, SessionOutcome, next_status
from gateway.domain.payments import SessionInfo
from gateway.services.audit import audit


@dataclass(frozen=True, slots=True)
class Recorded:
    order_id: str | None  # None: the session is not one of ours
    link_id: str | None = None
    from_status: str | None = None
    to_status: str | None = None  # None: nothing changed (duplicate or late event)
    duplicate_of: str | None = None

    @property
    def known(self) -> bool:
        return self.order_id is not None

    @property
    def changed(self) -> bool:
        return self.to_status is not None


async def lock_link(session: AsyncSession, link_id: str) -> Link | None:
    """Read a link and, on PostgreSQL, lock its row until the transaction ends.

    Every write that touches a link's orders takes this lock first (SQLite's BEGIN IMMEDIATE
    already serialises writers), so decisions about one link never interleave.
    """
    stmt = sa.select(Link).where(Link.id == link_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def find_order_for_session(session: AsyncSession, info: SessionInfo) -> Order | None:
    order: Order | None = None
    if info.order_id:
        order = await session.get(Order, info.order_id)
    if order is None:
        order = (
            await session.execute(sa.select(Order).where(Order.stripe_session_id == info.id))
        ).scalar_one_or_none()
    if order is not None and order.stripe_session_id not in (None, info.id):
        return None  # metadata points at an order whose session is another one: not ours
    return order


async def record_session(
    session: AsyncSession,
    info: SessionInfo,
    *,
    outcome: SessionOutcome | None = None,
    actor: str,
    now: datetime,
) -> Recorded:
    """Apply Stripe's view of ``info`` to its order, inside the caller's write transaction."""
    outcome = outcome or info.outcome()
    order = await find_order_for_session(session, info)
    if order is None:
        return Recorded(None)
    await lock_link(session, order.link_id)
    await session.refresh(order)  # read it again under the lock
    if order.stripe_session_id is None:
        # The request that created this session died before saving it; Stripe tells us now.
        order.stripe_session_id = info.id
        order.session_url = info.url
        order.session_expires_at = info.expires_at
    if info.payment_intent_id and not order.payment_intent_id:
        order.payment_intent_id = info.payment_intent_id

    current = OrderStatus(order.status)
    target = next_status(current, outcome)
    if target is None:
        return Recorded(order.id, order.link_id)

    order.status = target.value
    order.updated_at = now
    detail = f"session {info.id}"
    duplicate_of: str | None = None
    if target is OrderStatus.PAID:
        order.paid_at = now
        duplicate_of = await _earlier_payment(session, order)
        if duplicate_of:
            order.duplicate_of = duplicate_of
            detail += f"; duplicate payment: link already paid by {duplicate_of}"
        elif current in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
            detail += f"; paid after the order was {current.value}"
    audit(
        session,
        at=now,
        link_id=order.link_id,
        order_id=order.id,
        action="order." + target.value,
        from_status=current.value,
        to_status=target.value,
        actor=actor,
        detail=detail,
    )
    await session.flush()
    return Recorded(order.id, order.link_id, current.value, target.value, duplicate_of)


async def _earlier_payment(session: AsyncSession, order: Order) -> str | None:
    """Another order of the same link that already holds the payment, if any."""
    stmt = (
        sa.select(Order.id)
        .where(
            Order.link_id == order.link_id,
            Order.id != order.id,
            Order.status.in_([OrderStatus.PAID.value, OrderStatus.REFUNDED.value]),
            Order.duplicate_of.is_(None),
        )
        .order_by(Order.paid_at)
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()
