"""The outbox: messages owed to people, written with the change that causes them and sent by a
sender that is safe on several replicas (the rules are gateway.domain.outbox's).

Writing: :meth:`Outbox.add` inserts a row in the caller's transaction, ``ON CONFLICT DO
NOTHING`` on ``(kind, subject)``: the state change and its message commit together or not at
all, and recording the same change again adds nothing.

Sending (:meth:`Outbox.send_due`, the app's periodic task; :meth:`Outbox.send_one` for a
message a person waits for): one short write transaction claims due rows — pending ones whose
time has come, and ``sending`` ones whose sender's lease ran out — marking them ``sending`` with
a lease (PostgreSQL skips rows another replica is claiming: ``FOR UPDATE SKIP LOCKED``; SQLite
has one writer at a time). Then, outside any transaction, each is built by its kind's
:class:`Composer` (from the rows as they are now: a reminder to a link paid since is skipped),
given its stable ``Message-ID`` and handed to SMTP; a second short transaction marks it. The mark
only applies while the row is still this sender's claim, so a sender that lost its lease never
overwrites what the next one did.

Nothing is deleted: sent, failed, skipped and canceled rows stay, for ``gateway mail list``.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Literal, Protocol, runtime_checkable

import jinja2
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import failpoints
from gateway.adapters.db.dialects import ByDialect, insert_ignore, locks_rows
from gateway.adapters.db.engine import Database, RowTransaction, run
from gateway.adapters.db.models import OutboxMessage as OutboxMessage  # the row, for callers
from gateway.adapters.mail import Mailer, MailError
from gateway.clock import Clock
from gateway.domain.errors import NotFound, ValidationFailed
from gateway.domain.outbox import (
    CANCELABLE,
    LEASE,
    RETRYABLE,
    Kind,
    State,
    after_refusal,
    message_id,
)
from gateway.services.audit import audit
from gateway.services.ids import new_message_id

log = logging.getLogger(__name__)

_TABLE = OutboxMessage.__table__
_INSERT: ByDialect = insert_ignore(
    _TABLE,  # type: ignore[arg-type]
    index_elements=[OutboxMessage.kind, OutboxMessage.subject],  # type: ignore[list-item]
)
_ERROR_CHARS = 500
_UNBUILDABLE = (ValueError, TypeError, LookupError, jinja2.TemplateError)
Outcome = Literal["sent", "retry", "failed", "skipped", "deferred", "lost"]
_OUTCOMES: dict[State, Outcome] = {
    State.SENT: "sent",
    State.PENDING: "retry",
    State.FAILED: "failed",
    State.SKIPPED: "skipped",
}


@dataclass(frozen=True, slots=True)
class Skip:
    """A message that has nothing to say any more (a reminder to a link paid since)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Defer:
    """Not now, later: back to pending until ``until`` (a reminder outside sending hours). The
    claim's attempt is given back: deferring is not failing."""

    until: datetime
    reason: str


class ComposeError(Exception):
    """The message cannot be built from what is stored (a template asks for a value nobody
    gave, a recipient the email package refuses): failed for good, the row kept with why."""


class Composer(Protocol):
    """Builds one kind's message from its row, at send time (subject, body, recipients, headers
    other than ``Message-ID``, which the outbox sets), or says there is nothing to send."""

    async def compose(self, message: OutboxMessage) -> EmailMessage | Skip | Defer: ...


