"""Issuing, revoking and looking up payment links (the admin side)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import AuditEntry, Link, LinkItem, LinkPreview, Order
from gateway.adapters.tokens import TokenService
from gateway.clock import Clock
from gateway.domain.checkout import link_state
from gateway.domain.errors import NotFound, PaymentProviderUnavailable
from gateway.domain.links import NewLink
from gateway.domain.orders import CancelReason, OrderStatus
from gateway.domain.payments import PaymentProvider
from gateway.services.audit import audit
from gateway.services.checkout import link_view
from gateway.services.ids import new_link_id
from gateway.services.payments import PaymentRecorder, cancel_pending, lock_link
from gateway.services.snapshots import SnapshotCache

# Issuing links with a ref takes this PostgreSQL advisory lock (transaction-scoped), so "is there
# a live link for this ref?" and the insert are one step across replicas; SQLite's write lock
# (BEGIN IMMEDIATE) does the same there.
REF_LOCK_KEY = 0x67775F726566  # "gw_ref"


@dataclass(frozen=True, slots=True)
class IssuedLink:
    id: str
    token: str
    url: str
    # Set when a live link for the ref existed and was returned instead of a new one.
    existing: Link | None = None


@dataclass(frozen=True, slots=True)
class LinkDetail:
    link: Link
    items: Sequence[LinkItem]
    orders: Sequence[Order]
    audit: Sequence[AuditEntry]
    previews: Sequence[LinkPreview]
    state: str
    url: str


class LinkUrls:
    """A link's signed token and payer URL (what emails and pages link to). Apart from
    :class:`LinkService` so that whatever only writes URLs (the outbox's composers) needs
    nothing else."""

    def __init__(self, tokens: TokenService, public_url: str) -> None:
        self._tokens = tokens
        self._public_url = public_url.rstrip("/")

    def url_for(self, link_id: str, created_at: datetime) -> tuple[str, str]:
        token = self._tokens.sign(link_id, created_at.timestamp())
        return token, f"{self._public_url}/pay/{token}"


class LinkService:
    def __init__(
        self,
        db: Database,
        tokens: TokenService,
        clock: Clock,
        public_url: str,
        snapshots: SnapshotCache[Any] | None = None,
        *,
        recorder: PaymentRecorder | None = None,
    ) -> None:
        self._snapshots = snapshots
        # What retires a pending attempt on Stripe when a link is revoked with a provider
        # (gateway.wiring passes one in; a LinkService built alone can issue and revoke, but not
        # retire an attempt at Stripe).
        self._recorder = recorder
        self._db = db
        self._clock = clock
        self._urls = LinkUrls(tokens, public_url)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    def url_for(self, link_id: str, created_at: datetime) -> tuple[str, str]:
        return self._urls.url_for(link_id, created_at)

    async def issue(self, new: NewLink, *, actor: str, replaces: str | None = None) -> IssuedLink:
        async with self._db.write() as session:
            link = self.add_link(session, new, actor=actor, now=self.now(), replaces=replaces)
        token, url = self.url_for(link.id, link.created_at)
        return IssuedLink(link.id, token, url)

    async def issue_many(
        self, news: Sequence[NewLink], *, actor: str, reuse_refs: bool = False
    ) -> list[IssuedLink]:
        """Issue several links in ONE transaction: all of them or none.

        With ``reuse_refs``, a link whose ref already has a live (not revoked) link is not
        issued: that link is returned, with ``existing`` set. The check and the inserts are one
        step (see :data:`REF_LOCK_KEY`), so two runs at the same moment cannot both issue one.
        Rows go in as plain multi-row inserts: tens of thousands a second, not hundreds.
        """
        now = self.now()
        async with self._db.write() as session:
            found: dict[str, Link] = {}
            refs = sorted({new.ref for new in news if new.ref}) if reuse_refs else []
            if refs:
                if not self._db.is_sqlite:
                    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(REF_LOCK_KEY)))
                found = await live_links_by_ref(session, refs)
            results: list[IssuedLink] = []
            links: list[dict[str, Any]] = []
            items: list[dict[str, Any]] = []
            entries: list[dict[str, Any]] = []
            for new in news:
                existing = found.get(new.ref) if new.ref else None
                if existing is not None:
                    results.append(
                        IssuedLink(
                            existing.id,
                            *self.url_for(existing.id, existing.created_at),
                            existing=existing,
                        )
                    )
                    continue
                link_id = new_link_id()
                links.append(_link_row(link_id, new, actor=actor, now=now))
                items.extend(
                    {
                        "link_id": link_id,
                        "position": position,
                        "description": item.description,
                        "amount": item.amount,
                        "quantity": item.quantity,
                    }
                    for position, item in enumerate(new.items)
                )
                entries.append(
                    {
                        "at": now,
                        "link_id": link_id,
                        "action": "link.issued",
                        "actor": actor,
                        "detail": f"{len(new.items)} item(s), {new.amount_total} {new.currency}",
                    }
                )
                results.append(IssuedLink(link_id, *self.url_for(link_id, now)))
            if links:
                await session.execute(sa.insert(Link), links)
                await session.execute(sa.insert(LinkItem), items)
                await session.execute(sa.insert(AuditEntry), entries)
        return results

    def add_link(
        self,
        session: AsyncSession,
        new: NewLink,
        *,
        actor: str,
        now: datetime,
        replaces: str | None = None,
    ) -> Link:
        """Add a link, its items and its audit entry to the caller's transaction."""
        link = Link(
            id=new_link_id(),
            email=new.email,
            name=new.name,
            description=new.description,
            currency=new.currency,
            amount_total=new.amount_total,
            ref=new.ref,
            created_at=now,
            created_by=actor,
            valid_until=now + timedelta(seconds=new.valid_for),
            replaces_id=replaces,
            locale=new.locale,
            due_date=new.due_date,
            reminder_steps=new.reminder_steps,
            open_count=0,
            sent_count=0,
        )
        session.add(link)
        # Items refer to the link: the unit of work inserts the link row first.
        for position, item in enumerate(new.items):
            session.add(
                LinkItem(
                    link_id=link.id,
                    position=position,
                    description=item.description,
                    amount=item.amount,
                    quantity=item.quantity,
                )
            )
        audit(
            session,
            at=now,
            link_id=link.id,
            action="link.issued",
            actor=actor,
            detail=f"{len(new.items)} item(s), {new.amount_total} {new.currency}"
            + (f", replaces {replaces}" if replaces else ""),
        )
        return link

    async def revoke(
        self, link_id: str, *, actor: str, reason: str = "", provider: PaymentProvider | None = None
    ) -> bool:
        """Revoke a link; its pending attempt is canceled and its session expired at Stripe.

        Returns False when it was already revoked. A payment that still arrives on the expired
        session's race is recorded (a payment always wins), and shown to the admin.
        """
        now = self.now()
        async with self._db.write() as session:
            link = await lock_link(session, link_id)
            if link is None:
                raise NotFound(link_id)
            if link.revoked_at is not None:
                return False
            link.revoked_at, link.revoked_by, link.revoke_reason = now, actor, reason[:200] or None
            audit(
                session,
                at=now,
                link_id=link_id,
                action="link.revoked",
                actor=actor,
                detail=reason or None,
            )
            pending = (
                (
                    await session.execute(
                        sa.select(Order).where(
                            Order.link_id == link_id, Order.status == OrderStatus.PENDING.value
                        )
                    )
                )
                .scalars()
                .all()
            )
        self._invalidate(link_id)
        for order in pending:
            await self._cancel_pending(order, actor=actor, provider=provider)
        self._invalidate(link_id)
        return True

    async def live_by_ref(self, refs: Sequence[str]) -> dict[str, Link]:
        """The live (not revoked) link of each ref that has one; the newest when several do."""
        async with self._db.read() as session:
            return await live_links_by_ref(session, refs)

    def _invalidate(self, link_id: str) -> None:
        if self._snapshots is not None:
            self._snapshots.invalidate(link_id)

    async def _cancel_pending(
        self, order: Order, *, actor: str, provider: PaymentProvider | None
    ) -> None:
        if provider is not None:
            recorder = self._recorder  # the wired one holds this same provider
            if recorder is None:
                # Retiring an attempt goes through the one recorder gateway.wiring builds.
                raise TypeError("a LinkService built without a recorder cannot retire attempts")
            # If Stripe cannot be asked, the link is revoked anyway; the reconciler retires the
            # attempt later.
            with contextlib.suppress(PaymentProviderUnavailable):
                await recorder.retire(
                    order.id, reason=CancelReason.REVOKED, actor=actor, detail="link revoked"
                )
            return
        async with self._db.write() as session:
            await cancel_pending(
                session,
                order_id=order.id,
                link_id=order.link_id,
                reason=CancelReason.REVOKED,
                actor=actor,
                detail="link revoked",
                now=self.now(),
                only_without_session=True,
            )

    async def show(self, link_id: str) -> LinkDetail:
        async with self._db.read() as session:
            link = (
                await session.execute(
                    sa.select(Link)
                    .where(Link.id == link_id)
                    .options(selectinload(Link.items), selectinload(Link.orders))
                )
            ).scalar_one_or_none()
            if link is None:
                raise NotFound(link_id)
            entries = (
                (
                    await session.execute(
                        sa.select(AuditEntry)
                        .where(AuditEntry.link_id == link_id)
                        .order_by(AuditEntry.id)
                    )
                )
                .scalars()
                .all()
            )
            previews = (
                (
                    await session.execute(
                        sa.select(LinkPreview)
                        .where(LinkPreview.link_id == link_id)
                        .order_by(LinkPreview.count.desc())
                    )
                )
                .scalars()
                .all()
            )
            view = link_view(link, link.items, link.orders, self.now())
            _, url = self.url_for(link.id, link.created_at)
            return LinkDetail(
                link, link.items, link.orders, entries, previews, view.state.value, url
            )

    async def orders(
        self, *, limit: int = 100, offset: int = 0, status: str | None = None
    ) -> Sequence[Order]:
        async with self._db.read() as session:
            stmt = (
                sa.select(Order)
                .order_by(Order.created_at.desc(), Order.id)
                .limit(limit)
                .offset(offset)
            )
            if status:
                stmt = stmt.where(Order.status == status)
            return (await session.execute(stmt)).scalars().all()


def _link_row(link_id: str, new: NewLink, *, actor: str, now: datetime) -> dict[str, Any]:
    return {
        "id": link_id,
        "email": new.email,
        "name": new.name,
        "description": new.description,
        "currency": new.currency,
        "amount_total": new.amount_total,
        "ref": new.ref,
        "created_at": now,
        "created_by": actor,
        "valid_until": now + timedelta(seconds=new.valid_for),
        "replaces_id": None,
        "locale": new.locale,
        "due_date": new.due_date,
        "reminder_steps": new.reminder_steps,
        "open_count": 0,
        "sent_count": 0,
    }


# Refs per query: well under SQLite's limit of bound parameters.
_REFS_PER_QUERY = 5000


async def live_links_by_ref(session: AsyncSession, refs: Sequence[str]) -> dict[str, Link]:
    """Inside the caller's transaction: the newest live (not revoked) link of each ref."""
    links: list[Link] = []
    wanted = sorted(set(refs))
    postgres = session.get_bind().dialect.name == "postgresql"
    for start in range(0, len(wanted), _REFS_PER_QUERY):
        chunk = wanted[start : start + _REFS_PER_QUERY]
        # No ORDER BY: it would tempt the planner to walk the table in date order, testing every
        # row against the list, instead of looking the refs up in ix_links_ref. On PostgreSQL
        # the refs are a table to join (one array parameter): a list tested row by row costs
        # rows x refs when the table has no statistics yet, as after a first big import.
        query = sa.select(Link).where(Link.revoked_at.is_(None))
        if postgres:
            given = (
                sa.func.unnest(sa.bindparam("refs", chunk, type_=ARRAY(sa.String)))
                .table_valued("ref")
                .render_derived()
            )
            query = query.join(given, Link.ref == given.c.ref)
        else:
            query = query.where(Link.ref.in_(chunk))
        links.extend((await session.execute(query)).scalars())
    links.sort(key=lambda link: (link.created_at, link.id))
    return {link.ref: link for link in links}  # the newest wins


__all__ = ["IssuedLink", "LinkDetail", "LinkService", "link_state"]
