"""The reconciler (docs/design.md §3, Reconcile): make the database agree with Stripe.

Safe at any time, repeatedly, and from several processes at once (a lease lets one run while
the others skip). Each step is a transition the webhook path would also make, so running it
twice, or racing a webhook, changes nothing the second time:

1. replay events the gateway has not applied (Stripe's events list, from a stored checkpoint, at
   most ``reconcile.lookback`` back);
2. settle pending and processing orders from their sessions and payment intents;
3. recover orders whose session was created but never saved (a request that died in between);
4. retire other attempts of links that are paid, and refund flagged duplicates when configured;
5. settle refunds a person asked for whose answer from Stripe was lost (recorded if Stripe made
   them, else failed);
6. record orphan payments: Stripe payments with this gateway's metadata and no order here.

One bad item never stops a pass: each event, order or refund is tried on its own, and one that
fails (an order whose payment intent or session Stripe does not know, a broken event, anything
unexpected) is logged, listed in the report's ``failures`` and skipped, and the later ones are
still settled. Only Stripe being unreachable :data:`UNREACHABLE_LIMIT` times in a row ends a step
early: the rest would wait for the same outage, and the next pass starts over.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from gateway.adapters.db.dialects import lock_link
from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import KeyValue, Link, Order
from gateway.clock import Clock
from gateway.config import MIN_SESSION_LIFETIME, CheckoutSettings, ReconcileSettings
from gateway.domain.errors import GatewayError, PaymentProviderRejected, PaymentProviderUnavailable
from gateway.domain.orders import CancelReason, OrderStatus, SessionOutcome
from gateway.domain.payments import PaymentProvider, SessionInfo
from gateway.services.audit import audit
from gateway.services.lease import Lease
from gateway.services.orphans import OrphanPayments
from gateway.services.payments import NotYetApplicable, PaymentRecorder, cancel_pending
from gateway.services.refunds import Refunds
from gateway.services.sessions import link_items, session_request
from gateway.services.webhooks import HANDLED_TYPES, WebhookService, is_text, storable

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "reconcile:events_checkpoint"
# Events can become visible in the list a little after their creation time; look back this much
# before the checkpoint so none falls between two runs.
CHECKPOINT_OVERLAP = 300
# Stripe keeps idempotency keys for 24 hours; stay clear of the edge.
IDEMPOTENCY_WINDOW = timedelta(hours=23)
# A pending order younger than this may still be in the hands of the request that created it.
IN_FLIGHT_GRACE = timedelta(minutes=2)
# Stripe unreachable for this many items in a row: the step stops until the next pass.
UNREACHABLE_LIMIT = 3


@dataclass
class ReconcileReport:
    ran: bool = True
    events_checked: int = 0
    events_applied: list[str] = field(default_factory=list)
    events_deferred: list[str] = field(default_factory=list)
    orders_settled: list[str] = field(default_factory=list)  # "ord_… pending→paid"
    sessions_recovered: list[str] = field(default_factory=list)
    attempts_retired: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    refunds: list[str] = field(default_factory=list)
    # Refunds asked for by a person whose answer from Stripe was lost, settled from its list.
    refunds_settled: list[str] = field(default_factory=list)
    # Payments Stripe holds with this gateway's metadata and no order here (issue 16).
    orphans_found: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # a whole step that could not run (or ended)
    # One per item skipped: {"step": "settle", "item": "ord_…", "error": "…"}.
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def fixes(self) -> int:
        return (
            len(self.events_applied)
            + len(self.orders_settled)
            + len(self.sessions_recovered)
            + len(self.attempts_retired)
            + len(self.refunds)
            + len(self.refunds_settled)
        )

    @property
    def ok(self) -> bool:
        return not (self.errors or self.failures)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fixes": self.fixes, "failed": len(self.failures)}


class _StripeUnreachable(Exception):
    pass


class _Unusable(GatewayError):
    """An item the reconciler cannot use (reported as a failure; no traceback needed)."""


class _Items:
    """One step's loop: each item runs on its own, so that one failure is reported and skipped
    instead of ending the step (and leaving every later order unsettled)."""

    __slots__ = ("report", "step", "unreachable")

    def __init__(self, report: ReconcileReport, step: str) -> None:
        self.report = report
        self.step = step
        self.unreachable = 0

    async def attempt(self, item: str, work: Awaitable[object]) -> bool:
        """Run ``work`` for ``item``; False (and a failure in the report) when it failed."""
        try:
            await work
        except PaymentProviderUnavailable as exc:
            self._failed(item, exc)
            self.unreachable += 1
            if self.unreachable >= UNREACHABLE_LIMIT:
                raise _StripeUnreachable(
                    f"Stripe unreachable {self.unreachable} times in a row; "
                    "the rest waits for the next pass"
                ) from exc
            return False
        except Exception as exc:  # one item's trouble, whatever it is, never ends the pass
            log.warning(
                "reconcile skipped an item",
                extra={"step": self.step, "item": item},
                exc_info=not isinstance(exc, GatewayError),
            )
            self._failed(item, exc)
            self.unreachable = 0  # Stripe answered (or Stripe was not the trouble)
            return False
        self.unreachable = 0
        return True

    def _failed(self, item: str, exc: Exception) -> None:
        message = str(exc) if isinstance(exc, GatewayError) else f"{type(exc).__name__}: {exc}"
        self.report.failures.append({"step": self.step, "item": item, "error": message[:500]})


class Reconciler:
    def __init__(
        self,
        db: Database,
        provider: PaymentProvider,
        clock: Clock,
        webhooks: WebhookService,
        recorder: PaymentRecorder,
        checkout: CheckoutSettings,
        settings: ReconcileSettings,
        *,
        refunds: Refunds | None = None,
        orphans: OrphanPayments | None = None,
    ) -> None:
        self._db = db
        self._refunds = refunds
        self._orphans = orphans
        self._provider = provider
        self._clock = clock
        self._webhooks = webhooks
        self._recorder = recorder
        self._checkout = checkout
        self._settings = settings
        # Long enough for any run; a crashed holder frees it after this.
        self._lease = Lease(db, clock, "reconcile", ttl=max(600.0, settings.interval))

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def run(self) -> ReconcileReport:
        if not await self._lease.acquire():
            return ReconcileReport(ran=False)
        report = ReconcileReport()
        try:
            for step in (
                self._replay_events,
                self._settle_orders,
                self._recover_sessions,
                self._retire_and_refund,
                self._settle_refunds,
                self._find_orphans,
            ):
                name = step.__name__.strip("_")
                try:
                    await step(report)
                except (GatewayError, _StripeUnreachable) as exc:
                    # Stripe trouble in one step: report it, go on with the others.
                    report.errors.append(f"{name}: {exc}")
                except Exception as exc:
                    log.exception("reconcile step failed", extra={"step": name})
                    report.errors.append(f"{name}: {type(exc).__name__}: {exc}"[:500])
        finally:
            await self._lease.release()
        if report.fixes or not report.ok:
            log.info("reconciled", extra={"report": report.as_dict()})
        return report

    # 1 ----------------------------------------------------------------------------------------

    async def _replay_events(self, report: ReconcileReport) -> None:
        now = int(self._clock.now())
        oldest = now - int(self._settings.lookback)
        async with self._db.read() as session:
            row = await session.get(KeyValue, CHECKPOINT_KEY)
        start = max(oldest, int(row.value) - CHECKPOINT_OVERLAP) if row else oldest
        events = await self._provider.list_events(created_from=start, types=list(HANDLED_TYPES))
        report.events_checked = len(events)
        # Only ids that can be queried as they are (a broken one is reported when replayed).
        ids = [str(e["id"]) for e in events if is_text(e.get("id"), 255)]
        done = await self._webhooks.known_event_ids(ids)
        pending = [event for event in events if event.get("id") not in done]
        # Events of one second have no reliable order (a refund may list before the payment
        # it refunds); what could not apply yet is tried again after the rest, while that helps.
        items = _Items(report, "replay")
        failed: list[dict[str, object]] = []
        while pending:
            deferred: list[dict[str, object]] = []
            for event in pending:
                key = storable(event.get("id"), 255)
                if not await items.attempt(key, self._replay(report, event, deferred)):
                    failed.append(event)
            if len(deferred) == len(pending):
                break
            pending = deferred
        report.events_deferred = [storable(event.get("id"), 255) for event in pending]
        # Next time, start again from the oldest event that is still waiting (or failed).
        checkpoint = min([_created(event, now) for event in pending + failed] + [now])
        await self._save_checkpoint(checkpoint)

    async def _replay(
        self, report: ReconcileReport, event: dict[str, object], deferred: list[dict[str, object]]
    ) -> None:
        try:
            result = await self._webhooks.handle(event, source="reconcile")
        except NotYetApplicable:
            deferred.append(event)
            return
        if result.outcome == "applied":
            report.events_applied.append(f"{result.event_id} {event.get('type')}")
        elif result.outcome == "invalid":
            raise _Unusable(f"Stripe listed an event the gateway cannot use: {result.error}")

    async def _save_checkpoint(self, value: int) -> None:
        async with self._db.write() as session:
            row = await session.get(KeyValue, CHECKPOINT_KEY)
            if row is None:
                session.add(KeyValue(key=CHECKPOINT_KEY, value=str(value), updated_at=self.now()))
            else:
                row.value, row.updated_at = str(value), self.now()

    # 2 ----------------------------------------------------------------------------------------

    async def _settle_orders(self, report: ReconcileReport) -> None:
        async with self._db.read() as session:
            rows = (
                await session.execute(
                    sa.select(
                        Order.id, Order.status, Order.stripe_session_id, Order.payment_intent_id
                    )
                    .where(
                        Order.status.in_([OrderStatus.PENDING.value, OrderStatus.PROCESSING.value]),
                        Order.stripe_session_id.is_not(None),
                    )
                    .order_by(Order.created_at)
                )
            ).all()
        items = _Items(report, "settle")
        for order_id, status, session_id, intent_id in rows:
            await items.attempt(
                order_id, self._settle_one(report, order_id, status, session_id, intent_id)
            )

    async def _settle_one(
        self,
        report: ReconcileReport,
        order_id: str,
        status: str,
        session_id: str | None,
        intent_id: str | None,
    ) -> None:
        assert session_id is not None
        info = await self._provider.retrieve_session(session_id)
        outcome: SessionOutcome | None = None
        if status == OrderStatus.PROCESSING.value and (intent_id or info.payment_intent_id):
            intent = await self._provider.retrieve_payment_intent(
                intent_id or info.payment_intent_id or ""
            )
            outcome = intent.outcome()
        elif info.outcome() is not SessionOutcome.OPEN:
            outcome = info.outcome()
        if outcome is None:
            return
        recorded = await self._recorder.record(info, actor="reconciler", outcome=outcome)
        if recorded.changed:
            report.orders_settled.append(f"{order_id} {status}→{recorded.to_status}")
        if recorded.duplicate_of:
            report.duplicates.append(order_id)

    # 3 ----------------------------------------------------------------------------------------

    async def _recover_sessions(self, report: ReconcileReport) -> None:
        """Orders inserted whose session Stripe may have made while the request died."""
        now = self.now()
        async with self._db.read() as session:
            orders = (
                (
                    await session.execute(
                        sa.select(Order)
                        .where(
                            Order.status == OrderStatus.PENDING.value,
                            Order.stripe_session_id.is_(None),
                            Order.created_at < now - IN_FLIGHT_GRACE,
                        )
                        .order_by(Order.created_at)
                    )
                )
                .scalars()
                .all()
            )
        items = _Items(report, "recover")
        for order in orders:
            await items.attempt(order.id, self._recover_one(report, order, now))

    async def _recover_one(self, report: ReconcileReport, order: Order, now: datetime) -> None:
        info = await self._find_session(order, now)
        if info is not None:
            await self._save_recovered(order, info)
            report.sessions_recovered.append(f"{order.id} {info.id}")
            if info.outcome() is not SessionOutcome.OPEN:
                recorded = await self._recorder.record(info, actor="reconciler")
                if recorded.changed:
                    report.orders_settled.append(
                        f"{order.id} {recorded.from_status}→{recorded.to_status}"
                    )
        elif order.session_expires_at is None or order.session_expires_at <= now:
            # No session exists, and none made now could be paid: the attempt is over.
            await self._cancel_abandoned(order)
            report.orders_settled.append(f"{order.id} pending→canceled (no session)")

    async def _find_session(self, order: Order, now: datetime) -> SessionInfo | None:
        if (
            now - order.created_at < IDEMPOTENCY_WINDOW
            and order.session_expires_at is not None
            and order.session_expires_at - now > timedelta(seconds=MIN_SESSION_LIFETIME)
        ):
            # Within Stripe's idempotency window the same key returns the session that the dead
            # request created (or creates it now: the attempt then simply goes on).
            async with self._db.read() as session:
                link = await session.get(Link, order.link_id)
                items = await link_items(session, order.link_id)
            assert link is not None
            try:
                return await self._provider.create_session(session_request(link, items, order))
            except (PaymentProviderRejected, ValueError):
                pass  # parameters no longer acceptable: fall back to searching
        # Past the window: match sessions created around the order on client_reference_id.
        start = int(order.created_at.timestamp()) - 60
        end = int(order.created_at.timestamp()) + 3600
        for info in await self._provider.list_sessions(created_from=start, created_to=end):
            if info.client_reference_id == order.id or info.order_id == order.id:
                return info
        return None

    async def _save_recovered(self, order: Order, info: SessionInfo) -> None:
        async with self._db.write() as session:
            await lock_link(session, order.link_id)
            result = await session.execute(
                sa.update(Order)
                .where(Order.id == order.id, Order.stripe_session_id.is_(None))
                .values(
                    stripe_session_id=info.id,
                    session_url=info.url,
                    session_expires_at=info.expires_at,
                    updated_at=self.now(),
                )
            )
            if result.rowcount:  # type: ignore[attr-defined]
                audit(
                    session,
                    at=self.now(),
                    link_id=order.link_id,
                    order_id=order.id,
                    action="order.session_recovered",
                    actor="reconciler",
                    detail=f"session {info.id} was created but never saved",
                )

    async def _cancel_abandoned(self, order: Order) -> None:
        async with self._db.write() as session:
            await cancel_pending(
                session,
                order_id=order.id,
                link_id=order.link_id,
                reason=CancelReason.STALE,
                actor="reconciler",
                detail="stale: no session was ever created",
                now=self.now(),
                only_without_session=True,
            )
        self._recorder.snapshots.invalidate(order.link_id)

    # 4 ----------------------------------------------------------------------------------------

    async def _retire_and_refund(self, report: ReconcileReport) -> None:
        paid = sa.select(Order.link_id).where(
            Order.status.in_([OrderStatus.PAID.value, OrderStatus.PROCESSING.value])
        )
        # A revocation that could not reach Stripe left its attempt pending.
        revoked = sa.select(Link.id).where(Link.revoked_at.is_not(None))
        async with self._db.read() as session:
            leftovers = (
                await session.execute(
                    sa.select(Order.id, Order.link_id.in_(paid))
                    .where(
                        Order.status == OrderStatus.PENDING.value,
                        Order.link_id.in_(paid) | Order.link_id.in_(revoked),
                    )
                    .order_by(Order.created_at)
                )
            ).all()
            duplicates = (
                (
                    await session.execute(
                        sa.select(Order.id)
                        .where(
                            Order.duplicate_of.is_not(None),
                            Order.status == OrderStatus.PAID.value,
                            Order.refund_id.is_(None),
                        )
                        .order_by(Order.created_at)
                    )
                )
                .scalars()
                .all()
            )
        retiring = _Items(report, "retire")
        for order_id, on_paid_link in leftovers:
            reason = CancelReason.SUPERSEDED if on_paid_link else CancelReason.REVOKED
            detail = (
                "superseded: the link was paid by another attempt"
                if on_paid_link
                else "link revoked"
            )
            work = self._recorder.retire(order_id, reason=reason, actor="reconciler", detail=detail)
            if await retiring.attempt(order_id, work):
                report.attempts_retired.append(order_id)
        refunding = _Items(report, "refund")
        for order_id in duplicates:
            if order_id not in report.duplicates:
                report.duplicates.append(order_id)
            await refunding.attempt(order_id, self._refund_one(report, order_id))

    async def _refund_one(self, report: ReconcileReport, order_id: str) -> None:
        if await self._recorder.refund_duplicate(order_id, actor="reconciler"):
            report.refunds.append(order_id)

    # 5, 6 -------------------------------------------------------------------------------------

    async def _settle_refunds(self, report: ReconcileReport) -> None:
        """Refunds a person asked for whose answer from Stripe was lost: recorded if Stripe made
        them, else marked failed (gateway.services.refunds)."""
        if self._refunds is not None:
            report.refunds_settled.extend(await self._refunds.settle_unfinished())

    async def _find_orphans(self, report: ReconcileReport) -> None:
        """Payments at Stripe with this gateway's metadata and no order here: recorded as orphan
        payments for a person to attach (gateway.services.orphans)."""
        if self._orphans is not None:
            report.orphans_found.extend(await self._orphans.find())


def _created(event: dict[str, object], now: int) -> int:
    """An event's creation time, for the checkpoint (``now`` when it has none usable)."""
    created = event.get("created")
    return created if type(created) is int and 0 < created <= now else now
