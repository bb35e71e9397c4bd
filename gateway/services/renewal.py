"""The payer's "Email me a new link" on an expired page: a service of its own, wired with the
others (``gateway.wiring``), so the payer's pages never depend on the admin API being set up.

Rules: at most ``email.renew_limit`` requests per ``email.renew_window`` for one link; the new
link is written before the old is revoked, so a crash in between leaves a replacement that the
next request finds and sends again instead of a second one; only an expired link (or a payable
one whose token expired) is renewed. The new link copies the old one's payer, items, ref and
locale (the family keeps reading the language it was written to in).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import AuditEntry, Link, Order
from gateway.clock import Clock
from gateway.config import Settings
from gateway.domain.checkout import LinkState
from gateway.domain.errors import NotFound
from gateway.domain.links import ItemSpec, NewLink
from gateway.domain.payments import PaymentProvider
from gateway.services.audit import audit
from gateway.services.checkout import link_view
from gateway.services.email import LinkMailer
from gateway.services.links import LinkService
from gateway.services.payments import lock_link


class RenewOutcome(StrEnum):
    SENT = "sent"  # a fresh link was issued and emailed
    RESENT = "resent"  # a fresh link existed already; it was emailed again
    RATE_LIMITED = "rate_limited"
    NOT_RENEWABLE = "not_renewable"  # payable, paid, processing, or revoked by an admin
    EMAIL_FAILED = "email_failed"  # the fresh link exists; sending it failed (recorded)
    DISABLED = "disabled"  # email is not configured


@dataclass(frozen=True, slots=True)
class RenewResult:
    outcome: RenewOutcome
    new_link_id: str | None = None


@dataclass(frozen=True, slots=True)
class Replacement:
    """The newest link issued in place of a renewed one, as the old link's page tells it."""

    link_id: str
    sent_at: datetime  # when it was last emailed (issued, if it never was)
    state: LinkState


class Renewals:
    def __init__(
        self,
        db: Database,
        links: LinkService,
        mailer: LinkMailer,
        provider: PaymentProvider | None,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self._db = db
        self._links = links
        self._mailer = mailer
        self._provider = provider
        self._settings = settings
        self._clock = clock

    @property
    def enabled(self) -> bool:
        """Whether the expired page offers "Email me a new link" (email is configured)."""
        return self._mailer.enabled

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def renew(self, link_id: str, *, token_expired: bool = False) -> RenewResult:
        """ "Email me a new link" from an expired page: revoke the old link, issue a new one for
        the same payment, and email it to the address on file, at most ``email.renew_limit``
        times per ``email.renew_window`` for one link.

        The new link is written before the old is revoked, in that order, so a crash in between
        leaves a replacement that the next request finds and sends again instead of a second one.
        """
        if not self._mailer.enabled:
            return RenewResult(RenewOutcome.DISABLED)
        limits = self._settings.email
        now = self.now()
        async with self._db.write() as session:
            link = await lock_link(session, link_id)
            if link is None:
                raise NotFound(link_id)
            recent = (
                await session.execute(
                    sa.select(sa.func.count())
                    .select_from(AuditEntry)
                    .where(
                        AuditEntry.link_id == link_id,
                        AuditEntry.action == "link.renew_requested",
                        AuditEntry.at > now - timedelta(seconds=limits.renew_window),
                    )
                )
            ).scalar_one()
            if recent >= limits.renew_limit:
                return RenewResult(RenewOutcome.RATE_LIMITED)
            target = await self._latest_replacement(session, link)
            orders = (
                (await session.execute(sa.select(Order).where(Order.link_id == target.id)))
                .scalars()
                .all()
            )
            items = (
                await session.execute(
                    sa.select(Link).where(Link.id == target.id).options(selectinload(Link.items))
                )
            ).scalar_one()
            state = link_view(target, items.items, orders, now).state
            fresh: Link | None = None
            if target.id != link.id and state is LinkState.PAYABLE:
                pass  # a replacement exists and works: send it again
            elif state is LinkState.EXPIRED or (
                state is LinkState.PAYABLE and token_expired and target.id == link.id
            ):
                fresh = self._links.add_link(
                    session,
                    self._copy(target, items.items),
                    actor="visitor",
                    now=now,
                    replaces=target.id,
                )
            else:
                # Paid, processing, or withdrawn by an admin: the page says what to do.
                return RenewResult(RenewOutcome.NOT_RENEWABLE)
            audit(
                session,
                at=now,
                link_id=link_id,
                action="link.renew_requested",
                actor="visitor",
                detail="fresh link requested from the expired page",
            )
            new_id = fresh.id if fresh is not None else target.id
            old_ids = [x for x in {link.id, target.id} if x != new_id]
        for old in old_ids:
            # Cancels a pending attempt and expires its Stripe session too; no-op when done.
            await self._links.revoke(
                old, actor="visitor", reason=f"replaced by {new_id}", provider=self._provider
            )
        result = await self._mailer.send_link(new_id, actor="visitor", renewal=True)
        if not result.ok:
            return RenewResult(RenewOutcome.EMAIL_FAILED, new_id)
        return RenewResult(RenewOutcome.SENT if fresh is not None else RenewOutcome.RESENT, new_id)

    async def replacement(self, link_id: str) -> Replacement | None:
        """What "Email me a new link" put in this link's place, if it did: read only."""
        async with self._db.read() as session:
            link = await session.get(Link, link_id)
            if link is None or link.revoked_at is None:
                return None
            target = await self._latest_replacement(session, link)
            if target.id == link.id:
                return None
            orders = (
                (await session.execute(sa.select(Order).where(Order.link_id == target.id)))
                .scalars()
                .all()
            )
        state = link_view(target, (), orders, self.now()).state
        return Replacement(target.id, target.last_sent_at or target.created_at, state)

    async def _latest_replacement(self, session: Any, link: Link) -> Link:
        current = link
        for _ in range(20):  # a chain of renewals; bounded against a cycle in bad data
            newer = (
                await session.execute(
                    sa.select(Link)
                    .where(Link.replaces_id == current.id)
                    .order_by(Link.created_at.desc(), Link.id)
                    .limit(1)
                )
            ).scalar_one_or_none()
            if newer is None:
                return current
            current = newer
        return current

    def _copy(self, link: Link, items: Sequence[Any]) -> NewLink:
        original = (link.valid_until - link.created_at).total_seconds()
        valid_for = min(max(original, 3600.0), self._settings.tokens.max_age)
        return NewLink(
            email=link.email,
            name=link.name,
            description=link.description,
            currency=link.currency,
            items=tuple(ItemSpec(i.description, i.amount, i.quantity) for i in items),
            ref=link.ref,
            valid_for=valid_for,
            # The payer reads the new link in the language the old one was issued in.
            locale=link.locale,
        )
