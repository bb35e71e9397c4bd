"""Bulk actions on a selection of links in the console: send again, revoke.

Two steps, the same rules in both: :meth:`LinkBulkActions.plan` says what an action would do
("37 selected, 3 skipped (paid)", with a count per reason) and changes nothing;
:meth:`LinkBulkActions.run` reads the links again (they may have changed since the plan was
shown), acts on those still eligible, one at a time through the services the API and the CLI
use (:meth:`AdminLinks.resend`, :meth:`LinkService.revoke`, each auditing its own change with the
actor), and adds one entry about the whole run (``bulk.resend`` / ``bulk.revoke``, about no link).

Which links are skipped, and why (the reason is the link's status, or one of the below):

- send again: a link that cannot be paid any more (paid, processing, revoked, expired), as
  ``AdminLinks.resend`` refuses; ``not_found`` for an id that names no link;
- revoke: ``paid`` and ``processing`` (a payment made or under way is not taken back by
  revoking; a refund is its own action), ``revoked`` (already); ``not_found``.

A selection holds at most :data:`MAX_SELECTION` links (a page of the list at most): each send
again is an email sent before the answer, and each revoke may ask Stripe to expire a session.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.adapters.db.engine import Database
from gateway.adapters.tokens import LINK_ID
from gateway.clock import Clock
from gateway.domain.errors import NotFound, ValidationFailed
from gateway.domain.links import text_problem
from gateway.domain.payments import PaymentProvider
from gateway.domain.text import Text
from gateway.services.admin_links import NOT_SENDABLE, AdminLinks, LinkNotSendable
from gateway.services.audit import audit
from gateway.services.email import EmailNotConfigured, LinkMailer
from gateway.services.link_listing import LinkFilter, LinkListing
from gateway.services.link_search import LinkMatch
from gateway.services.links import LinkService

ACTIONS = ("resend", "revoke")
MAX_SELECTION = 100
NOT_REVOCABLE = ("paid", "processing", "revoked")
MAX_REASON = 200


@dataclass(frozen=True, slots=True)
class BulkPlan:
    action: str
    selected: int
    eligible: tuple[str, ...]  # link ids, in the order given
    skipped: dict[str, int]  # reason -> how many

    @property
    def skipped_count(self) -> int:
        return sum(self.skipped.values())


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    action: str
    selected: int
    done: tuple[str, ...]
    skipped: dict[str, int]
    failed: dict[str, str] = field(default_factory=dict)  # link id -> what went wrong

    @property
    def skipped_count(self) -> int:
        return sum(self.skipped.values())


class LinkBulkActions:
    def __init__(
        self,
        db: Database,
        listing: LinkListing,
        admin: AdminLinks,
        links: LinkService,
        mailer: LinkMailer,
        provider: PaymentProvider | None,
        clock: Clock,
    ) -> None:
        self._db = db
        self._listing = listing
        self._admin = admin
        self._links = links
        self._mailer = mailer
        self._provider = provider
        self._clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def plan(self, action: str, link_ids: list[str]) -> BulkPlan:
        """What ``action`` would do to the selection; changes nothing. Raises
        ``ValidationFailed`` for an unknown action, an empty or too large selection, or an id
        that is not a link id's shape; ``EmailNotConfigured`` for send again without mail."""
        if action not in ACTIONS:
            raise ValidationFailed({"action": Text("choose send again or revoke")})
        ids = list(dict.fromkeys(link_ids))  # each once, in the order given
        if not ids:
            raise ValidationFailed({"links": Text("select at least one link")})
        if len(ids) > MAX_SELECTION:
            raise ValidationFailed(
                {"links": Text("select at most %(count)s links at once", count=MAX_SELECTION)}
            )
        if any(not LINK_ID.fullmatch(i) for i in ids):
            raise ValidationFailed({"links": Text("the selection holds something not a link")})
        if action == "resend" and not self._mailer.enabled:
            raise EmailNotConfigured
        page = await self._listing.list(
            LinkFilter(match=LinkMatch(link_ids=tuple(ids)), limit=MAX_SELECTION)
        )
        status = {s.link.id: s.status for s in page.links}
        refused = NOT_SENDABLE if action == "resend" else NOT_REVOCABLE
        eligible: list[str] = []
        skipped: Counter[str] = Counter()
        for link_id in ids:
            found = status.get(link_id)
            if found is None:
                skipped["not_found"] += 1
            elif found in refused:
                skipped[found] += 1
            else:
                eligible.append(link_id)
        return BulkPlan(action, len(ids), tuple(eligible), dict(skipped))

    async def run(
        self, action: str, link_ids: list[str], *, actor: str, reason: str = ""
    ) -> BulkOutcome:
        """Do ``action`` to the selection's eligible links (read again now)."""
        if len(reason) > MAX_REASON:
            raise ValidationFailed(
                {"reason": Text("a reason of at most %(count)s characters", count=MAX_REASON)}
            )
        problem = text_problem(reason)
        if problem:
            raise ValidationFailed({"reason": problem})
        plan = await self.plan(action, link_ids)
        skipped = Counter(plan.skipped)
        done: list[str] = []
        failed: dict[str, str] = {}
        for link_id in plan.eligible:
            try:
                if action == "resend":
                    sent = await self._admin.resend(link_id, actor=actor)
                    if not sent.ok:
                        failed[link_id] = sent.error or "sending failed"
                        continue
                elif not await self._links.revoke(
                    link_id, actor=actor, reason=reason, provider=self._provider
                ):
                    skipped["revoked"] += 1  # revoked by someone else meanwhile
                    continue
            except LinkNotSendable as exc:  # paid or revoked meanwhile
                skipped[exc.state] += 1
                continue
            except NotFound:
                skipped["not_found"] += 1
                continue
            done.append(link_id)
        outcome = BulkOutcome(action, plan.selected, tuple(done), dict(skipped), failed)
        await self._audit(outcome, actor=actor, reason=reason)
        return outcome

    async def _audit(self, outcome: BulkOutcome, *, actor: str, reason: str) -> None:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(outcome.skipped.items()))
        detail = (
            f"{outcome.selected} selected, {len(outcome.done)} done"
            + (f", skipped: {skipped}" if skipped else "")
            + (f", {len(outcome.failed)} failed" if outcome.failed else "")
            + (f"; reason: {reason}" if reason else "")
        )
        async with self._db.write() as session:
            audit(
                session,
                at=self.now(),
                link_id=None,
                action=f"bulk.{outcome.action}",
                actor=actor,
                detail=detail,
            )
