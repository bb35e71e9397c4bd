"""Refunds a person asks for (issue 16 item 3): ``gateway orders refund``, ``POST
/admin/api/orders/{id}/refund`` and the console's button all call :meth:`Refunds.refund`.

What can be refunded is computed from what is stored: the order's total less what is recorded
as refunded (``orders.refunded_amount``, which the webhook, the duplicate refunds and this
service keep, and the ``refunds`` rows that succeeded). The form sends back the refundable amount
it showed (``expected_refundable``): when it no longer matches, somebody refunded in between and
the answer is a 409 saying how much, so two treasurers pressing at once refund once.

Writing the intent before calling Stripe: a ``refunds`` row (unique per order and refundable
amount, so two requests that saw the same amount meet on it) is committed, claimed for
:data:`REFUND_CLAIM`, and only then is Stripe asked, with an idempotency key derived from the
order, the refundable amount and the row's ``attempt``. A second request while the first is in
flight gets a 409 (``refund_in_progress``); a retry after the first failed continues the same row.

Stripe keeps a 500 under its idempotency key and replays it for 24 hours ("refund 500 replayed
under its key"): retrying with that key would answer 500 forever, and a new key could refund a
second time if the 500 had been made after the refund. So after any answer that is not a clear
refusal, the refunds Stripe holds for the payment are looked up (``GET /v1/refunds``, matched on
the row id in their metadata) before anything else: found, it is recorded; not found after
Stripe answered a 500, the row is ``failed`` and the next try moves ``attempt`` on (a new key);
not found after Stripe did not answer at all (it may still be making it), the row stays
``unknown`` and claimed, and is looked up again when the claim ends, before any new refund of the
order. Nothing is recorded as refunded that Stripe did not do.

The payer is owed the "refund issued" message (``PayerNotices.refunded``) in the transaction that
records the refund, with the subject the webhook's ``charge.refunded`` also uses (the order and
its new refunded total), so the webhook that follows owes nothing more.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.adapters.db.dialects import lock_link
from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Order, Refund
from gateway.clock import Clock
from gateway.domain.errors import (
    GatewayError,
    NotFound,
    PaymentProviderRejected,
    PaymentProviderUnavailable,
    ValidationFailed,
)
from gateway.domain.links import text_problem
from gateway.domain.money import AmountError, format_minor, to_minor
from gateway.domain.orders import OrderStatus
from gateway.domain.payments import PaymentProvider, RefundInfo, ServerErrorKept
from gateway.domain.text import Text, message_of
from gateway.services.audit import audit
from gateway.services.payments import PaymentRecorder

log = logging.getLogger(__name__)

# Longer than any one Stripe call with the SDK's own retries: while a row is claimed nobody
# else asks Stripe for it, and a row whose answer was lost is looked up only after it.
REFUND_CLAIM = timedelta(minutes=5)
MAX_REASON = 500
# The metadata key that ties a Stripe refund to its row here (looked up after a lost answer).
METADATA_KEY = "gateway_refund"


class MoneyRefused(GatewayError):
    """What the order's or link's state does not allow now (an HTTP 409): ``code`` is stable
    (``already_refunded``, ``refund_in_progress``, ``not_refundable``, ``already_paid``,
    ``wrong_state``), the message says what is so and what to do."""

    def __init__(self, code: str, message: Text, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


class StripeFailed(GatewayError):
    """Stripe refused (``status`` 502, ``stripe_refused``) or could not be asked (503,
    ``payment_provider_unavailable``); the message says exactly what was recorded."""

    def __init__(self, status: int, code: str, message: Text, *, reference: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.reference = reference


@dataclass(frozen=True, slots=True)
class RefundResult:
    refund_id: str
    order_id: str
    link_id: str
    amount: int
    currency: str
    refunded_total: int  # of the order, after this refund
    refundable: int  # what is left
    stripe_refund_id: str
    order_status: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.refund_id,
            "order_id": self.order_id,
            "link_id": self.link_id,
            "amount": self.amount,
            "currency": self.currency,
            "amount_display": format_minor(self.amount, self.currency),
            "refunded_total": self.refunded_total,
            "refundable": self.refundable,
            "refundable_display": format_minor(self.refundable, self.currency),
            "stripe_refund_id": self.stripe_refund_id,
            "order_status": self.order_status,
        }


@dataclass(frozen=True, slots=True)
class Refundable:
    """What the form shows before a refund (and sends back as the guard)."""

    order_id: str
    link_id: str
    amount_total: int
    refunded: int
    refundable: int
    currency: str
    method: str
    status: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "link_id": self.link_id,
            "amount_total": self.amount_total,
            "refunded": self.refunded,
            "refundable": self.refundable,
            "currency": self.currency,
            "refundable_display": format_minor(self.refundable, self.currency),
            "method": self.method,
            "status": self.status,
        }


def check_reason(reason: object, field: str = "reason") -> str:
    """A reason a person gave: required, at most :data:`MAX_REASON` characters, plain text."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed({field: Text("a reason is required")})
    if len(reason) > MAX_REASON:
        raise ValidationFailed({field: Text("at most %(count)s characters", count=MAX_REASON)})
    problem = text_problem(reason)
    if problem:
        raise ValidationFailed({field: problem})
    return reason.strip()


