"""Each situation of the support desk built for real: through the payer's pages, the emulator's
payments and webhooks, the admin services and the clock."""

from __future__ import annotations

import sqlalchemy as sa

from gateway.adapters.db.models import Order
from gateway.services.links import IssuedLink
from gateway.services.support import Diagnosis, SupportDesk
from gateway.web.keys import DATABASE, LINKS, MONEY, OUTBOX, PAYMENTS, SUPPORT
from tests.admin.support import AdminHarness
from tests.harness import session_id_from

BOT_HEADERS = {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}


def desk(h: AdminHarness) -> SupportDesk:
    return h.app[SUPPORT]


async def diagnosed(h: AdminHarness, link: IssuedLink | str) -> Diagnosis:
    return await desk(h).diagnose(link if isinstance(link, str) else link.id)


async def opened(h: AdminHarness, link: IssuedLink) -> None:
    assert (await h.get(link)).status == 200
    await h.flush_opens()


async def previewed_by_bots(h: AdminHarness, link: IssuedLink) -> None:
    assert (await h.get(link, headers=BOT_HEADERS)).status == 200
    await h.flush_opens()


async def at_checkout(h: AdminHarness, link: IssuedLink) -> str:
    pressed = await h.post(link)
    assert pressed.status == 303, await pressed.text()
    return session_id_from(pressed.headers["Location"])


async def processing(h: AdminHarness, link: IssuedLink) -> str:
    session_id = await at_checkout(h, link)
    h.emulator.pay(session_id, "async")
    await h.emulator.deliver_webhooks()
    return session_id


async def bank_failed(h: AdminHarness, link: IssuedLink) -> None:
    session_id = await processing(h, link)
    h.emulator.settle_async(session_id, succeed=False)
    await h.emulator.deliver_webhooks()


async def receipt_delivered(h: AdminHarness) -> None:
    report = await h.app[OUTBOX].send_due()
    assert report is not None


async def paid_twice(h: AdminHarness, link: IssuedLink) -> tuple[Order, Order]:
    """Two tabs: the old session paid after the new one (as tests/integration's reconcile
    tests do); the second payment is recorded as a duplicate of the first."""
    old = await at_checkout(h, link)
    h.clock.advance(31 * 60)
    new = await at_checkout(h, link)
    h.emulator.pay(new)
    await h.emulator.deliver_webhooks()
    h.emulator.sessions[old]["status"] = "open"
    h.emulator.pay(old)
    await h.emulator.deliver_webhooks()
    orders = {o.stripe_session_id: o for o in await h.orders(link)}
    assert orders[old].duplicate_of == orders[new].id
    return orders[new], orders[old]


async def lose_order_row(h: AdminHarness, order_id: str) -> None:
    """The database restored from a backup taken before the Pay press (tests/money's orphans)."""
    async with h.app[DATABASE].write() as session:
        await session.execute(sa.delete(Order).where(Order.id == order_id))


async def orphan(h: AdminHarness, link: IssuedLink) -> tuple[str, str]:
    """A payment made on a session whose order row was lost, found by reconcile: (the orphan
    payment's id, the payment intent)."""
    session_id = await at_checkout(h, link)
    (order,) = await h.orders(link)
    await lose_order_row(h, order.id)
    h.emulator.pay(session_id)
    await h.emulator.deliver_webhooks()
    response = await h.api("POST", "/reconcile")
    report = await response.json()
    assert response.status == 200, report
    (orphan_id,) = report["orphans_found"]
    return orphan_id, h.emulator.sessions[session_id]["payment_intent"]


async def revoked(h: AdminHarness, link: IssuedLink) -> None:
    await h.app[LINKS].revoke(
        link.id, actor="test", reason="wrong amount", provider=h.app[PAYMENTS]
    )


async def marked_paid(h: AdminHarness, link: IssuedLink) -> None:
    await h.app[MONEY].manual.mark_paid(
        link.id, amount="150.00", method="cash", note="paid at the club house", actor="admin:t"
    )
