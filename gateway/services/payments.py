"""Recording what Stripe says about a payment: the transitions every path shares.

The webhook, the return page, the stale-session check and the reconciler all end here, so a
payment is recorded the same way whichever path saw it first, and seeing it twice changes
nothing. A payment is never dropped: one on a canceled or expired order is still recorded, and a
second payment for a link that is already paid is kept and flagged as a duplicate (and refunded
automatically when ``checkout.refund_duplicates`` is on).

Recording happens inside a transaction; what needs Stripe afterwards (expiring a superseded
session, refunding a duplicate) is returned as follow-up work and done after the commit, because
Stripe is never called while a database lock is held.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.adapters.db.dialects import lock_link as lock_link  # re-exported for older imports
from gateway.adapters.db.dialects import locks_rows
from gateway.adapters.db.engine import Database, RowTransaction, run
from gateway.adapters.db.models import AuditEntry, Link, Order
from gateway.clock import Clock
from gateway.domain.errors import GatewayError, PaymentProviderRejected, PaymentProviderUnavailable
from gateway.domain.locales import for_link
from gateway.domain.orders import CancelReason, OrderStatus, SessionOutcome, next_status
from gateway.domain.outbox import Kind
from gateway.domain.payments import PaymentProvider, Retirement, SessionInfo, retirement
from gateway.services.audit import audit
from gateway.services.outbox import Outbox
from gateway.services.sessions import link_items, session_request
from gateway.services.snapshots import SnapshotCache

log = logging.getLogger(__name__)


class NotYetApplicable(GatewayError):
    """The event is about an order we know, in a state it cannot apply to yet (e.g. a refund
    of a payment whose own event has not arrived). Stripe is asked to retry."""


@dataclass(frozen=True, slots=True)
class Recorded:
    order_id: str | None  # None: not one of ours
    link_id: str | None = None
    from_status: str | None = None
    to_status: str | None = None  # None: nothing changed (duplicate or late event)
    duplicate_of: str | None = None
    # Other pending attempts of a link that just got paid: their sessions must be expired.
    superseded: tuple[tuple[str, str | None], ...] = field(default=())

    @property
    def known(self) -> bool:
        return self.order_id is not None

    @property
    def changed(self) -> bool:
        return self.to_status is not None


# Built once: these run on every webhook and every Pay press that writes, and building a
# statement (and its cache key) costs more than SQLite takes to run it.
_ORDER_BY_PAYMENT_INTENT = sa.select(Order).where(
    Order.payment_intent_id == sa.bindparam("p_payment_intent")
)
_OTHERS_OF_LINK = (
    Order.link_id == sa.bindparam("p_link_id"),
    Order.id != sa.bindparam("p_order_id"),
)
_EARLIER_PAYMENT = (
    sa.select(Order.id)
    .where(
        *_OTHERS_OF_LINK,
        # Two comparisons rather than IN: an IN list is expanded per call, not compiled once.
        sa.or_(
            Order.status == OrderStatus.PAID.value, Order.status == OrderStatus.PROCESSING.value
        ),
        Order.duplicate_of.is_(None),
    )
    .order_by(Order.paid_at, Order.created_at)
    .limit(1)
)
_OTHER_PENDING = sa.select(Order.id, Order.stripe_session_id).where(
    *_OTHERS_OF_LINK, Order.status == OrderStatus.PENDING.value
)
_orders = cast(sa.Table, Order.__table__)
# What recording a session may change on its order; written back whole (read under the lock).
_ORDER_WRITABLE = (
    "status",
    "updated_at",
    "paid_at",
    "duplicate_of",
    "stripe_session_id",
    "session_url",
    "session_expires_at",
    "payment_intent_id",
)
_ORDER_STATE = sa.select(_orders.c.id, _orders.c.link_id, *(_orders.c[c] for c in _ORDER_WRITABLE))
_ORDER_STATE_BY_ID = _ORDER_STATE.where(
    _orders.c.id == sa.bindparam("p_order_id", type_=_orders.c.id.type)
)
_ORDER_STATE_BY_SESSION = _ORDER_STATE.where(
    _orders.c.stripe_session_id
    == sa.bindparam("p_session_id", type_=_orders.c.stripe_session_id.type)
)
_ORDER_UPDATE = (
    sa.update(_orders)
    .where(_orders.c.id == sa.bindparam("p_order_id", type_=_orders.c.id.type))
    .values(
        {_orders.c[c]: sa.bindparam(f"p_{c}", type_=_orders.c[c].type) for c in _ORDER_WRITABLE}
    )
)
_audit = cast(sa.Table, AuditEntry.__table__)
_AUDIT_INSERT = sa.insert(_audit).values(
    at=sa.bindparam("p_at", type_=_audit.c.at.type),
    link_id=sa.bindparam("p_link_id", type_=_audit.c.link_id.type),
    order_id=sa.bindparam("p_order_id", type_=_audit.c.order_id.type),
    action=sa.bindparam("p_action", type_=_audit.c.action.type),
    from_status=sa.bindparam("p_from", type_=_audit.c.from_status.type),
    to_status=sa.bindparam("p_to", type_=_audit.c.to_status.type),
    actor=sa.bindparam("p_actor", type_=_audit.c.actor.type),
    detail=sa.bindparam("p_detail", type_=_audit.c.detail.type),
)


# Who records a payment the payer did not see go through: the reconciler (directly, or replaying
# an event it found in Stripe's list) and a person replaying an event (``gateway webhooks
# replay``). The payer's receipt then says so.
RECOVERING_ACTORS = frozenset({"reconciler", "reconcile", "replay"})

_links = cast(sa.Table, Link.__table__)
_PAYER = sa.select(_links.c.email, _links.c.locale).where(
    _links.c.id == sa.bindparam("p_link_id", type_=_links.c.id.type)
)


class PayerNotices:
    """The messages a payer is owed when their payment changes (issue 14 item 2): a receipt, a
    bank payment that failed, a payment made twice, a refund. Each is added to the outbox in the
    transaction that records the change, unique per what it is about, so however often and by
    whichever path a change is recorded, it is owed once (and not at all if the change rolls
    back). What the message says is read when it is sent (gateway.services.messages)."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        receipts: bool | Callable[[], bool],
        refund_duplicates: bool,
        default_locale: str,
    ) -> None:
        self._outbox = outbox
        # email.receipts = false: the organisation lets Stripe send receipts (the rest still go).
        # A callable: the console's setting as it is now (services.org_settings).
        self._receipts = receipts if callable(receipts) else (lambda: receipts)
        self._refund_duplicates = refund_duplicates
        self._default_locale = default_locale

    async def settled(
        self,
        session: AsyncSession | RowTransaction,
        *,
        order_id: str,
        link_id: str,
        current: OrderStatus,
        target: OrderStatus,
        duplicate_of: str | None,
        actor: str,
    ) -> None:
        """``order_id`` moved from ``current`` to ``target`` (recorded by ``actor``)."""
        if target is OrderStatus.PAID and duplicate_of:
            payload = {"refund": self._refund_duplicates, "first_order": duplicate_of}
            await self._owe(session, Kind.PAID_TWICE, order_id, link_id, order_id, payload)
        elif target is OrderStatus.PAID and self._receipts():
            # Recorded by a path the payer did not watch, or after their attempt was given up:
            # whatever they saw, they may think it failed.
            recovered = actor in RECOVERING_ACTORS or current in (
                OrderStatus.CANCELED,
                OrderStatus.EXPIRED,
            )
            payload = {"recovered": recovered, "recorded_by": actor}
            await self._owe(session, Kind.RECEIPT, order_id, link_id, order_id, payload)
        elif target is OrderStatus.FAILED and not duplicate_of:
            await self._owe(session, Kind.PAYMENT_FAILED, order_id, link_id, order_id, {})

    async def refunded(
        self,
        session: AsyncSession | RowTransaction,
        *,
        order_id: str,
        link_id: str,
        amount: int,
        refunded_total: int,
        duplicate: bool,
    ) -> None:
        """``amount`` more of the order was refunded (``refunded_total`` in all): one message per
        refund, whichever of the webhook and the gateway's own refund records it first."""
        if amount <= 0:
            return
        payload = {"amount": amount, "refunded_total": refunded_total, "duplicate": duplicate}
        subject = f"{order_id}:{refunded_total}"
        await self._owe(session, Kind.REFUNDED, subject, link_id, order_id, payload)

    async def _owe(
        self,
        session: AsyncSession | RowTransaction,
        kind: Kind,
        subject: str,
        link_id: str,
        order_id: str,
        payload: dict[str, Any],
    ) -> None:
        if not self._outbox.enabled:
            return
        rows = await run(session, _PAYER, {"p_link_id": link_id})
        if not rows:
            return
        email, locale = rows[0]
        await self._outbox.add(
            session,
            kind=kind,
            subject=subject,
            recipient=email,
            locale=for_link(locale, self._default_locale),
            link_id=link_id,
            order_id=order_id,
            payload=payload,
        )


