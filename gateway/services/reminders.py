"""Payment reminders (issue 14 item 3): owing each step as an outbox row, what a payer or an
admin does to stop or pause them, and what a given day would send.

Scheduling (:meth:`Reminders.schedule`, the app's periodic task, every
:data:`SCHEDULE_INTERVAL`): each link with a due date that is still payable, whose reminders
nobody stopped or paused, owes each of its steps from the step's local day at
``reminders.send_from`` (``domain.reminders.local_moment``: a local date, so daylight saving
never moves it). An owed step becomes one outbox row of kind ``reminder`` and subject
``{link_id}:{step}`` with ``not_before`` that moment; the row is unique, so any number of runs
and of replicas running at once owe it once. A step whose moment came before the link existed
is not owed at all. Steps up to :data:`LOOKBACK` old are still written (the scheduler may have
been down), so the composer can skip a step missed by more than 48 hours and say so, rather
than it vanishing unrecorded.

Whether a row is really sent is decided when it is sent (``services.messages.reminders``),
from :func:`reminder_facts`: one read of the link, its orders and the address's earlier
refusals.

Stopping (:meth:`Reminders.stop`, the payer's one-click link) sets ``reminders_stopped_at`` and
audits it; it touches nothing else (receipts and other messages still go). Pausing
(:meth:`Reminders.set_paused`) is the admin's, per link; ``reminders.paused`` pauses them all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Link, Order, OutboxMessage
from gateway.clock import Clock
from gateway.config import Settings
from gateway.domain.checkout import LinkFacts, LinkState, OrderFacts, link_state
from gateway.domain.errors import NotFound
from gateway.domain.locales import for_link
from gateway.domain.orders import OrderStatus
from gateway.domain.outbox import Kind, State
from gateway.domain.reminders import (
    MAX_STEP_DAYS,
    ReminderError,
    ReminderFacts,
    address_refused,
    link_steps,
    local_moment,
    parse_clock,
    skip_reason,
    step_day,
    subject_of,
)
from gateway.domain.text import Text
from gateway.services.audit import audit
from gateway.services.outbox import Outbox

log = logging.getLogger(__name__)

# How often `serve` looks for owed steps. A step is owed from send_from; a few minutes late is
# still within the sending hours.
SCHEDULE_INTERVAL = 300.0
# Steps this old are still written (then skipped as missed, with the reason on the row).
LOOKBACK = timedelta(days=7)
# Links looked at per transaction.
BATCH = 500
# Orders that mean nothing is owed any more (paid) or a payment is on its way (processing).
_SETTLED = (OrderStatus.PAID.value, OrderStatus.PROCESSING.value)


@dataclass(frozen=True, slots=True)
class Owed:
    link_id: str
    step: int
    owed_at: datetime


@dataclass(frozen=True, slots=True)
class ScheduleReport:
    # Steps this run found newly owed and wrote (a replica writing the same step at the same
    # moment may list it too; the row is one).
    owed: tuple[Owed, ...]


@dataclass(frozen=True, slots=True)
class PreviewRow:
    link_id: str
    ref: str
    email: str
    step: int
    due: date
    owed_at: datetime
    # None: it would be sent. Else why not.
    skipped: Text | None
    # The outbox row of this step when one exists already: its state (sent, skipped, ...).
    row_state: str | None = None
    deferred_to: datetime | None = None


@dataclass(frozen=True, slots=True)
class StopStatus:
    """What the stop page needs: the link's language, whether reminders are stopped already,
    and whether the payment is still open."""

    locale: str | None
    stopped: bool
    payable: bool


@dataclass(frozen=True, slots=True)
class LinkForReminder:
    """What the composer and the preview read about one link, in one read."""

    link: Link
    orders: Sequence[Order]
    facts: ReminderFacts


class ReminderRules:
    """The configured schedule and hours, and what decides a step at send time (no database of
    its own: callers pass their read). Shared by the scheduler, the composer and the preview."""

    def __init__(self, settings: Settings, schedule: Callable[[], str] | None = None) -> None:
        self._settings = settings
        # The default schedule as it is now: the console's settings may change it while the
        # gateway runs (services.org_settings); the configured one otherwise.
        self._schedule = schedule or (lambda: settings.reminders.schedule)
        self.zone = ZoneInfo(settings.checkout.timezone)
        self.send_from: time = parse_clock(settings.reminders.send_from)
        self.send_until: time = parse_clock(settings.reminders.send_until)

    @property
    def paused_everywhere(self) -> bool:
        return self._settings.reminders.paused

    def steps_of(self, link: Link) -> tuple[int, ...]:
        try:
            return link_steps(link.reminder_steps, self._schedule())
        except ReminderError:
            # Validated when stored; a value written by hand is not worth a failed run.
            log.warning("link has an unreadable reminder schedule", extra={"link_id": link.id})
            return ()

    def owed_at(self, due: date, step: int) -> datetime:
        return local_moment(step_day(due, step), self.send_from, self.zone)

    # --- what is known at send time -------------------------------------------------------

    async def read_link(
        self, session: AsyncSession, link_id: str, *, owed_at: datetime, now: datetime
    ) -> LinkForReminder | None:
        """The link, its orders and the facts that decide whether a step goes (one read)."""
        link = await session.get(Link, link_id)
        if link is None:
            return None
        orders = list(
            (
                await session.execute(
                    sa.select(Order).where(Order.link_id == link_id).order_by(Order.created_at)
                )
            ).scalars()
        )
        refusals = (
            await session.execute(
                sa.select(OutboxMessage.last_error).where(
                    OutboxMessage.recipient == link.email,
                    OutboxMessage.state == State.FAILED.value,
                )
            )
        ).scalars()
        bounced = address_refused(link.last_send_error) or any(
            address_refused(error) for error in refusals
        )
        return LinkForReminder(link, orders, self.facts(link, orders, owed_at, now, bounced))

    def facts(
        self,
        link: Link,
        orders: Sequence[Order],
        owed_at: datetime,
        now: datetime,
        bounced: bool,
    ) -> ReminderFacts:
        state = link_state(
            LinkFacts(
                revoked=link.revoked_at is not None,
                valid_until=link.valid_until,
                orders=tuple(OrderFacts(o.id, OrderStatus(o.status), o.created_at) for o in orders),
            ),
            now,
        )
        return ReminderFacts(
            state=state,
            created_at=link.created_at,
            owed_at=owed_at,
            now=now,
            stopped=link.reminders_stopped_at is not None,
            paused=link.reminders_paused,
            paused_everywhere=self.paused_everywhere,
            bounced=bounced,
            refunded=any(o.status == OrderStatus.REFUNDED.value for o in orders),
            last_press_at=max((o.created_at for o in orders), default=None),
        )


class Reminders:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        clock: Clock,
        settings: Settings,
        *,
        schedule: Callable[[], str] | None = None,
    ) -> None:
        self._db = db
        self._outbox = outbox
        self._clock = clock
        self._settings = settings
        self.rules = ReminderRules(settings, schedule)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    # --- scheduling -----------------------------------------------------------------------

    async def schedule(self) -> ScheduleReport:
        """Owe every step whose moment has come (safe to run anywhere, any number of times)."""
        if not self._outbox.enabled or self.rules.paused_everywhere:
            return ScheduleReport(())
        now = self.now()
        written: list[Owed] = []
        after = ""
        while True:
            # Read first (most runs find nothing new), write only what is newly owed: on SQLite
            # a write holds the one write lock.
            async with self._db.read() as session:
                links = await self._candidates(session, now, after=after)
                newly = await self._newly_owed(session, links, now) if links else []
            if newly:
                async with self._db.write() as session:
                    await self._owe(session, newly)
                written += [item for _, item in newly]
            if len(links) < BATCH:
                break
            after = links[-1].id
        for owed in written:
            log.info(
                "reminder owed",
                extra={"link_id": owed.link_id, "step": owed.step, "owed_at": owed.owed_at},
            )
        return ScheduleReport(tuple(written))

    def _window(self, now: datetime) -> tuple[date, date]:
        """Due dates whose steps may be owed now: a step is at most MAX_STEP_DAYS away."""
        today = now.astimezone(self.rules.zone).date()
        back = timedelta(days=MAX_STEP_DAYS) + LOOKBACK + timedelta(days=1)
        return today - back, today + timedelta(days=MAX_STEP_DAYS + 1)

    async def _candidates(self, session: AsyncSession, now: datetime, *, after: str) -> list[Link]:
        """Payable-looking links with a due date near enough, whose reminders go on."""
        first, last = self._window(now)
        settled = sa.exists().where(Order.link_id == Link.id, Order.status.in_(_SETTLED))
        query = (
            sa.select(Link)
            .where(
                Link.due_date.is_not(None),
                Link.due_date >= first,
                Link.due_date <= last,
                Link.revoked_at.is_(None),
                Link.reminders_stopped_at.is_(None),
                Link.reminders_paused.is_(False),
                Link.valid_until > now,
                Link.id > after,
                ~settled,
            )
            .order_by(Link.id)
            .limit(BATCH)
        )
        return list((await session.execute(query)).scalars())

    async def _newly_owed(
        self, session: AsyncSession, links: Sequence[Link], now: datetime
    ) -> list[tuple[Link, Owed]]:
        """The steps of ``links`` whose moment has come and that have no row yet."""
        owed: list[tuple[Link, Owed]] = []
        for link in links:
            assert link.due_date is not None
            for step in self.rules.steps_of(link):
                moment = self.rules.owed_at(link.due_date, step)
                # Not yet; or before the link existed (nobody could have owed it); or so old
                # that even the skip is not worth recording.
                if moment > now or moment < link.created_at or now - moment > LOOKBACK:
                    continue
                owed.append((link, Owed(link.id, step, moment)))
        if not owed:
            return []
        # The batch's links are in id order: their rows are a range of link ids (no IN list).
        ids = sorted({o.link_id for _, o in owed})
        existing = set(
            (
                await session.execute(
                    sa.select(OutboxMessage.subject).where(
                        OutboxMessage.kind == Kind.REMINDER.value,
                        OutboxMessage.link_id >= ids[0],
                        OutboxMessage.link_id <= ids[-1],
                    )
                )
            ).scalars()
        )
        return [(link, o) for link, o in owed if subject_of(o.link_id, o.step) not in existing]

    async def _owe(self, session: AsyncSession, owed: Sequence[tuple[Link, Owed]]) -> None:
        """One row per step; a row another replica wrote meanwhile is left as it is."""
        default_locale = self._settings.checkout.default_locale
        for link, item in owed:
            await self._outbox.add(
                session,
                kind=Kind.REMINDER,
                subject=subject_of(item.link_id, item.step),
                recipient=link.email,
                locale=for_link(link.locale, default_locale),
                link_id=link.id,
                payload={"step": item.step, "owed_at": item.owed_at.isoformat()},
                not_before=item.owed_at,
            )

    # --- what a day would send ------------------------------------------------------------

    async def preview(self, day: date) -> list[PreviewRow]:
        """Every step that falls on ``day`` (local), as of that day's ``send_from`` (or now, if
        later): who would get it, or why not. Reads only."""
        now = self.now()
        rows: list[PreviewRow] = []
        first, last = day - timedelta(days=MAX_STEP_DAYS), day + timedelta(days=MAX_STEP_DAYS)
        async with self._db.read() as session:
            links = (
                await session.execute(
                    sa.select(Link)
                    .where(
                        Link.due_date.is_not(None),
                        Link.due_date >= first,
                        Link.due_date <= last,
                    )
                    .order_by(Link.due_date, Link.id)
                )
            ).scalars()
            for link in list(links):
                assert link.due_date is not None
                for step in self.rules.steps_of(link):
                    if step_day(link.due_date, step) != day:
                        continue
                    moment = self.rules.owed_at(link.due_date, step)
                    row = await self._row(session, subject_of(link.id, step))
                    rows.append(await self._preview_row(session, link, step, moment, now, row))
        return rows

    async def _row(self, session: AsyncSession, subject: str) -> OutboxMessage | None:
        return (
            await session.execute(
                sa.select(OutboxMessage).where(
                    OutboxMessage.kind == Kind.REMINDER.value, OutboxMessage.subject == subject
                )
            )
        ).scalar_one_or_none()

    async def _preview_row(
        self,
        session: AsyncSession,
        link: Link,
        step: int,
        moment: datetime,
        now: datetime,
        row: OutboxMessage | None,
    ) -> PreviewRow:
        assert link.due_date is not None
        at = max(moment, now)
        read = await self.rules.read_link(session, link.id, owed_at=moment, now=at)
        assert read is not None
        reason = skip_reason(read.facts)
        if reason is None and moment < link.created_at:
            reason = Text("the day came before the link was created")
        return PreviewRow(
            link_id=link.id,
            ref=link.ref,
            email=link.email,
            step=step,
            due=link.due_date,
            owed_at=moment,
            skipped=reason,
            row_state=row.state if row is not None else None,
            deferred_to=row.next_attempt_at
            if row is not None and row.state == State.PENDING.value
            else None,
        )

    # --- stopping and pausing -------------------------------------------------------------

    async def status(self, link_id: str) -> StopStatus:
        """For the stop page (reads only)."""
        now = self.now()
        async with self._db.read() as session:
            read = await self.rules.read_link(session, link_id, owed_at=now, now=now)
        if read is None:
            raise NotFound(link_id)
        return StopStatus(
            read.link.locale, read.facts.stopped, read.facts.state is LinkState.PAYABLE
        )

    async def stop(self, link_id: str, *, actor: str = "payer") -> bool:
        """The payer's "stop reminders for this payment": True when this stopped them, False
        when they were stopped already. Nothing but the link's reminders changes."""
        now = self.now()
        async with self._db.write() as session:
            changed = (
                await session.execute(
                    sa.update(Link)
                    .where(Link.id == link_id, Link.reminders_stopped_at.is_(None))
                    .values(reminders_stopped_at=now)
                    .returning(Link.id)
                )
            ).scalar_one_or_none() is not None
            if not changed:
                if await session.get(Link, link_id) is None:
                    raise NotFound(link_id)
                return False
            audit(
                session,
                at=now,
                link_id=link_id,
                action="reminders.stopped",
                actor=actor,
                detail="the payer stopped reminders for this payment (receipts still go)",
            )
        log.info("reminders stopped by the payer", extra={"link_id": link_id})
        return True

    async def set_paused(self, link_id: str, paused: bool, *, actor: str) -> bool:
        """Pause or resume one link's reminders; True when that changed something."""
        now = self.now()
        async with self._db.write() as session:
            changed = (
                await session.execute(
                    sa.update(Link)
                    .where(Link.id == link_id, Link.reminders_paused.is_(not paused))
                    .values(reminders_paused=paused)
                    .returning(Link.id)
                )
            ).scalar_one_or_none() is not None
            if not changed:
                if await session.get(Link, link_id) is None:
                    raise NotFound(link_id)
                return False
            audit(
                session,
                at=now,
                link_id=link_id,
                action="reminders.paused" if paused else "reminders.resumed",
                actor=actor,
            )
        return True
