"""Payments found at Stripe and not recorded here (issue 16) are on the console's Needs
attention list and in the alert digest until someone attaches them."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import OrphanPayment
from gateway.dev.clock import FakeClock
from gateway.services.alerts import AlertFinder, Section
from gateway.services.overview import Attention, Overview
from tests.console.test_overview import a_link, clock, now_of, org, overview
from tests.outbox.support import db

__all__ = ["clock", "db", "org", "overview"]


async def an_orphan(db: Database, orphan_id: str, link_id: str | None, *, at: object) -> None:
    async with db.write() as session:
        session.add(
            OrphanPayment(
                id=orphan_id,
                payment_intent_id=f"pi_{orphan_id}",
                session_id=f"cs_{orphan_id}",
                amount=15000,
                currency="usd",
                link_id=link_id,
                found_at=at,
                paid_at=at,
            )
        )


class TestOrphanPayments:
    async def test_unattached_orphans_come_first_on_needs_attention(
        self, db: Database, clock: FakeClock, overview: Overview
    ) -> None:
        now = now_of(clock)
        await a_link(db, "lk_1", created=now - timedelta(days=40), ref="2026-04/fam-7")
        await an_orphan(db, "op_1", "lk_1", at=now - timedelta(days=35))  # however old
        await an_orphan(db, "op_2", None, at=now - timedelta(hours=2))

        groups = await overview.needs_attention()

        assert groups[0].kind is Attention.ORPHAN
        assert groups[0].count == 2
        sentences = sorted(str(item.sentence) for item in groups[0].items)
        assert sentences == [
            "2026-04/fam-7 was paid at Stripe but the payment is not recorded here",
            "A payment at Stripe names no link of this gateway",
        ]

    async def test_an_attached_orphan_leaves_the_list(
        self, db: Database, clock: FakeClock, overview: Overview
    ) -> None:
        now = now_of(clock)
        await an_orphan(db, "op_1", None, at=now - timedelta(hours=2))
        async with db.write() as session:
            await session.execute(
                sa.update(OrphanPayment).values(attached_at=now, attached_by="admin:kim")
            )

        assert [g.kind for g in await overview.needs_attention()] == []

    async def test_the_digest_reports_those_found_in_its_window(
        self, db: Database, clock: FakeClock
    ) -> None:
        now = now_of(clock)
        await an_orphan(db, "op_1", None, at=now - timedelta(minutes=30))
        await an_orphan(db, "op_2", None, at=now - timedelta(days=3))  # an earlier window's

        digest = await AlertFinder(db).collect(now - timedelta(hours=1), now)

        (section,) = digest.sections
        assert section.name is Section.ORPHAN_PAYMENTS
        assert section.count == 1 and section.items[0].id == "op_1"