class _OrderState(Protocol):
    """An order as ``_ORDER_STATE`` reads it (a plain row): what recording a session decides on."""

    @property
    def id(self) -> str: ...
    @property
    def link_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def stripe_session_id(self) -> str | None: ...
    @property
    def payment_intent_id(self) -> str | None: ...


async def _order_for_session(
    session: AsyncSession | RowTransaction, info: SessionInfo
) -> _OrderState | None:
    """The order row a session belongs to (its metadata names it; else its session id)."""
    rows: list[_OrderState] = []
    if info.order_id:
        rows = await run(session, _ORDER_STATE_BY_ID, {"p_order_id": info.order_id})
    if not rows:
        rows = await run(session, _ORDER_STATE_BY_SESSION, {"p_session_id": info.id})
    if not rows or rows[0].stripe_session_id not in (None, info.id):
        return None  # not ours, or metadata points at an order whose session is another one
    return rows[0]


async def record_session(
    session: AsyncSession | RowTransaction,
    info: SessionInfo,
    *,
    outcome: SessionOutcome | None = None,
    actor: str,
    now: datetime,
    notices: PayerNotices | None = None,
) -> Recorded:
    """Apply Stripe's view of ``info`` to its order, inside the caller's write transaction
    (and what the payer is owed for it, through ``notices``).

    Plain rows and statements built once, not ORM objects: this runs for every webhook that
    changes something (docs/design.md §8), and on SQLite each statement goes straight to the driver.
    """
    outcome = outcome or info.outcome()
    order = await _order_for_session(session, info)
    if order is None:
        return Recorded(None)
    if isinstance(session, AsyncSession) and locks_rows(session):
        await lock_link(session, order.link_id)
        order = await _order_for_session(session, info)  # read it again under the lock
        if order is None:
            return Recorded(None)
    values = {column: getattr(order, column) for column in _ORDER_WRITABLE}
    if order.stripe_session_id is None:
        # The request that created this session died before saving it; Stripe tells us now.
        values["stripe_session_id"] = info.id
        values["session_url"] = info.url
        values["session_expires_at"] = info.expires_at
    if info.payment_intent_id and not order.payment_intent_id:
        values["payment_intent_id"] = info.payment_intent_id

    current = OrderStatus(order.status)
    target = next_status(current, outcome)
    if target is None:
        if values != {column: getattr(order, column) for column in _ORDER_WRITABLE}:
            await _write_order(session, order.id, values)
        return Recorded(order.id, order.link_id)

    values["status"] = target.value
    values["updated_at"] = now
    detail = f"session {info.id}"
    duplicate_of: str | None = None
    superseded: tuple[tuple[str, str | None], ...] = ()
    if target in (OrderStatus.PAID, OrderStatus.PROCESSING):
        if target is OrderStatus.PAID:
            values["paid_at"] = now
        duplicate_of = await _earlier_payment(session, order.link_id, order.id)
        if duplicate_of:
            values["duplicate_of"] = duplicate_of
            detail += f"; duplicate payment: link already paid by {duplicate_of}"
        elif current in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
            detail += f"; paid after the order was {current.value}"
        superseded = await _other_pending(session, order.link_id, order.id)
    await _write_order(session, order.id, values)
    await run(
        session,
        _AUDIT_INSERT,
        {
            "p_at": now,
            "p_link_id": order.link_id,
            "p_order_id": order.id,
            "p_action": "order." + target.value,
            "p_from": current.value,
            "p_to": target.value,
            "p_actor": actor,
            "p_detail": detail,
        },
    )
    if notices is not None:
        await notices.settled(
            session,
            order_id=order.id,
            link_id=order.link_id,
            current=current,
            target=target,
            duplicate_of=values["duplicate_of"],
            actor=actor,
        )
    return Recorded(order.id, order.link_id, current.value, target.value, duplicate_of, superseded)


