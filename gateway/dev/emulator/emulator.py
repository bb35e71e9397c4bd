"""``StripeEmulator``: one instance holds all state of one emulated Stripe account.

The HTTP layers (API, hosted page, control API) and in-process tests call the same methods, so
a test that pays with ``emulator.pay(...)`` sees exactly what a payer pressing the button would
cause.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from gateway.clock import Clock
from gateway.dev.emulator.checkout import CheckoutSessions
from gateway.dev.emulator.errors import StripeError
from gateway.dev.emulator.events import EventLog
from gateway.dev.emulator.faults import FaultDecider, Faults
from gateway.dev.emulator.held import HeldRequests
from gateway.dev.emulator.idempotency import IdempotencyStore
from gateway.dev.emulator.ids import IdFactory
from gateway.dev.emulator.payments import Payments
from gateway.dev.emulator.store import Store
from gateway.dev.emulator.webhooks import WebhookMode, WebhookSender

Obj = dict[str, Any]


class StripeEmulator:
    def __init__(
        self,
        *,
        clock: Clock,
        public_url: str = "http://127.0.0.1:12111",
        webhook_url: str | None = None,
        webhook_secret: str = "whsec_emulator",  # noqa: S107 - a well-known test secret
        webhook_mode: Literal["auto", "manual"] = "auto",
        webhook_retry_delays: Sequence[float] = (0.5, 2, 10, 30),
        seed: int = 0,
    ) -> None:
        self.clock = clock
        self.seed = seed
        self.fault_decider = FaultDecider(Faults(), seed)
        self.ids = IdFactory(seed)
        self.store = Store(clock, self.ids)
        self.webhooks = WebhookSender(
            url=webhook_url,
            secret=webhook_secret,
            mode=webhook_mode,
            retry_delays=webhook_retry_delays,
            decider=self.fault_decider,
        )
        self.event_log = EventLog(self.store, self.webhooks.enqueue)
        self.checkout = CheckoutSessions(self.store, self.event_log, public_url)
        self.payments = Payments(self.store, self.event_log)
        self.idempotency = IdempotencyStore(clock)
        self.request_log: list[tuple[str, str, str | None]] = []
        # Requests applied but not answered yet (the ``hold_next`` fault).
        self.held = HeldRequests()

    @property
    def public_url(self) -> str:
        """Base of the hosted page URLs of new sessions. Settable, for servers that learn
        their address after binding (port 0)."""
        return self.checkout.public_url

    @public_url.setter
    def public_url(self, url: str) -> None:
        self.checkout.public_url = url.rstrip("/")

    @property
    def faults(self) -> Faults:
        """Mutable fault settings; assigning a new ``Faults`` also works."""
        return self.fault_decider.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self.fault_decider.faults = faults

    # Inspectable state (live objects: read them, do not mutate them).
    @property
    def sessions(self) -> dict[str, Obj]:
        return self.store.sessions

    @property
    def payment_intents(self) -> dict[str, Obj]:
        return self.store.payment_intents

    @property
    def charges(self) -> dict[str, Obj]:
        return self.store.charges

    @property
    def refunds(self) -> dict[str, Obj]:
        return self.store.refunds

    @property
    def disputes(self) -> dict[str, Obj]:
        return self.store.disputes

    @property
    def events(self) -> list[Obj]:
        return self.event_log.events

    @property
    def webhook_mode(self) -> WebhookMode:
        return self.webhooks.mode

    def created_with(self, session_id: str) -> Obj:
        """The parameters a session was created with, as the API decoded them (a parameter
        the caller left out is absent)."""
        return self.store.session_extras[session_id].params

    def sessions_created(self) -> int:
        """Distinct sessions created; an idempotent replay creates none."""
        return len(self.store.sessions)

    # The payer and the "dashboard", in process.
    def pay(self, session_id: str, outcome: Literal["paid", "async", "declined"] = "paid") -> None:
        """Pay as the hosted page would. A declined card leaves the session open and raises
        nothing (the payer just sees the error); paying a session that is not open raises
        ``StripeError``."""
        self.expire_due_sessions()
        if outcome == "declined":
            try:
                self.payments.pay(session_id, outcome)
            except StripeError as exc:
                if exc.type != "card_error":
                    raise
            return
        self.payments.pay(session_id, outcome)

    def settle_async(self, payment_intent_id_or_session_id: str, succeed: bool) -> None:
        self.payments.settle(payment_intent_id_or_session_id, succeed)

    def refund_from_dashboard(self, payment_intent_id: str, amount: int | None = None) -> Obj:
        return self.payments.refund_from_dashboard(payment_intent_id, amount)

    def dispute(self, payment_intent_id: str) -> Obj:
        return self.payments.dispute(payment_intent_id)

    def expire_due_sessions(self) -> list[str]:
        """Sessions past ``expires_at`` on the emulator clock become ``expired`` (with an event).
        Also happens lazily on every API, page or control request."""
        return self.checkout.expire_due()

    async def deliver_webhooks(self) -> None:
        """Deliver every queued webhook that is due (in manual mode: all of them, including
        failed ones waiting for a retry) and wait until those attempts are done."""
        await self.webhooks.drain()

    def summary(self) -> Obj:
        by_status: dict[str, int] = {}
        by_payment_status: dict[str, int] = {}
        for session in self.store.sessions.values():
            by_status[session["status"]] = by_status.get(session["status"], 0) + 1
            key = session["payment_status"]
            by_payment_status[key] = by_payment_status.get(key, 0) + 1
        intents_by_status: dict[str, int] = {}
        for intent in self.store.payment_intents.values():
            intents_by_status[intent["status"]] = intents_by_status.get(intent["status"], 0) + 1
        events_by_type: dict[str, int] = {}
        for event in self.event_log.events:
            events_by_type[event["type"]] = events_by_type.get(event["type"], 0) + 1
        return {
            "now": self.clock.now(),
            "sessions": {
                "total": len(self.store.sessions),
                "by_status": by_status,
                "by_payment_status": by_payment_status,
                "declines": sum(e.declines for e in self.store.session_extras.values()),
            },
            "payment_intents": {
                "total": len(self.store.payment_intents),
                "by_status": intents_by_status,
            },
            "charges": len(self.store.charges),
            "refunds": {
                "total": len(self.store.refunds),
                "amount": sum(r["amount"] for r in self.store.refunds.values()),
            },
            "disputes": len(self.store.disputes),
            "events": {"total": len(self.event_log.events), "by_type": events_by_type},
            "webhooks": {
                "url": self.webhooks.url,
                "mode": self.webhooks.mode,
                "pending": self.webhooks.pending,
                "attempts": len(self.webhooks.attempts),
                "delivered": sum(
                    1 for a in self.webhooks.attempts if a.status and 200 <= a.status < 300
                ),
                "lost": len(self.webhooks.lost),
                "given_up": len(self.webhooks.given_up),
            },
            "api_requests": len(self.request_log),
            "held_requests": len(self.held),
            "idempotency_keys": len(self.idempotency),
            "faults": self.faults.as_dict(),
        }
