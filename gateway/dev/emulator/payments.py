"""Money moving: paying a session (card, declined card, delayed method), settling a delayed
payment, refunds and disputes, with the events Stripe sends for each."""

from __future__ import annotations

from typing import Any, Literal

from gateway.dev.emulator import objects
from gateway.dev.emulator.errors import StripeError
from gateway.dev.emulator.events import EventLog
from gateway.dev.emulator.params import Params, get_int, get_metadata, get_str
from gateway.dev.emulator.store import NO_REQUEST, RequestContext, Store

Obj = dict[str, Any]
Outcome = Literal["paid", "async", "declined"]

# "Pay later" stands for a delayed-notification method: the session completes unpaid and the
# money arrives (or not) days later.
_ASYNC_METHOD = "sepa_debit"
_REFUND_REASONS = {"duplicate", "fraudulent", "requested_by_customer"}


class CardDeclined(StripeError):
    def __init__(self) -> None:
        super().__init__(
            402,
            "card_error",
            "Your card was declined.",
            code="card_declined",
            decline_code="generic_decline",
        )


class Payments:
    def __init__(self, store: Store, events: EventLog) -> None:
        self._store = store
        self._events = events

    def pay(self, session_id: str, outcome: Outcome) -> Obj:
        """The payer submits the hosted page. Raises ``CardDeclined`` for a declined card
        (the session stays open, nothing is recorded but the attempt)."""
        store = self._store
        session = store.session(session_id)
        if session["status"] != "open":
            raise StripeError.invalid(
                f"This Checkout Session is {session['status']} and can no longer be paid.",
                param="session",
                code="checkout_session_not_open",
            )
        extras = store.session_extras[session_id]
        if outcome == "declined":
            extras.declines += 1
            raise CardDeclined()
        if outcome not in ("paid", "async"):
            raise StripeError.invalid(f"Unknown outcome {outcome!r}.", param="outcome")
        now = store.now()
        method_type = "card" if outcome == "paid" else _ASYNC_METHOD
        email = session["customer_email"] or "payer@example.com"
        pi_id = store.ids.new("pi_")
        charge_id = store.ids.new("ch_")
        payment_method = store.ids.new("pm_")
        metadata = dict(extras.payment_intent_metadata)
        intent = objects.payment_intent(
            id=pi_id,
            created=now,
            amount=session["amount_total"],
            currency=session["currency"],
            metadata=metadata,
            description=extras.payment_intent_description,
            status="succeeded" if outcome == "paid" else "processing",
            latest_charge=charge_id,
            payment_method=payment_method,
            method_type=method_type,
            receipt_email=None,
        )
        charge = objects.charge(
            id=charge_id,
            created=now,
            amount=session["amount_total"],
            currency=session["currency"],
            payment_intent=pi_id,
            payment_method=payment_method,
            method_type=method_type,
            # Stripe copies the payment intent's metadata onto the charge it creates.
            metadata=dict(metadata),
            status="succeeded" if outcome == "paid" else "pending",
            description=extras.payment_intent_description,
            receipt_email=None,
            billing_email=email,
        )
        store.payment_intents[pi_id] = intent
        store.charges[charge_id] = charge
        store.session_by_payment_intent[pi_id] = session_id
        session.update(
            status="complete",
            payment_status="paid" if outcome == "paid" else "unpaid",
            payment_intent=pi_id,
            customer_details=objects.customer_details(email),
            payment_method_types=[method_type],
        )
        if outcome == "paid":
            self._events.emit("charge.succeeded", charge, NO_REQUEST)
            self._events.emit("payment_intent.succeeded", intent, NO_REQUEST)
        else:
            self._events.emit("charge.pending", charge, NO_REQUEST)
            self._events.emit("payment_intent.processing", intent, NO_REQUEST)
        self._events.emit("checkout.session.completed", session, NO_REQUEST)
        return session

    def settle(self, payment_intent_or_session_id: str, succeed: bool) -> Obj:
        """The delayed payment of a "pay later" session arrives, or fails."""
        store = self._store
        pi_id = payment_intent_or_session_id
        if pi_id.startswith("cs_"):
            pi_id = store.session(pi_id)["payment_intent"] or ""
            if not pi_id:
                raise StripeError.invalid(
                    f"Checkout Session {payment_intent_or_session_id} has no payment to settle.",
                    param="session",
                )
        intent = store.payment_intent(pi_id)
        if intent["status"] != "processing":
            raise StripeError.invalid(
                f"PaymentIntent {pi_id} is {intent['status']}, not processing.",
                param="intent",
                code="payment_intent_unexpected_state",
            )
        charge = store.charges[intent["latest_charge"]]
        session = store.sessions[store.session_by_payment_intent[pi_id]]
        if succeed:
            intent.update(status="succeeded", amount_received=intent["amount"])
            charge.update(status="succeeded", paid=True, captured=True)
            charge["amount_captured"] = charge["amount"]
            session["payment_status"] = "paid"
            self._events.emit("charge.succeeded", charge, NO_REQUEST)
            self._events.emit("payment_intent.succeeded", intent, NO_REQUEST)
            self._events.emit("checkout.session.async_payment_succeeded", session, NO_REQUEST)
        else:
            error = {
                "type": "invalid_request_error",
                "code": "payment_method_provider_decline",
                "message": "The payment was declined by the bank.",
            }
            intent.update(status="requires_payment_method", last_payment_error=error)
            charge.update(
                status="failed",
                failure_code="payment_method_provider_decline",
                failure_message="The payment was declined by the bank.",
            )
            self._events.emit("charge.failed", charge, NO_REQUEST)
            self._events.emit("payment_intent.payment_failed", intent, NO_REQUEST)
            self._events.emit("checkout.session.async_payment_failed", session, NO_REQUEST)
        return intent

    def create_refund(self, params: Params, ctx: RequestContext) -> Obj:
        """``POST /v1/refunds``: by ``payment_intent`` or ``charge``, in full or in part."""
        pi_id = get_str(params, "payment_intent")
        charge_id = get_str(params, "charge")
        if pi_id and charge_id:
            raise StripeError.invalid(
                "You may only specify one of these parameters: charge, payment_intent.",
                param="payment_intent",
            )
        if pi_id:
            intent = self._store.payment_intent(pi_id)
            charge_id = intent["latest_charge"]
            if charge_id is None:
                raise StripeError.invalid(
                    f"PaymentIntent {pi_id} does not have a successful charge to refund.",
                    param="payment_intent",
                )
        elif not charge_id:
            raise StripeError.invalid(
                "One of the following params should be provided for this request: "
                "payment_intent or charge.",
                param="payment_intent",
            )
        reason = get_str(params, "reason")
        if reason is not None and reason not in _REFUND_REASONS:
            raise StripeError.invalid(f"Invalid reason: {reason}", param="reason")
        return self._refund(
            self._store.charge(charge_id),
            get_int(params, "amount", minimum=1),
            metadata=get_metadata(params),
            reason=reason,
            ctx=ctx,
        )

    def refund_from_dashboard(self, payment_intent_id: str, amount: int | None) -> Obj:
        intent = self._store.payment_intent(payment_intent_id)
        charge = self._store.charge(intent["latest_charge"] or "")
        return self._refund(charge, amount, metadata={}, reason=None, ctx=NO_REQUEST)

    def _refund(
        self,
        charge: Obj,
        amount: int | None,
        *,
        metadata: dict[str, str],
        reason: str | None,
        ctx: RequestContext,
    ) -> Obj:
        if charge["status"] != "succeeded":
            raise StripeError.invalid(
                f"Charge {charge['id']} has not succeeded and cannot be refunded.",
                param="charge",
                code="charge_not_refundable",
            )
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining == 0:
            raise StripeError.invalid(
                f"Charge {charge['id']} has already been refunded.",
                param="charge",
                code="charge_already_refunded",
            )
        if amount is None:
            amount = remaining
        if amount > remaining:
            raise StripeError.invalid(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({remaining})",
                param="amount",
                code="amount_too_large",
            )
        refund = objects.refund(
            id=self._store.ids.new("re_"),
            created=self._store.now(),
            amount=amount,
            currency=charge["currency"],
            charge=charge["id"],
            payment_intent=charge["payment_intent"],
            metadata=metadata,
            reason=reason,
        )
        self._store.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        refunds = charge["refunds"]
        refunds["data"].insert(0, refund)
        self._events.emit("charge.refunded", charge, ctx)
        self._events.emit("refund.created", refund, ctx)
        return refund

    def dispute(self, payment_intent_id: str) -> Obj:
        """The payer's bank opens a dispute on the payment."""
        store = self._store
        intent = store.payment_intent(payment_intent_id)
        charge = store.charge(intent["latest_charge"] or "")
        if charge["status"] != "succeeded":
            raise StripeError.invalid(
                f"Charge {charge['id']} has not succeeded and cannot be disputed.",
                param="charge",
            )
        if charge["disputed"]:
            raise StripeError.invalid(f"Charge {charge['id']} is already disputed.", param="charge")
        dispute = objects.dispute(
            id=store.ids.new("dp_"),
            created=store.now(),
            amount=charge["amount"] - charge["amount_refunded"],
            currency=charge["currency"],
            charge=charge["id"],
            payment_intent=payment_intent_id,
        )
        store.disputes[dispute["id"]] = dispute
        charge["disputed"] = True
        self._events.emit("charge.dispute.created", dispute, NO_REQUEST)
        return dispute
