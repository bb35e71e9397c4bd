"""A gateway with admin keys, an outbox that owes messages (SMTP configured, never sent here),
and the Stripe emulator over HTTP; helpers that look inside."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from gateway.adapters.db.models import AuditEntry, Order, OutboxMessage, Refund
from gateway.services.links import IssuedLink
from gateway.web.keys import DATABASE
from tests.admin.support import AdminHarness, start_admin_harness

# Messages are owed (rows written) when an SMTP server is configured; the sender never runs
# in these tests (no background tasks), so nothing listens on it.
UNUSED_SMTP_PORT = 9


class MoneyHarness(AdminHarness):
    async def paid(self, link: IssuedLink) -> Order:
        """Pay the link through Stripe (webhooks delivered); its paid order."""
        await self.pay_flow(link)
        (order,) = [o for o in await self.orders(link) if o.status == "paid"]
        return order

    async def order(self, order_id: str) -> Order:
        async with self.app[DATABASE].read() as session:
            order = await session.get(Order, order_id)
        assert order is not None
        return order

    async def refund_rows(self, order_id: str) -> list[Refund]:
        async with self.app[DATABASE].read() as session:
            rows = await session.execute(
                sa.select(Refund).where(Refund.order_id == order_id).order_by(Refund.requested_at)
            )
            return list(rows.scalars())

    async def owed(self, kind: str, link_id: str | None = None) -> list[OutboxMessage]:
        query = sa.select(OutboxMessage).where(OutboxMessage.kind == kind)
        if link_id is not None:
            query = query.where(OutboxMessage.link_id == link_id)
        async with self.app[DATABASE].read() as session:
            return list((await session.execute(query)).scalars())

    async def actions(self, link: IssuedLink | str) -> list[tuple[str, str, str | None]]:
        link_id = link if isinstance(link, str) else link.id
        async with self.app[DATABASE].read() as session:
            rows = await session.execute(
                sa.select(AuditEntry.action, AuditEntry.actor, AuditEntry.detail)
                .where(AuditEntry.link_id == link_id)
                .order_by(AuditEntry.id)
            )
            return [(a, b, c) for a, b, c in rows.all()]

    def stripe_refunds(self, payment_intent: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.emulator.refunds.values()
            if payment_intent is None or r["payment_intent"] == payment_intent
        ]

    async def body(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        response = await self.api(method, path, **kwargs)
        return response.status, await response.json()


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> MoneyHarness:
    return await start_admin_harness(
        aiohttp_server,
        aiohttp_client,
        database_url,
        smtp_port=UNUSED_SMTP_PORT,
        harness=MoneyHarness,
    )