async def _write_order(
    session: AsyncSession | RowTransaction, order_id: str, values: dict[str, Any]
) -> None:
    params = {f"p_{column}": value for column, value in values.items()}
    params["p_order_id"] = order_id
    await run(session, _ORDER_UPDATE, params)


async def cancel_pending(
    session: AsyncSession,
    *,
    order_id: str,
    link_id: str,
    reason: CancelReason,
    actor: str,
    detail: str,
    now: datetime,
    only_without_session: bool = False,
    session_info: SessionInfo | None = None,
) -> bool:
    """Cancel an order (kept, with an audit entry) only if it is still pending, under its link's
    lock. The update is conditional, so a payment or another cancel that got there first wins.
    ``session_info`` fills in a session the order had not saved yet."""
    await lock_link(session, link_id)
    conditions = [Order.id == order_id, Order.status == OrderStatus.PENDING.value]
    if only_without_session:
        conditions.append(Order.stripe_session_id.is_(None))
    values: dict[str, Any] = {
        "status": OrderStatus.CANCELED.value,
        "cancel_reason": reason.value,
        "updated_at": now,
    }
    if session_info is not None:
        values["stripe_session_id"] = sa.func.coalesce(Order.stripe_session_id, session_info.id)
        values["session_url"] = sa.func.coalesce(Order.session_url, session_info.url)
    result = await session.execute(sa.update(Order).where(*conditions).values(**values))
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    audit(
        session,
        at=now,
        link_id=link_id,
        order_id=order_id,
        action="order.canceled",
        from_status=OrderStatus.PENDING.value,
        to_status=OrderStatus.CANCELED.value,
        actor=actor,
        detail=detail,
    )
    return True


