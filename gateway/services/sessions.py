"""The parameters of an order's Checkout Session, as a pure function of what is stored.

Stripe's idempotency replay only accepts a retry that sends the very same parameters, so every
path that may (re)create an order's session (the click, a racing replica, a revocation or the
reconciler recovering a session a dead request made) builds it here, from the stored order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.adapters.db.models import Link, LinkItem, Order
from gateway.domain.payments import LineItemRequest, SessionRequest


@dataclass(frozen=True, slots=True)
class ReturnUrls:
    success_url: str
    cancel_url: str


async def link_items(session: AsyncSession, link_id: str) -> Sequence[LinkItem]:
    """A link's items in their order, inside the caller's transaction (the one items query)."""
    result = await session.execute(
        sa.select(LinkItem).where(LinkItem.link_id == link_id).order_by(LinkItem.position)
    )
    return result.scalars().all()


def session_request(
    link: Link, items: Sequence[LinkItem], order: Order, fallback: ReturnUrls | None = None
) -> SessionRequest:
    """The session for ``order``, as a pure function of what is stored.

    Stripe's idempotency replay only accepts a retry that sends the very same parameters, so
    nothing here may depend on the current request or the clock.
    """
    success_url = order.success_url or (fallback.success_url if fallback else None)
    cancel_url = order.cancel_url or (fallback.cancel_url if fallback else None)
    if not success_url or not cancel_url or order.session_expires_at is None:
        raise ValueError(f"order {order.id} lacks its stored session parameters")
    return SessionRequest(
        order_id=order.id,
        link_id=link.id,
        ref=link.ref,
        currency=link.currency,
        items=tuple(LineItemRequest(i.description, i.amount, i.quantity) for i in items),
        customer_email=link.email,
        success_url=success_url,
        cancel_url=cancel_url,
        expires_at=order.session_expires_at,
        locale=order.checkout_locale,
    )
