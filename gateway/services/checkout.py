"""Open and Confirm (docs/design.md §3): what a visitor sees, and what pressing Pay does.

Confirm follows one rule above all: *write the intent before calling Stripe*. A new attempt is a
``pending`` order committed first; its id names the Stripe idempotency key, so however often the
request is retried, crashed or raced, Stripe returns the same one session for it. Stripe is never
called inside a database transaction (a slow Stripe must not hold a lock).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import failpoints
from gateway.adapters.db.dialects import lock_link
from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Link, LinkItem, Order
from gateway.clock import Clock
from gateway.config import CheckoutSettings
from gateway.domain.checkout import (
    Create,
    LinkFacts,
    LinkState,
    OrderFacts,
    Refuse,
    Replace,
    Resume,
    Reuse,
    Timing,
    blocking_order,
    decide,
    link_state,
)
from gateway.domain.errors import (
    ConflictRetryExhausted,
    NotFound,
    PaymentProviderRejected,
    PaymentProviderUnavailable,
)
from gateway.domain.locales import STRIPE_LOCALES
from gateway.domain.orders import CancelReason, OrderStatus, SessionOutcome
from gateway.domain.payments import (
    KeyInUse,
    PaymentProvider,
    ServerErrorKept,
    SessionInfo,
    SessionRequest,
)
from gateway.services.audit import audit
from gateway.services.ids import new_order_id
from gateway.services.payments import PaymentRecorder, Recorded
from gateway.services.sessions import ReturnUrls, link_items, session_request

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_ROUNDS = 6  # a decision replayed after a concurrent change; more means heavy contention
# Waits before asking again while another replica's request holds the order's key (Stripe's
# 409): short, then longer, bounded in number and always by the request's deadline.
KEY_IN_USE_BACKOFF = (0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0)


@dataclass(frozen=True, slots=True)
class ItemView:
    description: str
    amount: int
    quantity: int

    @property
    def total(self) -> int:
        return self.amount * self.quantity


@dataclass(frozen=True, slots=True, eq=False)
class LinkView:
    """What the pages need to know about a link: no email, nothing to write.

    Compared and hashed by identity: a view never changes, so a page rendered from one object
    stays right for that object, and hashing it costs nothing (rendered pages are cached by it).
    """

    id: str
    name: str
    description: str
    currency: str
    amount_total: int
    ref: str
    items: tuple[ItemView, ...]
    state: LinkState
    valid_until: datetime
    paid_at: datetime | None
    facts: LinkFacts
    # The issuer's choice of language (gateway.domain.locales), None: the payer's browser's.
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class Redirect:
    url: str
    order_id: str
    kind: str  # created | reused | resumed | replaced


@dataclass(frozen=True, slots=True)
class Refused:
    view: LinkView


ConfirmResult = Redirect | Refused


class LinkColumns(Protocol):
    """The columns of a link the pages read: an ORM ``Link`` or a plain row of them."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def amount_total(self) -> int: ...
    @property
    def ref(self) -> str: ...
    @property
    def valid_until(self) -> datetime: ...
    @property
    def revoked_at(self) -> datetime | None: ...
    @property
    def locale(self) -> str | None: ...