@runtime_checkable
class Recorder(Protocol):
    """A composer that also writes what became of each send elsewhere (the link email: on the
    link and its audit trail), in the transaction that marks the row, whichever sender sent it."""

    async def record(
        self, session: AsyncSession, message: OutboxMessage, delivery: Delivery, now: datetime
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one claimed row. ``outcome``: sent | retry | failed | skipped | deferred
    | lost (the mark found the row claimed by another sender). ``resent_after_crash``: this send
    followed a sender that died mid-send (counted apart: a possible duplicate)."""

    id: str
    kind: str
    outcome: Outcome
    resent_after_crash: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SendReport:
    deliveries: tuple[Delivery, ...]
    # Rows whose sender died twice: failed without a third send.
    abandoned: tuple[str, ...] = ()


class Outbox:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        mailer: Mailer | None,
        composers: Mapping[str, Composer],
        domain: str,
        batch: int = 20,
    ) -> None:
        self._db = db
        self._clock = clock
        self._mailer = mailer
        self._composers = dict(composers)
        self._domain = domain
        self._batch = batch
        # Who holds a claim: unique per process (several replicas, or two apps in one test).
        self.sender_id = "snd_" + secrets.token_hex(6)

    @property
    def enabled(self) -> bool:
        """Whether there is anything to send with: no SMTP, no rows (nothing would ever go)."""
        return self._mailer is not None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    # --- writing --------------------------------------------------------------------------

    async def add(
        self,
        session: AsyncSession | RowTransaction,
        *,
        kind: Kind,
        subject: str,
        recipient: str,
        locale: str,
        link_id: str | None = None,
        order_id: str | None = None,
        payload: Mapping[str, Any] | None = None,
        not_before: datetime | None = None,
    ) -> None:
        """The message ``(kind, subject)`` is owed, in the caller's transaction (once, however
        often this is called). Nothing is written when mail is not configured."""
        if not self.enabled:
            return
        now = self.now()
        row_id = new_message_id()
        # Through run(): a webhook records a session in a plain-statement transaction
        # (Database.write_rows), and its receipt must be written in that same transaction.
        await run(
            session,
            _INSERT,
            {
                "id": row_id,
                "kind": str(kind),
                "subject": subject[:200],
                "link_id": link_id,
                "order_id": order_id,
                "recipient": recipient[:320],
                "locale": locale,
                "payload": json.dumps(dict(payload or {}), sort_keys=True),
                "state": State.PENDING.value,
                "attempts": 0,
                "crash_resends": 0,
                "next_attempt_at": max(not_before or now, now),
                "lease_until": None,
                "claimed_by": None,
                "message_id": message_id(row_id, self._domain),
                "last_error": None,
                "created_at": now,
                "updated_at": now,
                "sent_at": None,
            },
        )

    # --- sending --------------------------------------------------------------------------

    async def send_due(self, limit: int | None = None) -> SendReport:
        """Claim what is due and send it (the periodic task; safe on any number of replicas)."""
        if self._mailer is None:
            return SendReport(())
        abandoned, claimed = await self._claim(limit or self._batch, only=None)
        deliveries = [await self._deliver(row) for row in claimed]
        return SendReport(tuple(deliveries), abandoned)

    async def send_one(self, row_id: str) -> Delivery | None:
        """Send one row now if it is due (a message a person is waiting for); None if another
        sender has it or it is not pending."""
        if self._mailer is None:
            return None
        _, claimed = await self._claim(1, only=row_id)
        return await self._deliver(claimed[0]) if claimed else None

    async def _claim(
        self, limit: int, *, only: str | None
    ) -> tuple[tuple[str, ...], list[OutboxMessage]]:
        now = self.now()
        t = OutboxMessage
        lease_ran_out = sa.and_(t.state == State.SENDING.value, t.lease_until < now)
        async with self._db.write() as session:
            # A second lease run out: the message may well have gone twice already.
            abandoned = (
                await session.execute(
                    sa.update(t)
                    .where(lease_ran_out, t.crash_resends >= 1)
                    .values(
                        state=State.FAILED.value,
                        lease_until=None,
                        updated_at=now,
                        last_error="the sender stopped twice while sending it; it may have been "
                        "delivered, so it is not sent a third time",
                    )
                    .returning(t.id)
                )
            ).scalars()
            abandoned_ids = tuple(abandoned)
            due = sa.or_(
                sa.and_(t.state == State.PENDING.value, t.next_attempt_at <= now), lease_ran_out
            )
            pick = sa.select(t.id).where(due)
            if only is not None:
                pick = pick.where(t.id == only)
            pick = pick.order_by(t.next_attempt_at).limit(limit)
            if locks_rows(session):
                pick = pick.with_for_update(skip_locked=True)
            reclaimed = t.state == State.SENDING.value
            rows = (
                await session.execute(
                    sa.update(t)
                    .where(t.id.in_(pick.scalar_subquery()))
                    .values(
                        state=State.SENDING.value,
                        lease_until=now + LEASE,
                        claimed_by=self.sender_id,
                        updated_at=now,
                        attempts=t.attempts + sa.case((reclaimed, 0), else_=1),
                        crash_resends=t.crash_resends + sa.case((reclaimed, 1), else_=0),
                    )
                    .returning(t)
                    .execution_options(synchronize_session=False)
                )
            ).scalars()
            claimed = list(rows)
        for row_id in abandoned_ids:
            log.error("outbox message abandoned after two interrupted sends", extra={"id": row_id})
        return abandoned_ids, claimed

    async def _deliver(self, row: OutboxMessage) -> Delivery:
        assert self._mailer is not None
        resent = row.crash_resends > 0
        composer = self._composers.get(row.kind)
        try:
            if composer is None:
                raise ComposeError(f"no composer for kind {row.kind!r}")
            built = await composer.compose(row)
        except ComposeError as exc:
            return await self._mark_refused(row, str(exc), permanent=True, resent=resent)
        except _UNBUILDABLE as exc:
            # What is stored cannot make a message (a header with a line break, a template
            # asking for a value nobody gave): trying again would fail the same way.
            error = f"could not be built: {type(exc).__name__}: {exc}"
            return await self._mark_refused(row, error, permanent=True, resent=resent)
        except Exception as exc:  # a database hiccup, a bug: keep the row, try again later
            log.exception("outbox message could not be built", extra={"id": row.id})
            error = f"could not be built: {type(exc).__name__}"
            return await self._mark_refused(row, error, permanent=False, resent=resent)
        if isinstance(built, Skip):
            return await self._mark(row, State.SKIPPED, error=built.reason, resent=resent)
        if isinstance(built, Defer):
            return await self._mark(
                row,
                State.PENDING,
                error=built.reason,
                next_attempt_at=built.until,
                resent=resent,
                deferred=True,
            )
        del built["Message-ID"]
        built["Message-ID"] = row.message_id
        try:
            await self._mailer.send(built)
        except MailError as exc:
            return await self._mark_refused(row, str(exc), permanent=exc.permanent, resent=resent)
        except (ValueError, TypeError) as exc:  # headers the email package cannot encode
            error = f"could not be encoded: {type(exc).__name__}"
            return await self._mark_refused(row, error, permanent=True, resent=resent)
        failpoints.hit("after_smtp_accepted")
        return await self._mark(row, State.SENT, resent=resent)

    async def _mark_refused(
        self, row: OutboxMessage, error: str, *, permanent: bool, resent: bool
    ) -> Delivery:
        state, next_at = after_refusal(row.attempts, self.now(), permanent=permanent)
        return await self._mark(row, state, error=error, next_attempt_at=next_at, resent=resent)

    async def _mark(
        self,
        row: OutboxMessage,
        state: State,
        *,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
        resent: bool,
        deferred: bool = False,
    ) -> Delivery:
        now = self.now()
        t = OutboxMessage
        values: dict[str, Any] = {
            "state": state.value,
            "lease_until": None,
            "updated_at": now,
            "last_error": error[:_ERROR_CHARS] if error else None,
        }
        if state is State.SENT:
            values["sent_at"] = now
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        if deferred:
            values["attempts"] = t.attempts - sa.case((t.crash_resends > 0, 0), else_=1)
        outcome: Outcome = "deferred" if deferred else _OUTCOMES[state]
        recorder = self._composers.get(row.kind)
        async with self._db.write() as session:
            done = await session.execute(
                sa.update(t)
                .where(
                    t.id == row.id,
                    t.state == State.SENDING.value,
                    t.claimed_by == self.sender_id,
                )
                .values(**values)
                .returning(t.id)
            )
            mine = done.scalar_one_or_none() is not None
            if mine and isinstance(recorder, Recorder):
                delivery = Delivery(row.id, row.kind, outcome, resent, error)
                await recorder.record(session, row, delivery, now)
        if not mine:
            log.warning("outbox message was claimed by another sender", extra={"id": row.id})
            outcome = "lost"
        elif state is not State.SENT:
            log.warning(
                "outbox message not sent",
                extra={"id": row.id, "kind": row.kind, "outcome": outcome, "error": error},
            )
        return Delivery(row.id, row.kind, outcome, resent, error)

    # --- people steering it ---------------------------------------------------------------

    async def list(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        link_id: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> Sequence[OutboxMessage]:
        """Newest first; ``before``: the id of the last row of the previous page."""
        t = OutboxMessage
        query = sa.select(t).order_by(t.created_at.desc(), t.id.desc()).limit(min(limit, 500))
        if state:
            query = query.where(t.state == state)
        if kind:
            query = query.where(t.kind == kind)
        if link_id:
            query = query.where(t.link_id == link_id)
        async with self._db.read() as session:
            if before:
                last = await session.get(t, before)
                if last is not None:
                    query = query.where(
                        sa.tuple_(t.created_at, t.id) < sa.tuple_(last.created_at, last.id)
                    )
            return (await session.execute(query)).scalars().all()

    async def get(self, row_id: str) -> OutboxMessage:
        async with self._db.read() as session:
            row = await session.get(OutboxMessage, row_id)
        if row is None:
            raise NotFound(row_id)
        return row

    async def retry(self, row_id: str, *, actor: str | None = None) -> OutboxMessage:
        """Send a failed, canceled or skipped message again, now (a fresh set of attempts).
        ``actor``: the person who asked, in the link's audit trail when the message has one."""
        return await self._steer(
            row_id,
            RETRYABLE,
            actor=actor,
            action="mail.retried",
            state=State.PENDING,
            attempts=0,
            next_attempt_at=self.now(),
            last_error=None,
        )

    async def cancel(self, row_id: str, *, actor: str | None = None) -> OutboxMessage:
        """Never send a pending or failed message (``actor``: as for :meth:`retry`)."""
        return await self._steer(
            row_id, CANCELABLE, actor=actor, action="mail.canceled", state=State.CANCELED
        )

    async def _steer(
        self,
        row_id: str,
        allowed: frozenset[State],
        *,
        actor: str | None,
        action: str,
        state: State,
        **values: Any,
    ) -> OutboxMessage:
        now = self.now()
        t = OutboxMessage
        async with self._db.write() as session:
            row = (
                await session.execute(sa.select(t).where(t.id == row_id).with_for_update())
            ).scalar_one_or_none()
            if row is None:
                raise NotFound(row_id)
            if State(row.state) not in allowed:
                names = ", ".join(sorted(s.value for s in allowed))
                raise ValidationFailed(
                    {"state": f"a {row.state} message cannot be changed so (only {names})"}
                )
            before = row.state
            row.state = state.value
            row.updated_at = now
            for name, value in values.items():
                setattr(row, name, value)
            if actor is not None and row.link_id is not None:
                audit(
                    session,
                    at=now,
                    link_id=row.link_id,
                    action=action,
                    actor=actor,
                    detail=f"{row.kind} message {row.id}: {before} -> {state.value}",
                )
        return row
