"""Checkout Sessions: creation with Stripe's validation, listing, expiry (explicit and lazy)."""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway.dev.emulator import listing, objects
from gateway.dev.emulator.errors import StripeError
from gateway.dev.emulator.events import EventLog
from gateway.dev.emulator.params import (
    Params,
    get_dict,
    get_int,
    get_list,
    get_metadata,
    get_str,
)
from gateway.dev.emulator.store import NO_REQUEST, RequestContext, SessionExtras, Store
from gateway.domain.locales import STRIPE_LOCALES
from gateway.domain.money import MINIMUM_CHARGE, SUPPORTED, exponent

Obj = dict[str, Any]

MIN_LIFETIME_SECONDS = 30 * 60
MAX_LIFETIME_SECONDS = 24 * 3600
_CURRENCY = re.compile(r"^[a-z]{3}$")


class CheckoutSessions:
    def __init__(self, store: Store, events: EventLog, public_url: str) -> None:
        self._store = store
        self._events = events
        self.public_url = public_url.rstrip("/")
        # (expires_at, session id): open sessions by deadline, so the lazy sweep on every
        # request costs O(log n) instead of a scan.
        self._deadlines: list[tuple[int, str]] = []

    def create(self, params: Params, ctx: RequestContext) -> Obj:
        store = self._store
        now = store.now()
        mode = get_str(params, "mode", required=True)
        if mode != "payment":
            raise StripeError.invalid(
                f"The emulator only supports mode=payment, not {mode!r}.", param="mode"
            )
        success_url = get_str(params, "success_url", max_len=5000)
        cancel_url = get_str(params, "cancel_url", max_len=5000)
        if success_url is None:
            # Hosted sessions need somewhere to send the payer (Stripe requires it for them).
            raise StripeError.required("success_url")
        line_items, currency, amount = self._line_items(params)
        expires_at = get_int(params, "expires_at")
        if expires_at is None:
            expires_at = now + MAX_LIFETIME_SECONDS
        elif expires_at - now < MIN_LIFETIME_SECONDS:
            raise StripeError.invalid(
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session "
                "creation.",
                param="expires_at",
            )
        elif expires_at - now > MAX_LIFETIME_SECONDS:
            raise StripeError.invalid(
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session "
                "creation.",
                param="expires_at",
            )
        payment_intent_data = get_dict(params, "payment_intent_data")
        session_id = store.ids.new("cs_test_", 58)
        session = objects.checkout_session(
            id=session_id,
            created=now,
            expires_at=expires_at,
            currency=currency,
            amount=amount,
            url=f"{self.public_url}/checkout/{session_id}",
            success_url=success_url,
            cancel_url=cancel_url,
            client_reference_id=get_str(params, "client_reference_id", max_len=200),
            customer_email=get_str(params, "customer_email", max_len=800),
            metadata=get_metadata(params),
            locale=_locale(params),
            submit_type=get_str(params, "submit_type"),
        )
        items = [self._line_item(line, now) for line in line_items]
        store.sessions[session_id] = session
        store.session_extras[session_id] = SessionExtras(
            line_items=items,
            payment_intent_metadata=get_metadata(payment_intent_data, "metadata"),
            payment_intent_description=get_str(payment_intent_data, "description"),
            params=params,
        )
        heapq.heappush(self._deadlines, (expires_at, session_id))
        return session

    def _line_items(self, params: Params) -> tuple[list[_Line], str, int]:
        raw_items = get_list(params, "line_items")
        if not raw_items:
            raise StripeError.required("line_items")
        lines: list[_Line] = []
        for index, raw in enumerate(raw_items):
            name = f"line_items[{index}]"
            if not isinstance(raw, dict):
                raise StripeError.invalid(f"Invalid object: {name}", param=name)
            if raw.get("price"):
                # Only ad-hoc prices exist here; the gateway never creates Price objects.
                raise StripeError.missing("price", str(raw["price"]), param=f"{name}[price]")
            price_data = get_dict(raw, "price_data")
            if not price_data:
                raise StripeError.required(f"{name}[price_data]")
            currency = (get_str(price_data, "currency") or "").lower()
            if not currency:
                raise StripeError.required(f"{name}[price_data][currency]")
            if not _CURRENCY.match(currency) or currency not in SUPPORTED:
                raise StripeError.invalid(
                    f"Invalid currency: {currency}. Stripe currently supports these currencies: "
                    + ", ".join(sorted(SUPPORTED, key=lambda c: (c != "usd", c))),
                    param=f"{name}[price_data][currency]",
                )
            unit_amount = _required_int(price_data, "unit_amount", f"{name}[price_data]", 0)
            quantity = _required_int(raw, "quantity", name, 1)
            product_name = get_str(get_dict(price_data, "product_data"), "name")
            if product_name is None:
                raise StripeError.required(f"{name}[price_data][product_data][name]")
            lines.append(_Line(product_name, currency, unit_amount, quantity))
        currencies = {line.currency for line in lines}
        if len(currencies) > 1:
            raise StripeError.invalid(
                "All line items must use the same currency.", param="line_items"
            )
        currency = currencies.pop()
        total = sum(line.amount for line in lines)
        _check_minimum(total, currency)
        return lines, currency, total

    def _line_item(self, line: _Line, now: int) -> Obj:
        ids = self._store.ids
        return {
            "id": ids.new("li_"),
            "object": "item",
            "amount_discount": 0,
            "amount_subtotal": line.amount,
            "amount_tax": 0,
            "amount_total": line.amount,
            "currency": line.currency,
            "description": line.name,
            "price": {
                "id": ids.new("price_"),
                "object": "price",
                "active": False,
                "created": now,
                "currency": line.currency,
                "livemode": False,
                "metadata": {},
                "product": ids.new("prod_", 14),
                "type": "one_time",
                "unit_amount": line.unit_amount,
            },
            "quantity": line.quantity,
        }

    def retrieve(self, session_id: str) -> Obj:
        self.expire_due()
        return self._store.session(session_id)

    def line_items(self, session_id: str) -> list[Obj]:
        self._store.session(session_id)
        return self._store.session_extras[session_id].line_items

    def list_page(self, params: Params) -> Obj:
        self.expire_due()
        in_range = listing.created_filter(params)
        status = get_str(params, "status")
        payment_intent = get_str(params, "payment_intent")

        def keep(session: Obj) -> bool:
            return (
                in_range(session)
                and (status is None or session["status"] == status)
                and (payment_intent is None or session["payment_intent"] == payment_intent)
            )

        sessions = list(self._store.sessions.values())[::-1]
        return listing.paginate(sessions, keep, params, url="/v1/checkout/sessions")

    def expire(self, session_id: str, ctx: RequestContext) -> Obj:
        self.expire_due()
        session = self._store.session(session_id)
        if session["status"] == "complete":
            # Stripe's wording; the caller should retrieve the session and record the payment.
            raise StripeError.invalid(
                f'Only Checkout Sessions with a status in ["open"] can be expired. This '
                f"Checkout Session is complete: {session_id}",
                param="session",
            )
        if session["status"] == "expired":
            raise StripeError.invalid(
                f'Only Checkout Sessions with a status in ["open"] can be expired. This '
                f"Checkout Session is already expired: {session_id}",
                param="session",
            )
        self._expire(session, ctx)
        return session

    def expire_due(self) -> list[str]:
        """Expire every open session whose ``expires_at`` has passed on the emulator clock."""
        now = self._store.now()
        expired: list[str] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, session_id = heapq.heappop(self._deadlines)
            session = self._store.sessions[session_id]
            if session["status"] == "open":
                self._expire(session, NO_REQUEST)
                expired.append(session_id)
        return expired

    def _expire(self, session: Obj, ctx: RequestContext) -> None:
        session["status"] = "expired"
        self._events.emit("checkout.session.expired", session, ctx)