async def _earlier_payment(
    session: AsyncSession | RowTransaction, link_id: str, order_id: str
) -> str | None:
    """Another order of the same link that already holds the payment, if any."""
    rows = await run(session, _EARLIER_PAYMENT, {"p_link_id": link_id, "p_order_id": order_id})
    return str(rows[0].id) if rows else None


async def _other_pending(
    session: AsyncSession | RowTransaction, link_id: str, order_id: str
) -> tuple[tuple[str, str | None], ...]:
    rows = await run(session, _OTHER_PENDING, {"p_link_id": link_id, "p_order_id": order_id})
    return tuple((row.id, row.stripe_session_id) for row in rows)


async def _lock_and_reread(session: AsyncSession, order: Order) -> None:
    """Where rows are locked (PostgreSQL), lock the order's link and read the order again under
    the lock; elsewhere the write lock was taken before the order was read (see locks_rows)."""
    if locks_rows(session):
        await lock_link(session, order.link_id)
        await session.refresh(order)


async def _order_for_charge(session: AsyncSession, obj: Mapping[str, Any]) -> Order | None:
    """Charges, refunds and disputes carry the payment intent, and its metadata names the order."""
    payment_intent = obj.get("payment_intent")
    if isinstance(payment_intent, dict):
        payment_intent = payment_intent.get("id")
    order: Order | None = None
    if isinstance(payment_intent, str):
        order = (
            await session.execute(_ORDER_BY_PAYMENT_INTENT, {"p_payment_intent": payment_intent})
        ).scalar_one_or_none()
    metadata = obj.get("metadata") or {}
    if order is None and isinstance(metadata, dict) and metadata.get("order_id"):
        order = await session.get(Order, str(metadata["order_id"]))
        if order is not None and order.payment_intent_id not in (None, payment_intent):
            return None
    return order


