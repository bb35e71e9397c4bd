"""Orphan payments (issue 16 items 2 and 3): money Stripe took through this gateway's checkout
with no order here to show it, e.g. a payment made on a session whose order row was lost (a
database restored from a backup taken before the Pay press).

**Found** by a reconcile step (:meth:`OrphanPayments.find`): Stripe's payment intents created
within ``reconcile.lookback`` that succeeded and carry this gateway's metadata (``order_id`` /
``link_id``, set on every session's ``payment_intent_data``), for which no order here has that
payment intent or that order id. Each is recorded once in ``orphan_payments`` (unique per payment
intent) with its Stripe ids, amount, currency, the link it names and when it was found.

**Attached** by a person (:meth:`OrphanPayments.attach`, ``gateway orders attach``, ``POST
/admin/api/orphans/{id}/attach``), with a reason: the order row is rebuilt from the session
(its id from the metadata, as a canceled attempt) and the payment recorded on it through
:func:`gateway.services.payments.record_session`, the transition the webhook makes, which owes
the receipt (saying the payment went through after all) or, on a link paid meanwhile, the
paid-twice message. Attaching twice changes nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa

from gateway.adapters.db.dialects import any_of, lock_link, locks_rows
from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Link, Order, OrphanPayment
from gateway.clock import Clock
from gateway.domain.errors import NotFound
from gateway.domain.money import format_minor
from gateway.domain.orders import OrderStatus, SessionOutcome
from gateway.domain.payments import PaymentIntentInfo, PaymentProvider, SessionInfo
from gateway.domain.text import Text
from gateway.services.audit import audit
from gateway.services.ids import new_order_id
from gateway.services.payments import PaymentRecorder, Recorded, record_session
from gateway.services.refunds import MoneyRefused, check_reason

# Payment intents checked against the database per query.
_BATCH = 200


def _col(column: object) -> sa.ColumnElement[Any]:
    return cast(sa.ColumnElement[Any], column)


def orphan_json(orphan: OrphanPayment) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat(timespec="seconds") if value else None

    return {
        "id": orphan.id,
        "payment_intent_id": orphan.payment_intent_id,
        "session_id": orphan.session_id,
        "amount": orphan.amount,
        "currency": orphan.currency,
        "amount_display": format_minor(orphan.amount, orphan.currency),
        "link_id": orphan.link_id,
        "order_id": orphan.order_id,
        "paid_at": iso(orphan.paid_at),
        "found_at": iso(orphan.found_at),
        "attached": orphan.attached_at is not None,
        "attached_at": iso(orphan.attached_at),
        "attached_by": orphan.attached_by,
        "attach_reason": orphan.attach_reason,
        "attached_order_id": orphan.attached_order_id,
    }


@dataclass(frozen=True, slots=True)
class Attached:
    orphan: OrphanPayment
    order_id: str
    changed: bool  # False: it was attached already
    duplicate_of: str | None  # the link was paid meanwhile: this payment is a duplicate

    def as_dict(self) -> dict[str, Any]:
        return {
            **orphan_json(self.orphan),
            "order_id": self.order_id,
            "changed": self.changed,
            "duplicate_of": self.duplicate_of,
        }


class OrphanPayments:
    def __init__(
        self,
        db: Database,
        provider: PaymentProvider,
        clock: Clock,
        recorder: PaymentRecorder,
        *,
        lookback: timedelta,
    ) -> None:
        self._db = db
        self._provider = provider
        self._clock = clock
        self._recorder = recorder
        self._lookback = lookback

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    # --- finding (the reconciler) -------------------------------------------------------------

    async def find(self) -> list[str]:
        """Record the orphan payments Stripe lists now; returns the ids of those newly found."""
        now = self.now()
        start = int((now - self._lookback).timestamp())
        intents = [
            intent
            for intent in await self._provider.list_payment_intents(created_from=start)
            if intent.status == "succeeded" and (intent.gateway_order_id or intent.gateway_link_id)
        ]
        unknown = await self._without_order(intents)
        found: list[str] = []
        for intent in unknown:
            session = await self._provider.session_of_payment_intent(intent.id)
            orphan_id = await self._record_found(intent, session, now)
            if orphan_id is not None:
                found.append(orphan_id)
        return found

    async def _without_order(self, intents: list[PaymentIntentInfo]) -> list[PaymentIntentInfo]:
        """The intents no order (by payment intent or by the order id they name) and no orphan
        row already stands for."""
        known: set[str] = set()
        async with self._db.read() as session:
            postgres = locks_rows(session)
            for i in range(0, len(intents), _BATCH):
                batch = intents[i : i + _BATCH]
                ids = [intent.id for intent in batch]
                order_ids = [intent.gateway_order_id or "" for intent in batch]
                known.update(
                    str(value)
                    for value in (
                        await session.execute(
                            sa.select(Order.payment_intent_id).where(
                                any_of(_col(Order.payment_intent_id), ids, postgres=postgres)
                            )
                        )
                    ).scalars()
                )
                named = set(
                    (
                        await session.execute(
                            sa.select(Order.id).where(
                                any_of(_col(Order.id), order_ids, postgres=postgres)
                            )
                        )
                    ).scalars()
                )
                known.update(intent.id for intent in batch if intent.gateway_order_id in named)
                known.update(
                    (
                        await session.execute(
                            sa.select(OrphanPayment.payment_intent_id).where(
                                any_of(
                                    _col(OrphanPayment.payment_intent_id), ids, postgres=postgres
                                )
                            )
                        )
                    ).scalars()
                )
        return [intent for intent in intents if intent.id not in known]

    async def _record_found(
        self, intent: PaymentIntentInfo, session_info: SessionInfo | None, now: datetime
    ) -> str | None:
        link_id = intent.gateway_link_id
        if session_info is not None and not link_id:
            link_id = session_info.metadata.get("link_id")
        async with self._db.write() as session:
            exists = (
                await session.execute(
                    sa.select(OrphanPayment.id).where(OrphanPayment.payment_intent_id == intent.id)
                )
            ).scalar_one_or_none()
            if exists is not None:
                return None
            orphan = OrphanPayment(
                id="op_" + secrets.token_urlsafe(12),
                payment_intent_id=intent.id,
                session_id=session_info.id if session_info else None,
                amount=intent.amount,
                currency=intent.currency,
                link_id=(link_id or "")[:32] or None,
                order_id=(intent.gateway_order_id or "")[:32] or None,
                paid_at=datetime.fromtimestamp(intent.created, UTC) if intent.created else None,
                found_at=now,
            )
            session.add(orphan)
            audit(
                session,
                at=now,
                link_id=orphan.link_id,
                order_id=orphan.order_id,
                action="orphan.found",
                actor="reconciler",
                detail=f"Stripe payment {intent.id}"
                f" ({format_minor(intent.amount, intent.currency or 'usd')}) has no order here;"
                f" orphan {orphan.id}",
            )
            return orphan.id

    # --- listing and attaching (a person) -----------------------------------------------------

    async def list(self, *, attached: bool | None = None, limit: int = 500) -> list[OrphanPayment]:
        """Newest first; ``attached`` False: the ones still waiting, True: the attached ones."""
        query = sa.select(OrphanPayment).order_by(
            OrphanPayment.found_at.desc(), OrphanPayment.id.desc()
        )
        if attached is not None:
            column = OrphanPayment.attached_at
            query = query.where(column.is_not(None) if attached else column.is_(None))
        async with self._db.read() as session:
            return list((await session.execute(query.limit(limit))).scalars())

    async def get(self, orphan_id: str) -> OrphanPayment:
        async with self._db.read() as session:
            orphan = await session.get(OrphanPayment, orphan_id)
        if orphan is None:
            raise NotFound(orphan_id)
        return orphan

    async def attach(self, orphan_id: str, *, reason: object, actor: str) -> Attached:
        reason_text = check_reason(reason)
        orphan = await self.get(orphan_id)
        if orphan.attached_at is not None:
            return self._attached(orphan, changed=False)
        async with self._db.read() as session:
            link = await session.get(Link, orphan.link_id) if orphan.link_id else None
        if link is None:
            raise MoneyRefused(
                "wrong_state",
                Text(
                    "this payment names no link known here (%(link)s): refund it at Stripe or "
                    "issue a link and record it there",
                    link=orphan.link_id or "-",
                ),
            )
        if orphan.session_id:
            info: SessionInfo | None = await self._provider.retrieve_session(orphan.session_id)
        else:
            info = await self._provider.session_of_payment_intent(orphan.payment_intent_id)
        if info is None or info.outcome() is not SessionOutcome.PAID:
            raise MoneyRefused(
                "wrong_state",
                Text("Stripe has no paid checkout session for this payment: nothing to attach"),
            )
        recorded = await self._attach(orphan_id, link.id, info, reason_text, actor)
        if recorded is not None:
            await self._recorder.follow_up(recorded, actor=actor)
        return self._attached(
            await self.get(orphan_id),
            changed=recorded is not None,
            duplicate_of=recorded.duplicate_of if recorded else None,
        )

    async def _attach(
        self, orphan_id: str, link_id: str, info: SessionInfo, reason: str, actor: str
    ) -> Recorded | None:
        now = self.now()
        async with self._db.write() as session:
            await lock_link(session, link_id)
            orphan = await session.get(OrphanPayment, orphan_id)
            assert orphan is not None
            if orphan.attached_at is not None:
                return None
            order = (
                await session.execute(
                    sa.select(Order).where(Order.payment_intent_id == orphan.payment_intent_id)
                )
            ).scalar_one_or_none()
            if order is None and info.order_id:
                order = await session.get(Order, info.order_id)
            if order is None:
                # The lost row, rebuilt as the attempt it was (canceled: the payer's page never
                # showed this payment), then paid by the webhook's own transition.
                wanted = info.order_id if info.order_id and len(info.order_id) <= 32 else None
                order = Order(
                    id=wanted or new_order_id(),
                    link_id=link_id,
                    status=OrderStatus.CANCELED.value,
                    amount_total=info.amount_total or orphan.amount,
                    currency=orphan.currency,
                    created_at=info.created_at,
                    updated_at=now,
                    stripe_session_id=info.id,
                    session_expires_at=info.expires_at,
                )
                session.add(order)
                audit(
                    session,
                    at=now,
                    link_id=link_id,
                    order_id=order.id,
                    action="order.restored",
                    to_status=OrderStatus.CANCELED.value,
                    actor=actor,
                    detail=f"rebuilt from orphan payment {orphan.id} (session {info.id},"
                    f" payment {orphan.payment_intent_id}); reason: {reason}",
                )
                await session.flush()
            recorded = await record_session(
                session, info, actor=actor, now=now, notices=self._recorder.notices
            )
            orphan.attached_at = now
            orphan.attached_by = actor[:100]
            orphan.attach_reason = reason
            orphan.attached_order_id = order.id
            audit(
                session,
                at=now,
                link_id=link_id,
                order_id=order.id,
                action="orphan.attached",
                actor=actor,
                detail=f"orphan {orphan.id} ({format_minor(orphan.amount, orphan.currency)})"
                f" attached to order {order.id}; reason: {reason}",
            )
        return recorded

    def _attached(
        self, orphan: OrphanPayment, *, changed: bool, duplicate_of: str | None = None
    ) -> Attached:
        return Attached(
            orphan=orphan,
            order_id=orphan.attached_order_id or "",
            changed=changed,
            duplicate_of=duplicate_of,
        )