class ItemColumns(Protocol):
    @property
    def description(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def quantity(self) -> int: ...


class OrderColumns(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def stripe_session_id(self) -> str | None: ...
    @property
    def session_url(self) -> str | None: ...
    @property
    def session_expires_at(self) -> datetime | None: ...
    @property
    def paid_at(self) -> datetime | None: ...


def order_facts(order: OrderColumns) -> OrderFacts:
    return OrderFacts(
        id=order.id,
        status=OrderStatus(order.status),
        created_at=order.created_at,
        session_id=order.stripe_session_id,
        session_url=order.session_url,
        session_expires_at=order.session_expires_at,
        paid_at=order.paid_at,
    )


def link_view(
    link: LinkColumns,
    items: Sequence[ItemColumns],
    orders: Sequence[OrderColumns],
    now: datetime,
) -> LinkView:
    """From ORM objects or plain rows of the same columns."""
    facts = LinkFacts(
        revoked=link.revoked_at is not None,
        valid_until=link.valid_until,
        orders=tuple(order_facts(o) for o in orders),
    )
    blocker = blocking_order(facts.orders)
    return LinkView(
        id=link.id,
        name=link.name,
        description=link.description,
        currency=link.currency,
        amount_total=link.amount_total,
        ref=link.ref,
        items=tuple(ItemView(i.description, i.amount, i.quantity) for i in items),
        state=link_state(facts, now),
        valid_until=link.valid_until,
        paid_at=blocker.paid_at if blocker else None,
        facts=facts,
        locale=link.locale,
    )


def _row(orders: Sequence[Order], order_id: str) -> Order:
    return next(order for order in orders if order.id == order_id)


@dataclass(frozen=True, slots=True)
class _Attempt:
    """What a round of Confirm decided to do at Stripe, once its transaction committed."""

    kind: str  # created | resumed | replace
    request: SessionRequest  # the attempt's session, exactly as stored with its order
    order: OrderFacts | None = None  # the attempt resumed or replaced (None: just created)


async def _items_and_orders(
    session: AsyncSession, link_id: str
) -> tuple[Sequence[LinkItem], Sequence[Order]]:
    """A link's items and orders, inside the caller's transaction."""
    orders = (
        await session.execute(
            sa.select(Order).where(Order.link_id == link_id).order_by(Order.created_at)
        )
    ).scalars()
    return await link_items(session, link_id), orders.all()


# Built once: constructing a statement costs more than running it on the quick reader.
_LINK_BY_ID = sa.select(Link.__table__).where(Link.id == sa.bindparam("link_id"))
_ITEMS_OF_LINK = (
    sa.select(LinkItem.__table__)
    .where(LinkItem.link_id == sa.bindparam("link_id"))
    .order_by(LinkItem.position)
)
_ORDERS_OF_LINK = (
    sa.select(Order.__table__)
    .where(Order.link_id == sa.bindparam("link_id"))
    .order_by(Order.created_at)
)


class CheckoutService:
    def __init__(
        self,
        db: Database,
        provider: PaymentProvider,
        clock: Clock,
        settings: CheckoutSettings,
        recorder: PaymentRecorder,
        *,
        stripe_deadline: float = 10.0,
    ) -> None:
        self._recorder = recorder  # shared with webhooks and the reconciler (gateway.wiring)
        self._db = db
        self._provider = provider
        self._clock = clock
        self._settings = settings
        self._timing = Timing(
            stale_after=timedelta(seconds=settings.stale_after),
            min_remaining=timedelta(seconds=settings.min_remaining),
        )
        # ``stripe.request_deadline``: all of one request's Stripe calls, SDK retries included,
        # end by then (a hung Stripe would otherwise hold a parent for timeout x retries).
        self.stripe_deadline = stripe_deadline
        # How a wait for another replica's call is made; tests inject one that does not sleep.
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def _deadline(self) -> float:
        """When this request must stop waiting for Stripe, on the event loop's clock (the wait
        is real time, whatever the injected clock says)."""
        return asyncio.get_running_loop().time() + self.stripe_deadline

    async def _create(self, request: SessionRequest, deadline: float) -> SessionInfo:
        """Create (or get back) the order's session. Inside this process concurrent presses
        share one call (the adapter's single flight); another replica pressing the same order
        meanwhile makes Stripe answer 409 ``idempotency_key_in_use``, and asking again once it
        is done gets its session: wait a little and ask again, within the deadline."""
        loop = asyncio.get_running_loop()
        for delay in KEY_IN_USE_BACKOFF:
            try:
                return await self._within(deadline, self._provider.create_session(request))
            except KeyInUse:
                if loop.time() + delay >= deadline:
                    raise
            await self.sleep(delay)
        return await self._within(deadline, self._provider.create_session(request))

    async def _within(self, deadline: float, call: Awaitable[T]) -> T:
        """Await a Stripe call, giving up at ``deadline``: the payer gets the 503 page and the
        next press takes it from there (the order, written first, stays pending)."""
        try:
            async with asyncio.timeout_at(deadline):
                return await call
        except TimeoutError:
            raise PaymentProviderUnavailable(
                f"Stripe did not answer within stripe.request_deadline ({self.stripe_deadline}s)"
            ) from None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    # --- Open -------------------------------------------------------------------------------

    async def view(self, link_id: str) -> LinkView | None:
        """A link as a visitor sees it, from the snapshot (reads only, no lock).

        The state is worked out now, from the snapshot's facts, so expiry by time is exact even
        for a snapshot a second old."""
        view: LinkView | None = await self._recorder.snapshots.get(
            link_id, lambda: self._read_view(link_id)
        )
        if view is None:
            return None
        state = link_state(view.facts, self.now())
        return view if state is view.state else dataclasses.replace(view, state=state)

    async def fresh_view(self, link_id: str) -> LinkView | None:
        """Straight from the database, bypassing the snapshot."""
        return await self._read_view(link_id)

    async def _read_view(self, link_id: str, *, with_items: bool = True) -> LinkView | None:
        # Plain rows, no ORM identity map: this is the read behind every GET miss and every
        # POST, so it uses the database's quickest read path.
        params = {"link_id": link_id}
        links = await self._db.fetch(_LINK_BY_ID, params)
        if not links:
            return None
        # The refusal pages a POST may show name no items; skipping them saves a third.
        items = await self._db.fetch(_ITEMS_OF_LINK, params) if with_items else ()
        orders = await self._db.fetch(_ORDERS_OF_LINK, params)
        return link_view(links[0], items, orders, self.now())

    # --- Confirm ----------------------------------------------------------------------------

    async def confirm(
        self, link_id: str, urls: ReturnUrls, *, checkout_locale: str | None = None
    ) -> ConfirmResult:
        """Pressing Pay. Each round decides under the link's lock, then acts outside it.

        ``checkout_locale`` is Stripe's page language for this press (a value Checkout accepts,
        :func:`gateway.domain.locales.stripe_locale`; None sends none). Like the return URLs it
        is stored on an order this press creates; an order resumed or reused keeps its own.
        """
        if checkout_locale is not None and checkout_locale not in STRIPE_LOCALES:
            # Stored, it would make every replay of the order's session request fail at Stripe.
            raise ValueError(f"not a Checkout locale: {checkout_locale[:40]!r}")
        deadline = self._deadline()
        answer = await self._answer_unlocked(link_id)
        if answer is not None:
            return answer
        replaced = False
        for _ in range(MAX_ROUNDS):
            step = await self._decide_locked(link_id, urls, checkout_locale)
            if step is None:
                continue  # another process inserted the pending order first; decide again
            if not isinstance(step, _Attempt):
                return step
            # The transaction is committed: the pending order exists before Stripe is called.
            self._recorder.snapshots.invalidate(link_id)
            failpoints.hit("after_order_insert")
            if step.kind == "replace":
                await self._retire_stale(step, deadline)
                replaced = True
                continue  # decide again: now there is no pending order (or a payment)
            info = await self._session_of(step, deadline)
            if info is None:
                replaced = True
                continue  # decide again: a new order, or the payment that was found
            failpoints.hit("after_session_created")
            await self._save_session(step.request.order_id, info)
            self._recorder.snapshots.invalidate(link_id)
            assert info.url is not None
            return Redirect(info.url, step.request.order_id, "replaced" if replaced else step.kind)
        raise ConflictRetryExhausted()

    async def _answer_unlocked(self, link_id: str) -> ConfirmResult | None:
        """The answer to most presses, from a plain read: a paid link is refused, a fresh session
        reused. Both are safe to decide without the lock (a payment is never undone, and a
        session reused a moment before it is paid only shows Stripe's "already paid" page), so
        the write lock, which serialises every writer on SQLite, is taken only to write."""
        view = await self._read_view(link_id, with_items=False)
        if view is None:
            raise NotFound(link_id)
        early = decide(view.facts, self.now(), self._timing)
        if isinstance(early, Refuse):
            return Refused(view)
        if isinstance(early, Reuse) and early.order.session_url:
            return Redirect(early.order.session_url, early.order.id, "reused")
        return None

    async def _decide_locked(
        self, link_id: str, urls: ReturnUrls, checkout_locale: str | None
    ) -> ConfirmResult | _Attempt | None:
        """One round's decision, under the link's lock: the answer, or the attempt to act on
        (its order committed when this returns), or ``None`` when a concurrent insert won."""
        async with self._db.write() as session:
            link = await lock_link(session, link_id)
            if link is None:
                raise NotFound(link_id)
            items, orders = await _items_and_orders(session, link_id)
            now = self.now()
            view = link_view(link, items, orders, now)
            match decide(view.facts, now, self._timing):
                case Refuse():
                    return Refused(view)
                case Reuse(order=facts):
                    assert facts.session_url is not None
                    return Redirect(facts.session_url, facts.id, "reused")
                case Create():
                    order = self._new_order(session, link, now, urls, checkout_locale)
                    try:
                        await session.flush()
                    except IntegrityError:
                        await session.rollback()
                        return None
                    return _Attempt("created", session_request(link, items, order, urls))
                case Resume(order=facts):
                    request = session_request(link, items, _row(orders, facts.id), urls)
                    return _Attempt("resumed", request, facts)
                case Replace(order=facts):
                    request = session_request(link, items, _row(orders, facts.id), urls)
                    return _Attempt("replace", request, facts)

    async def _session_of(self, attempt: _Attempt, deadline: float) -> SessionInfo | None:
        """The attempt's session from Stripe (created, or the same one again for its key), or
        ``None`` when the attempt had to be closed instead (the round decides again)."""
        try:
            return await self._create(attempt.request, deadline)
        except ServerErrorKept:
            if attempt.order is None or attempt.kind != "resumed":
                raise  # the payer gets the 503 page; the next press resumes and lands here
        # An earlier press got a 500 for this order, which Stripe replays for its key for 24
        # hours: the order can never get a session by asking again. Look for one it got anyway;
        # without one, the order is replaced by a new one (a new key) now.
        order = attempt.order
        found = await self._session_despite_error(attempt.request, order.created_at, deadline)
        if found is not None and found.outcome() is SessionOutcome.OPEN:
            return found
        await self._recorder.close_attempt(
            order.id,
            attempt.request.link_id,
            found,
            reason=CancelReason.SUPERSEDED,
            actor="visitor",
            detail="superseded: Stripe answered its session request with a server error, which "
            "it replays for the attempt's key",
        )
        return None

    def _new_order(
        self,
        session: AsyncSession,
        link: Link,
        now: datetime,
        urls: ReturnUrls,
        checkout_locale: str | None,
    ) -> Order:
        lifetime = self._settings.stale_after + self._settings.min_remaining
        order = Order(
            id=new_order_id(),
            link_id=link.id,
            status=OrderStatus.PENDING.value,
            amount_total=link.amount_total,
            currency=link.currency,
            created_at=now,
            updated_at=now,
            # Everything the session is created with is fixed now and stored, so that a retry,
            # a racing replica or the reconciler sends Stripe exactly the same request.
            success_url=urls.success_url,
            cancel_url=urls.cancel_url,
            session_expires_at=now + timedelta(seconds=lifetime),
            checkout_locale=checkout_locale,
        )
        session.add(order)
        audit(
            session,
            at=now,
            link_id=link.id,
            order_id=order.id,
            action="order.created",
            to_status=OrderStatus.PENDING.value,
            actor="visitor",
        )
        return order

    async def _save_session(self, order_id: str, info: SessionInfo) -> None:
        async with self._db.write() as session:
            await session.execute(
                sa.update(Order)
                .where(Order.id == order_id, Order.stripe_session_id.is_(None))
                .values(
                    stripe_session_id=info.id,
                    session_url=info.url,
                    session_expires_at=info.expires_at,
                    updated_at=self.now(),
                )
            )

    async def _retire_stale(self, attempt: _Attempt, deadline: float) -> None:
        """Expire a stale order's session at Stripe, then cancel the order (kept for audit), or
        record its payment (:meth:`PaymentRecorder.retire_attempt`), within the deadline.

        If Stripe cannot be asked, nothing changes and the payer gets a 503: two open sessions
        for one link would let a parent pay twice.
        """
        stale = attempt.order
        assert stale is not None

        def expire(session_id: str) -> Awaitable[SessionInfo]:
            return self._within(deadline, self._provider.expire_session(session_id))

        await self._recorder.retire_attempt(
            stale.id,
            attempt.request.link_id,
            stale.session_id,
            recover=lambda: self._recover_session(attempt.request, stale.created_at, deadline),
            expire=expire,
            reason=CancelReason.STALE,
            actor="visitor",
            detail=f"stale: older than {int(self._settings.stale_after)}s",
        )

    async def _recover_session(
        self, request: SessionRequest, created_at: datetime, deadline: float
    ) -> SessionInfo | None:
        """Find the session of an order whose creating request died before saving it.

        Stripe keeps an idempotency key for 24 hours, so asking again with the order's key returns
        the session if one was made. If none was, Stripe would make one now, unless the order's
        ``expires_at`` is too close, which Stripe rejects: then no session of this order can be
        open (any made would carry that same expiry), and the order can simply be canceled. If
        the key holds a 500, the sessions made since the order are searched instead.
        """
        try:
            info = await self._create(request, deadline)
        except PaymentProviderRejected:
            return None
        except ServerErrorKept:
            return await self._session_despite_error(request, created_at, deadline)
        await self._save_session(request.order_id, info)
        return info

    async def _session_despite_error(
        self, request: SessionRequest, created_at: datetime, deadline: float
    ) -> SessionInfo | None:
        """The session an order's create made although Stripe answered it with a 500, if any.

        Stripe calls a 500 indeterminate: the session may exist. It would carry the order id in
        its metadata (and ``client_reference_id``), and be created between the order and now.
        """
        start = int(created_at.timestamp()) - 60
        end = int(self._clock.now()) + 60
        sessions = await self._within(
            deadline, self._provider.list_sessions(created_from=start, created_to=end)
        )
        return next((s for s in sessions if s.order_id == request.order_id), None)

    async def record(
        self, info: SessionInfo, *, actor: str, outcome: SessionOutcome | None = None
    ) -> Recorded:
        return await self._recorder.record(info, actor=actor, outcome=outcome)

    # --- Return -----------------------------------------------------------------------------

    async def returned(self, link_id: str, session_id: str | None) -> LinkView | None:
        """The payer is back from Stripe. If the webhook has not arrived yet, ask Stripe about
        the session (only one of this link's) and record what it says: the same idempotent
        transition as the webhook, so the parent sees "paid" at once."""
        view = await self.view(link_id)
        if view is None or not session_id or view.state is not LinkState.PAYABLE:
            return view
        ours = any(o.session_id == session_id for o in view.facts.orders)
        if not ours:
            return view
        try:
            info = await self._within(self._deadline(), self._provider.retrieve_session(session_id))
        except (PaymentProviderUnavailable, PaymentProviderRejected):
            return view  # the page says "confirming"; the webhook or reconciler will settle it
        if info.outcome() in (SessionOutcome.PAID, SessionOutcome.PROCESSING):
            await self.record(info, actor="visitor")
            return await self.view(link_id)
        return view