def parse_amount(amount: object, currency: str, field: str = "amount") -> int:
    """An amount a person typed, read by the domain's money rules (ambiguous ones refused)."""
    if isinstance(amount, bool) or not isinstance(amount, str | int):
        raise ValidationFailed({field: Text('an amount written like "50.00"')})
    try:
        return to_minor(str(amount), currency)
    except AmountError as exc:
        raise ValidationFailed({field: message_of(exc)}) from None


def refund_key(order_id: str, refundable_before: int, attempt: int) -> str:
    """The Stripe idempotency key of a refund: one per order, refundable amount and attempt."""
    return f"gateway-refund-{order_id}-{refundable_before}-{attempt}"


_REFUNDED_ROWS = sa.select(sa.func.coalesce(sa.func.sum(Refund.amount), 0)).where(
    Refund.order_id == sa.bindparam("p_order_id"), Refund.status == "succeeded"
)


async def _refunded(session: AsyncSession, order: Order) -> int:
    rows = int((await session.execute(_REFUNDED_ROWS, {"p_order_id": order.id})).scalar_one())
    return max(order.refunded_amount, rows)


class Refunds:
    def __init__(
        self,
        db: Database,
        provider: PaymentProvider,
        clock: Clock,
        recorder: PaymentRecorder,
        *,
        claim: timedelta = REFUND_CLAIM,
    ) -> None:
        self._db = db
        self._provider = provider
        self._clock = clock
        self._recorder = recorder
        self._claim = claim

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def refundable(self, order_id: str) -> Refundable:
        """What is left to refund of an order (404 for an unknown one)."""
        async with self._db.read() as session:
            order = await session.get(Order, order_id)
            if order is None:
                raise NotFound(order_id)
            refunded = await _refunded(session, order)
        return Refundable(
            order_id=order.id,
            link_id=order.link_id,
            amount_total=order.amount_total,
            refunded=refunded,
            refundable=max(0, order.amount_total - refunded)
            if _refundable_state(order) is None
            else 0,
            currency=order.currency,
            method=order.method,
            status=order.status,
        )

    async def refund(
        self,
        order_id: str,
        *,
        amount: object | None,
        reason: object,
        expected_refundable: int | None,
        actor: str,
    ) -> RefundResult:
        """Refund ``amount`` (major units as typed; ``None``: all that is refundable) of a paid
        order. See the module docstring for what each answer means."""
        reason_text = check_reason(reason)
        if expected_refundable is not None and (
            isinstance(expected_refundable, bool) or not isinstance(expected_refundable, int)
        ):
            raise ValidationFailed({"expected_refundable": Text("expected an integer")})
        async with self._db.read() as session:
            found = await session.get(Order, order_id)
        if found is None:
            raise NotFound(order_id)
        await self.settle_unfinished(order_id)
        row_id, key, minor, refundable, payment_intent = await self._write_intent(
            found.link_id, order_id, amount, reason_text, expected_refundable, actor
        )
        metadata = {"order_id": order_id, "link_id": found.link_id, METADATA_KEY: row_id}
        try:
            info = await self._provider.refund(
                payment_intent, idempotency_key=key, metadata=metadata, amount=minor
            )
        except PaymentProviderRejected as exc:
            await self._end(row_id, "failed", str(exc))
            message = Text(
                "Stripe refused the refund: %(error)s. Nothing was refunded; %(refundable)s "
                "is still refundable",
                error=str(exc),
                refundable=format_minor(refundable, found.currency),
            )
            raise StripeFailed(502, "stripe_refused", message, reference=exc.reference) from exc
        except PaymentProviderUnavailable as exc:
            info = await self._after_lost_answer(row_id, payment_intent, exc, found.currency)
        return await self._record(row_id, info)

    async def _write_intent(
        self,
        link_id: str,
        order_id: str,
        amount: object | None,
        reason: str,
        expected: int | None,
        actor: str,
    ) -> tuple[str, str, int, int, str]:
        """Decide under the link's lock and commit the row before Stripe is called."""
        now = self.now()
        async with self._db.write() as session:
            await lock_link(session, link_id)
            order = await session.get(Order, order_id)
            assert order is not None
            refused = _refundable_state(order)
            if refused is not None:
                raise MoneyRefused("not_refundable", refused, order_status=order.status)
            assert order.payment_intent_id is not None
            currency = order.currency
            refunded = await _refunded(session, order)
            refundable = order.amount_total - refunded
            shown = {
                "refunded": format_minor(refunded, currency),
                "refundable": format_minor(max(refundable, 0), currency),
            }
            if expected is not None and expected != refundable:
                raise MoneyRefused(
                    "already_refunded",
                    Text("already refunded %(refunded)s; refundable now %(refundable)s", **shown),
                    refunded=refunded,
                    refundable=max(refundable, 0),
                )
            if refundable <= 0:
                raise MoneyRefused(
                    "already_refunded",
                    Text("already refunded in full (%(refunded)s)", **shown),
                    refunded=refunded,
                    refundable=0,
                )
            # No amount (or an empty form field): all that is still refundable.
            minor = refundable if amount in (None, "") else parse_amount(amount, currency)
            if minor > refundable:
                raise ValidationFailed(
                    {
                        "amount": Text(
                            "%(amount)s is more than the %(refundable)s still refundable",
                            amount=format_minor(minor, currency),
                            refundable=shown["refundable"],
                        )
                    }
                )
            row = (
                await session.execute(
                    sa.select(Refund).where(
                        Refund.order_id == order_id, Refund.refundable_before == refundable
                    )
                )
            ).scalar_one_or_none()
            if row is not None and row.status != "failed":
                # In flight (or its answer lost and not yet looked up: settle_unfinished ran
                # just before, so its claim still holds).
                raise MoneyRefused(
                    "refund_in_progress",
                    Text(
                        "a refund of %(amount)s of this order is being made now; %(refundable)s "
                        "stays refundable until it is done: look again in a few minutes",
                        amount=format_minor(row.amount, currency),
                        refundable=shown["refundable"],
                    ),
                    refundable=refundable,
                )
            if row is None:
                row = Refund(
                    id="rf_" + secrets.token_urlsafe(12),
                    order_id=order_id,
                    link_id=link_id,
                    currency=currency,
                    refundable_before=refundable,
                    attempt=0,
                )
                session.add(row)
            else:
                row.attempt += 1  # the last one made nothing at Stripe: a fresh key
            row.amount = minor
            row.status = "requested"
            row.claimed_until = now + self._claim
            row.reason = reason
            row.actor = actor[:100]
            row.requested_at = now
            row.completed_at = None
            row.error = None
            audit(
                session,
                at=now,
                link_id=link_id,
                order_id=order_id,
                action="refund.requested",
                actor=actor,
                detail=f"{format_minor(minor, currency)} of"
                f" {format_minor(order.amount_total, currency)}"
                f" ({shown['refundable']} refundable); reason: {reason}",
            )
            await session.flush()
            return (
                row.id,
                refund_key(order_id, refundable, row.attempt),
                minor,
                refundable,
                order.payment_intent_id,
            )

    async def _after_lost_answer(
        self, row_id: str, payment_intent: str, exc: PaymentProviderUnavailable, currency: str
    ) -> RefundInfo:
        """Stripe did not say yes or no: find out from its list of the payment's refunds."""
        try:
            found = await self._find_at_stripe(row_id, payment_intent)
        except PaymentProviderUnavailable:
            found = None
            looked = False
        else:
            looked = True
        if found is not None:
            return found
        if looked and isinstance(exc, ServerErrorKept):
            # Stripe answered 500 and holds no refund of this row: nothing was made, and the
            # key now only replays that 500. The next try uses the next attempt's key.
            await self._end(row_id, "failed", str(exc))
            message = Text(
                "Stripe answered with an error (reference %(reference)s) and made no refund. "
                "Nothing was refunded; try again",
                reference=exc.reference,
            )
        else:
            # No answer at all: Stripe may still be making it. Looked up again after the claim.
            await self._end(row_id, "unknown", str(exc), keep_claim=True)
            message = Text(
                "Stripe did not answer (reference %(reference)s): whether the refund was made is "
                "not known yet. Nothing is recorded as refunded; the gateway asks Stripe before "
                "any new refund of this order (try again in a few minutes)",
                reference=exc.reference,
            )
        raise StripeFailed(
            503, "payment_provider_unavailable", message, reference=exc.reference
        ) from exc

    async def _find_at_stripe(self, row_id: str, payment_intent: str) -> RefundInfo | None:
        for refund in await self._provider.list_refunds(payment_intent):
            if refund.metadata.get(METADATA_KEY) == row_id and refund.status not in (
                "failed",
                "canceled",
            ):
                return refund
        return None

    async def settle_unfinished(self, order_id: str | None = None) -> list[str]:
        """Rows whose answer was lost (``unknown``) or whose request died (``requested``), once
        their claim has ended: recorded if Stripe made the refund, else ``failed``. Raises
        :class:`StripeFailed` when Stripe cannot be asked (nothing new may be refunded then)."""
        now = self.now()
        query = sa.select(Refund.id, Refund.order_id).where(
            Refund.status.in_(["requested", "unknown"]), Refund.claimed_until <= now
        )
        if order_id is not None:
            query = query.where(Refund.order_id == order_id)
        async with self._db.read() as session:
            rows = (await session.execute(query)).all()
            intents = {
                order.id: order.payment_intent_id
                for order in (
                    await session.execute(
                        sa.select(Order).where(Order.id.in_(sorted({r.order_id for r in rows})))
                    )
                ).scalars()
            }
        settled: list[str] = []
        for row_id, row_order in rows:
            try:
                found = await self._find_at_stripe(row_id, intents.get(row_order) or "")
            except PaymentProviderUnavailable as exc:
                message = Text(
                    "an earlier refund of this order got no answer from Stripe, and Stripe "
                    "cannot be asked now (reference %(reference)s): nothing new was refunded; "
                    "try again later",
                    reference=exc.reference,
                )
                raise StripeFailed(
                    503, "payment_provider_unavailable", message, reference=exc.reference
                ) from exc
            if found is not None:
                await self._record(row_id, found)
            else:
                await self._end(row_id, "failed", "Stripe holds no refund for it")
            settled.append(row_id)
        return settled

    async def _end(self, row_id: str, status: str, error: str, *, keep_claim: bool = False) -> None:
        now = self.now()
        async with self._db.write() as session:
            row = await session.get(Refund, row_id)
            if row is None or row.status == "succeeded":
                return
            row.status = status
            row.error = error[:500]
            row.claimed_until = now + self._claim if keep_claim else now
            audit(
                session,
                at=now,
                link_id=row.link_id,
                order_id=row.order_id,
                action="refund.failed" if status == "failed" else "refund.unknown",
                actor=row.actor,
                detail=f"{format_minor(row.amount, row.currency)}: {error[:300]}",
            )

    async def _record(self, row_id: str, info: RefundInfo) -> RefundResult:
        """Stripe made the refund: the row, the order and the payer's message, in one
        transaction (safe to repeat: a recorded row changes nothing)."""
        now = self.now()
        async with self._db.read() as session:
            peek = await session.get(Refund, row_id)
        assert peek is not None
        async with self._db.write() as session:
            await lock_link(session, peek.link_id)
            row = await session.get(Refund, row_id)
            order = await session.get(Order, peek.order_id)
            assert row is not None
            assert order is not None
            total = order.amount_total - row.refundable_before + info.amount
            if row.status != "succeeded":
                row.status = "succeeded"
                row.stripe_refund_id = info.id
                row.amount = info.amount
                row.completed_at = now
                row.claimed_until = None
                row.error = None
                before = order.refunded_amount
                from_status = order.status
                if total > before:
                    order.refunded_amount = total
                    if total >= order.amount_total:
                        order.status = OrderStatus.REFUNDED.value
                    order.updated_at = now
                full = order.refunded_amount >= order.amount_total
                audit(
                    session,
                    at=now,
                    link_id=row.link_id,
                    order_id=order.id,
                    action="order.refunded" if full else "order.partially_refunded",
                    from_status=from_status,
                    to_status=order.status if order.status != from_status else None,
                    actor=row.actor,
                    detail=f"refund {info.id}: {format_minor(info.amount, order.currency)}"
                    f" ({format_minor(order.refunded_amount, order.currency)} of"
                    f" {format_minor(order.amount_total, order.currency)} refunded);"
                    f" reason: {row.reason}",
                )
                await session.flush()
                notices = self._recorder.notices
                if notices is not None and total > before:
                    await notices.refunded(
                        session,
                        order_id=order.id,
                        link_id=order.link_id,
                        amount=total - before,
                        refunded_total=total,
                        duplicate=order.duplicate_of is not None,
                    )
            result = RefundResult(
                refund_id=row.id,
                order_id=order.id,
                link_id=order.link_id,
                amount=row.amount,
                currency=order.currency,
                refunded_total=order.refunded_amount,
                refundable=max(0, order.amount_total - order.refunded_amount),
                stripe_refund_id=row.stripe_refund_id or info.id,
                order_status=order.status,
            )
        self._recorder.snapshots.invalidate(result.link_id)
        return result


def _refundable_state(order: Order) -> Text | None:
    """Why this order cannot be refunded through Stripe (None: it can)."""
    if order.method != "stripe":
        return Text(
            "this order was paid outside Stripe (%(method)s): refund it the same way",
            method=order.method,
        )
    if order.status not in (OrderStatus.PAID.value, OrderStatus.REFUNDED.value):
        return Text(
            "this order is %(status)s: only a paid order can be refunded", status=order.status
        )
    if not order.payment_intent_id:
        return Text("Stripe's payment of this order is not known here yet: reconcile first")
    return None
