"""The payment port implemented with the official ``stripe`` SDK over the app's aiohttp session.

``stripe.api_base`` comes from config, so the emulator, stripe-mock or real Stripe all take the
same code path. Stripe's exceptions stop here: callers see only the gateway's own errors.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
import stripe

from gateway.domain.errors import PaymentProviderRejected, PaymentProviderUnavailable
from gateway.domain.payments import (
    CardInfo,
    KeyInUse,
    PaymentIntentInfo,
    RefundInfo,
    ServerErrorKept,
    SessionInfo,
    SessionRequest,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


def create_stripe_client(
    *,
    api_key: str,
    api_base: str,
    session: aiohttp.ClientSession,
    timeout: float,
    max_retries: int,
) -> stripe.StripeClient:
    http_client = stripe.AIOHTTPClient(
        session=session,
        # Bounded: a slow Stripe must turn into a 503 page, not a hung parent.
        timeout=aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0)),
    )
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base.rstrip("/")},
        http_client=http_client,
        max_network_retries=max_retries,
    )


def _timestamp(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), UTC)


def session_info(session: Any) -> SessionInfo:
    """Translate a Stripe Checkout Session (SDK object or plain dict) into the domain's view."""
    if isinstance(session, stripe.StripeObject):
        session = session.to_dict()
    get = session.get
    payment_intent = get("payment_intent")
    if isinstance(payment_intent, dict):
        payment_intent = payment_intent.get("id")
    metadata = get("metadata") or {}
    return SessionInfo(
        id=str(get("id")),
        url=get("url"),
        status=str(get("status")),
        payment_status=str(get("payment_status")),
        expires_at=_timestamp(get("expires_at")),
        created_at=_timestamp(get("created")),
        client_reference_id=get("client_reference_id"),
        payment_intent_id=payment_intent,
        amount_total=get("amount_total"),
        metadata={str(k): str(v) for k, v in dict(metadata).items()},
    )


def payment_intent_info(data: Mapping[str, Any]) -> PaymentIntentInfo:
    return PaymentIntentInfo(
        id=str(data["id"]),
        status=str(data.get("status")),
        amount=int(data.get("amount") or 0),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
        currency=str(data.get("currency") or ""),
        created=int(data.get("created") or 0),
    )


def card_info(intent: Mapping[str, Any]) -> CardInfo | None:
    """The card of a payment intent retrieved with ``expand[]=latest_charge``."""
    charge = intent.get("latest_charge")
    details = charge.get("payment_method_details") if isinstance(charge, Mapping) else None
    card = details.get("card") if isinstance(details, Mapping) else None
    if not isinstance(card, Mapping) or not isinstance(card.get("last4"), str):
        return None
    return CardInfo(last4=card["last4"], brand=str(card.get("brand") or ""))


def refund_info(data: Mapping[str, Any]) -> RefundInfo:
    return RefundInfo(
        id=str(data["id"]),
        amount=int(data.get("amount") or 0),
        status=str(data.get("status")),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
    )


def _server_error(what: str, exc: stripe.StripeError) -> PaymentProviderUnavailable:
    """Stripe's own answers get their own types: a 409 ``idempotency_key_in_use`` (another
    request holds the key) and a 500 in Stripe's error shape, which Stripe keeps under the key.
    Anything else (a proxy's 502, a 503) is plain unavailability."""
    message = f"{what}: Stripe answered {exc.http_status}"
    err = exc.error
    code = getattr(err, "code", None) if err else None
    kind = getattr(err, "type", None) if err else None
    if exc.http_status == 409 and code == "idempotency_key_in_use":
        return KeyInUse(f"{message} (idempotency key in use)")
    if exc.http_status == 500 and kind == "api_error":
        return ServerErrorKept(message)
    return PaymentProviderUnavailable(message)