async def record_refund(
    session: AsyncSession,
    charge: Mapping[str, Any],
    *,
    actor: str,
    now: datetime,
    notices: PayerNotices | None = None,
) -> Recorded:
    """``charge.refunded``: a refund made anywhere (dashboard, API, the gateway itself)."""
    order = await _order_for_charge(session, charge)
    if order is None:
        return Recorded(None)
    await _lock_and_reread(session, order)
    current = OrderStatus(order.status)
    if current not in (OrderStatus.PAID, OrderStatus.REFUNDED):
        raise NotYetApplicable(f"refund for order {order.id} which is {current.value}")
    refunded = int(charge.get("amount_refunded") or 0)
    full = bool(charge.get("refunded")) or refunded >= order.amount_total
    if refunded <= order.refunded_amount and (not full or current is OrderStatus.REFUNDED):
        return Recorded(order.id, order.link_id)
    before = order.refunded_amount
    order.refunded_amount = max(order.refunded_amount, refunded)
    order.updated_at = now
    target = OrderStatus.REFUNDED if full else current
    order.status = target.value
    audit(
        session,
        at=now,
        link_id=order.link_id,
        order_id=order.id,
        action="order.refunded" if full else "order.partially_refunded",
        from_status=current.value,
        to_status=target.value if target is not current else None,
        actor=actor,
        detail=f"refunded {order.refunded_amount} of {order.amount_total} {order.currency}",
    )
    await session.flush()
    if notices is not None:
        await notices.refunded(
            session,
            order_id=order.id,
            link_id=order.link_id,
            amount=order.refunded_amount - before,
            refunded_total=order.refunded_amount,
            duplicate=order.duplicate_of is not None,
        )
    return Recorded(order.id, order.link_id, current.value, target.value)


async def record_card(
    session: AsyncSession,
    charge: Mapping[str, Any],
    *,
    actor: str,
    now: datetime,
    notices: PayerNotices | None = None,
) -> Recorded:
    """``charge.succeeded``: keep the card's last four digits and brand on the order (what the
    support desk matches "last4 amount date" against). A fact about the payment, not a change
    of its state: no audit entry, nothing owed, the order's ``updated_at`` left alone."""
    del actor, now, notices
    order = await _order_for_charge(session, charge)
    if order is None:
        return Recorded(None)
    details = charge.get("payment_method_details")
    card = details.get("card") if isinstance(details, Mapping) else None
    if not isinstance(card, Mapping) or not isinstance(card.get("last4"), str):
        return Recorded(order.id, order.link_id)
    last4, brand = card["last4"][:4], str(card.get("brand") or "")[:32] or None
    if (order.card_last4, order.card_brand) != (last4, brand):
        order.card_last4, order.card_brand = last4, brand
    return Recorded(order.id, order.link_id)


async def record_dispute(
    session: AsyncSession,
    dispute: Mapping[str, Any],
    *,
    actor: str,
    now: datetime,
    notices: PayerNotices | None = None,
) -> Recorded:
    """``charge.dispute.created``: flag the order for the admin (the payer opened the dispute:
    nothing to tell them, so ``notices`` goes unused)."""
    del notices
    order = await _order_for_charge(session, dispute)
    if order is None:
        return Recorded(None)
    await _lock_and_reread(session, order)
    if order.status not in (OrderStatus.PAID.value, OrderStatus.REFUNDED.value):
        raise NotYetApplicable(f"dispute for order {order.id} which is {order.status}")
    if order.disputed:
        return Recorded(order.id, order.link_id)
    order.disputed = True
    order.updated_at = now
    audit(
        session,
        at=now,
        link_id=order.link_id,
        order_id=order.id,
        action="order.disputed",
        actor=actor,
        detail=f"dispute {dispute.get('id')}: {dispute.get('reason') or 'no reason given'}, "
        f"{dispute.get('amount')} {dispute.get('currency') or order.currency}",
    )
    await session.flush()
    return Recorded(order.id, order.link_id, order.status, order.status)