@dataclass(frozen=True)
class _Line:
    name: str
    currency: str
    unit_amount: int
    quantity: int

    @property
    def amount(self) -> int:
        return self.unit_amount * self.quantity


def _check_minimum(total: int, currency: str) -> None:
    """Stripe's minimum charge for the currency (docs: currencies#minimum-and-maximum-charge-
    amounts), the table the gateway checks links against when they are issued."""
    minimum = MINIMUM_CHARGE.get(currency, 1)
    if total < minimum:
        shown = Decimal(minimum).scaleb(-exponent(currency))
        raise StripeError.invalid(
            f"The Checkout Session's total amount due must add up to at least {shown:f} {currency}",
            code="amount_too_small",
        )


def _locale(params: Params) -> str | None:
    """Checkout's ``locale``: one of Stripe's values (exact case), refused as Stripe refuses
    any value outside an enum."""
    locale = get_str(params, "locale")
    if locale is not None and locale not in STRIPE_LOCALES:
        *rest, last = sorted(STRIPE_LOCALES)
        raise StripeError.invalid(
            f"Invalid locale: must be one of {', '.join(rest)}, or {last}", param="locale"
        )
    return locale


def _required_int(params: Params, key: str, prefix: str, minimum: int) -> int:
    """An integer field of a nested object, reported under its full bracketed name."""
    full_name = f"{prefix}[{key}]"
    if params.get(key) in (None, ""):
        raise StripeError.required(full_name)
    try:
        value = get_int(params, key, minimum=minimum)
    except StripeError as exc:
        exc.param = full_name
        raise
    assert value is not None
    return value