async def _call(what: str, call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        error = PaymentProviderUnavailable(f"{what}: {type(exc).__name__}")
    except stripe.APIError as exc:
        error = _server_error(what, exc)
    except stripe.StripeError as exc:
        if exc.http_status is not None and (exc.http_status >= 500 or exc.http_status == 409):
            error = _server_error(what, exc)
        else:
            err = exc.error
            raise PaymentProviderRejected(
                f"{what}: {exc.user_message or type(exc).__name__}",
                code=getattr(err, "code", None) if err else None,
                param=getattr(err, "param", None) if err else None,
            ) from exc
    log.warning(
        "stripe call failed",
        extra={"call": what, "reference": error.reference, "error": str(error)},
    )
    raise error


# Sessions created lately, by idempotency key: a press that decided "resume" just before another
# one saved the session asks for it again, and gets the answer Stripe would replay, without a
# call. Only the last few matter (a burst of presses on one link), so it stays small.
RECENT_SESSIONS = 256


class StripeCheckout:
    """:class:`gateway.domain.payments.PaymentProvider` backed by Stripe."""

    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client
        self._sessions = client.v1.checkout.sessions
        # One Stripe call per idempotency key at a time in this process (single flight).
        self._flights: dict[str, asyncio.Task[SessionInfo]] = {}
        self._recent: OrderedDict[str, SessionInfo] = OrderedDict()

    async def create_session(self, request: SessionRequest) -> SessionInfo:
        """Create the order's session, or join the call already creating it.

        Every press of a fresh link's Pay button asks for the same session with the same key;
        Stripe would answer each with the same session, but hundreds of presses would be
        hundreds of calls. Concurrent callers share one call (its result or its error), which
        runs as its own task: a caller that is cancelled (its request's deadline, a closed
        connection) stops waiting without cancelling the call for the others.
        """
        key = request.idempotency_key
        recent = self._recent.get(key)
        if recent is not None:
            return recent
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.create_task(self._create_session(request), name=f"stripe:{key}")
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(flight)

    def _landed(self, key: str, flight: asyncio.Task[SessionInfo]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if flight.cancelled():
            return
        if flight.exception() is None:  # also marks an error as seen when nobody waits
            self._recent[key] = flight.result()
            while len(self._recent) > RECENT_SESSIONS:
                self._recent.popitem(last=False)

    async def _create_session(self, request: SessionRequest) -> SessionInfo:
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": request.currency,
                        "unit_amount": item.amount,
                        "product_data": {"name": item.description},
                    },
                    "quantity": item.quantity,
                }
                for item in request.items
            ],
            "client_reference_id": request.order_id,
            "customer_email": request.customer_email,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "expires_at": int(request.expires_at.timestamp()),
            "metadata": request.metadata,
            "payment_intent_data": {"metadata": request.metadata},
        }
        if request.locale is not None:
            # Absent, not null, for an order stored without one: its replays must send exactly
            # what its first request sent.
            params["locale"] = request.locale
        session = await _call(
            "create checkout session",
            lambda: self._sessions.create_async(
                params,  # type: ignore[arg-type]
                options={"idempotency_key": request.idempotency_key},
            ),
        )
        return session_info(session)

    async def retrieve_session(self, session_id: str) -> SessionInfo:
        session = await _call(
            "retrieve checkout session", lambda: self._sessions.retrieve_async(session_id)
        )
        return session_info(session)

    async def expire_session(self, session_id: str) -> SessionInfo:
        try:
            session = await _call(
                "expire checkout session", lambda: self._sessions.expire_async(session_id)
            )
        except PaymentProviderRejected:
            # Stripe refuses to expire a session that is complete or already expired. Ask what
            # it is now: a completed one means the payer paid, and that must be recorded.
            return await self.retrieve_session(session_id)
        return session_info(session)

    async def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentInfo:
        intent = await _call(
            "retrieve payment intent",
            lambda: self._client.v1.payment_intents.retrieve_async(payment_intent_id),
        )
        return payment_intent_info(intent.to_dict())

    async def payment_card(self, payment_intent_id: str) -> CardInfo | None:
        intent = await _call(
            "retrieve payment intent",
            lambda: self._client.v1.payment_intents.retrieve_async(
                payment_intent_id, params={"expand": ["latest_charge"]}
            ),
        )
        return card_info(intent.to_dict())

    async def payment_intent_of(self, object_id: str) -> str | None:
        found: dict[str, Any]
        if object_id.startswith(("ch_", "py_")):
            charge = await _call(
                "retrieve charge", lambda: self._client.v1.charges.retrieve_async(object_id)
            )
            found = charge.to_dict()
        else:
            dispute = await _call(
                "retrieve dispute", lambda: self._client.v1.disputes.retrieve_async(object_id)
            )
            found = dispute.to_dict()
        intent = found.get("payment_intent")
        if isinstance(intent, dict):  # expanded
            intent = intent.get("id")
        return intent if isinstance(intent, str) and intent else None

    async def refund(
        self,
        payment_intent_id: str,
        *,
        idempotency_key: str,
        metadata: Mapping[str, str],
        amount: int | None = None,
    ) -> RefundInfo:
        params: dict[str, Any] = {"payment_intent": payment_intent_id, "metadata": dict(metadata)}
        if amount is not None:
            params["amount"] = amount
        refund = await _call(
            "create refund",
            lambda: self._client.v1.refunds.create_async(
                params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            ),
        )
        return refund_info(refund.to_dict())

    async def list_refunds(self, payment_intent_id: str) -> list[RefundInfo]:
        params: dict[str, Any] = {"payment_intent": payment_intent_id, "limit": 100}
        found: list[RefundInfo] = []
        while True:
            page = await _call(
                "list refunds",
                lambda: self._client.v1.refunds.list_async(params),  # type: ignore[arg-type]  # noqa: B023
            )
            data = page.to_dict()
            items = data.get("data") or []
            found.extend(refund_info(item) for item in items)
            if not data.get("has_more") or not items:
                return found
            params = {**params, "starting_after": items[-1]["id"]}

    async def list_payment_intents(self, *, created_from: int) -> list[PaymentIntentInfo]:
        params: dict[str, Any] = {"created": {"gte": created_from}, "limit": 100}
        found: list[PaymentIntentInfo] = []
        while True:
            page = await _call(
                "list payment intents",
                lambda: self._client.v1.payment_intents.list_async(params),  # type: ignore[arg-type]  # noqa: B023
            )
            data = page.to_dict()
            items = data.get("data") or []
            found.extend(payment_intent_info(item) for item in items)
            if not data.get("has_more") or not items:
                return found
            params = {**params, "starting_after": items[-1]["id"]}

    async def session_of_payment_intent(self, payment_intent_id: str) -> SessionInfo | None:
        params: dict[str, Any] = {"payment_intent": payment_intent_id, "limit": 1}
        page = await _call(
            "list checkout sessions",
            lambda: self._sessions.list_async(params),  # type: ignore[arg-type]
        )
        items = page.to_dict().get("data") or []
        return session_info(items[0]) if items else None

    async def list_sessions(self, *, created_from: int, created_to: int) -> list[SessionInfo]:
        params: dict[str, Any] = {"created": {"gte": created_from, "lte": created_to}, "limit": 100}
        found: list[SessionInfo] = []
        while True:
            page = await _call(
                "list checkout sessions",
                lambda: self._sessions.list_async(params),  # type: ignore[arg-type]  # noqa: B023
            )
            data = page.to_dict()
            items = data.get("data") or []
            found.extend(session_info(item) for item in items)
            if not data.get("has_more") or not items:
                return found
            params = {**params, "starting_after": items[-1]["id"]}

    async def list_events(self, *, created_from: int, types: list[str]) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"created": {"gte": created_from}, "limit": 100, "types": types}
        events: list[dict[str, Any]] = []
        while True:
            page = await _call(
                "list events",
                lambda: self._client.v1.events.list_async(params),  # type: ignore[arg-type]  # noqa: B023
            )
            data = page.to_dict()
            items = data.get("data") or []
            events.extend(items)
            if not data.get("has_more") or not items:
                break
            params = {**params, "starting_after": items[-1]["id"]}
        # Stripe lists newest first; apply them in the order they happened.
        events.sort(key=lambda e: (int(e.get("created") or 0), str(e.get("id"))))
        return events

    async def retrieve_event(self, event_id: str) -> dict[str, Any]:
        event = await _call(
            "retrieve event", lambda: self._client.v1.events.retrieve_async(event_id)
        )
        result: dict[str, Any] = event.to_dict()
        return result