class PaymentRecorder:
    """Records payments and carries out what must follow them at Stripe."""

    def __init__(
        self,
        db: Database,
        provider: PaymentProvider,
        clock: Clock,
        *,
        refund_duplicates: bool,
        snapshots: SnapshotCache[Any],
        notices: PayerNotices | None = None,
    ) -> None:
        self._db = db
        self._provider = provider
        self._clock = clock
        self.refund_duplicates = refund_duplicates
        # What payers are told, owed in the transactions below (and in the webhook's, which
        # records through the module functions with these same notices).
        self.notices = notices
        # The GET path's cache of links: every write here makes its link be read afresh.
        self.snapshots: SnapshotCache[Any] = snapshots

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def record(
        self, info: SessionInfo, *, actor: str, outcome: SessionOutcome | None = None
    ) -> Recorded:
        async with self._db.write() as session:
            recorded = await record_session(
                session, info, outcome=outcome, actor=actor, now=self.now(), notices=self.notices
            )
        await self.follow_up(recorded, actor=actor)
        return recorded

    async def follow_up(self, recorded: Recorded, *, actor: str) -> None:
        """After a payment was recorded: retire the link's other open attempts, and refund a
        duplicate if configured. Failures are logged; the reconciler finishes the job."""
        self.snapshots.invalidate(recorded.link_id)
        for order_id, session_id in recorded.superseded:
            try:
                await self.supersede(order_id, session_id, actor=actor)
            except (PaymentProviderUnavailable, PaymentProviderRejected) as exc:
                log.warning(
                    "could not expire a superseded session; reconcile will",
                    extra={"order_id": order_id, "error": str(exc)},
                )
        if recorded.duplicate_of and recorded.to_status == OrderStatus.PAID.value:
            try:
                await self.refund_duplicate(recorded.order_id or "", actor=actor)
            except (PaymentProviderUnavailable, PaymentProviderRejected) as exc:
                log.warning(
                    "could not refund a duplicate payment; reconcile will",
                    extra={"order_id": recorded.order_id, "error": str(exc)},
                )

    async def supersede(self, order_id: str, session_id: str | None, *, actor: str) -> None:
        """The link was paid through another attempt: retire this one so nobody pays twice."""
        del session_id  # read afresh by retire()
        await self.retire(
            order_id,
            reason=CancelReason.SUPERSEDED,
            actor=actor,
            detail="superseded: the link was paid by another attempt",
        )

    async def retire(self, order_id: str, *, reason: CancelReason, actor: str, detail: str) -> None:
        """Retire a pending attempt outside a payer's request (the reconciler, a revoke, a
        payment through another attempt): :meth:`retire_attempt` with Stripe asked directly.

        Raises :class:`PaymentProviderUnavailable` when Stripe cannot be asked: the order stays
        pending, and the reconciler tries again.
        """
        async with self._db.read() as session:
            order = await session.get(Order, order_id)
            if order is None or order.status != OrderStatus.PENDING.value:
                return
            link = await session.get(Link, order.link_id)
            items = await link_items(session, order.link_id)
        assert link is not None

        async def recover() -> SessionInfo | None:
            try:
                return await self._provider.create_session(session_request(link, items, order))
            except (PaymentProviderRejected, ValueError):
                # Stripe refuses the order's expiry as too close (or the order predates its
                # stored parameters): no session of this order can be open (a replay would have
                # returned it), so there is nothing to expire.
                return None

        await self.retire_attempt(
            order.id,
            order.link_id,
            order.stripe_session_id,
            recover=recover,
            expire=self._provider.expire_session,
            reason=reason,
            actor=actor,
            detail=detail,
        )

    async def retire_attempt(
        self,
        order_id: str,
        link_id: str,
        session_id: str | None,
        *,
        recover: Callable[[], Awaitable[SessionInfo | None]],
        expire: Callable[[str], Awaitable[SessionInfo]],
        reason: CancelReason,
        actor: str,
        detail: str,
    ) -> None:
        """The one way a pending attempt is retired (stale, superseded, revoked): make sure its
        session can no longer be paid, then :meth:`close_attempt`.

        The session is expired at Stripe; an attempt that never saved one is first asked for it
        again (``recover``: the order's idempotency key returns the session the request that
        died had made, or ``None`` when none can exist). The caller says how Stripe is asked
        (``recover``, ``expire``: a payer's request bounds them by its deadline).
        """
        if session_id:
            info: SessionInfo | None = await expire(session_id)
        else:
            info = await recover()
            if info is not None and info.outcome() is SessionOutcome.OPEN:
                info = await expire(info.id)
        await self.close_attempt(order_id, link_id, info, reason=reason, actor=actor, detail=detail)

    async def close_attempt(
        self,
        order_id: str,
        link_id: str,
        info: SessionInfo | None,
        *,
        reason: CancelReason,
        actor: str,
        detail: str,
    ) -> None:
        """End a pending attempt whose session (``info``, if it has one) was expired: record the
        payment if the payer got there first (a payment always wins; on a paid link, a
        duplicate), else cancel the order (kept, with an audit entry). A session Stripe left
        open raises :class:`PaymentProviderUnavailable` and changes nothing: two open sessions
        for one link would let a parent pay twice."""
        match retirement(info):
            case Retirement.RECORD:
                assert info is not None
                await self.record(info, actor=actor)
                return
            case Retirement.STILL_OPEN:
                raise PaymentProviderUnavailable("Stripe did not expire the session")
        async with self._db.write() as session:
            await cancel_pending(
                session,
                order_id=order_id,
                link_id=link_id,
                reason=reason,
                actor=actor,
                detail=detail
                + (f"; session {info.id} {info.status}" if info else "; no session was created"),
                now=self.now(),
                session_info=info,
            )
        self.snapshots.invalidate(link_id)  # after the commit, never before

    async def refund_duplicate(self, order_id: str, *, actor: str) -> bool:
        """Refund a flagged duplicate payment once (idempotency key from the order)."""
        if not self.refund_duplicates:
            return False
        async with self._db.read() as session:
            order = await session.get(Order, order_id)
        if (
            order is None
            or not order.duplicate_of
            or order.refund_id
            or order.status != OrderStatus.PAID.value
            or not order.payment_intent_id
        ):
            return False
        refund = await self._provider.refund(
            order.payment_intent_id,
            idempotency_key=f"gateway-refund-{order.id}",
            metadata={"order_id": order.id, "reason": "duplicate_payment"},
        )
        async with self._db.write() as session:
            await lock_link(session, order.link_id)
            row = await session.get(Order, order_id)
            if row is None or row.refund_id:
                return False
            now = self.now()
            row.refund_id = refund.id
            from_status = row.status
            before = row.refunded_amount
            row.refunded_amount = max(row.refunded_amount, refund.amount)
            if row.refunded_amount >= row.amount_total:
                row.status = OrderStatus.REFUNDED.value
            row.updated_at = now
            audit(
                session,
                at=now,
                link_id=row.link_id,
                order_id=row.id,
                action="order.refunded",
                from_status=from_status,
                to_status=row.status,
                actor=actor,
                detail=f"duplicate payment refunded automatically ({refund.id}, "
                f"{refund.amount} {row.currency})",
            )
            if self.notices is not None:
                await self.notices.refunded(
                    session,
                    order_id=row.id,
                    link_id=row.link_id,
                    amount=row.refunded_amount - before,
                    refunded_total=row.refunded_amount,
                    duplicate=True,
                )
        return True
