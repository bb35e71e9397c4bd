"""Each situation a parent writes about, built for real against the emulator, and the one
diagnosis, the fixes and the reply the desk gives (issue 16 items 2 and 4)."""

from __future__ import annotations

from gateway.domain.support import Fix, Kind
from tests.money.support import MoneyHarness
from tests.support.support import (
    at_checkout,
    bank_failed,
    desk,
    diagnosed,
    marked_paid,
    opened,
    orphan,
    paid_twice,
    previewed_by_bots,
    processing,
    receipt_delivered,
    revoked,
)


async def test_a_link_nobody_opened(h: MoneyHarness) -> None:
    link = await h.issue()
    found = await diagnosed(h, link)
    assert found.kind is Kind.NOT_OPENED
    assert found.fixes == (Fix.RESEND_LINK, Fix.MARK_PAID)
    assert found.facts["ref"] == "2026-04/p1" and found.facts["amount"] == 15000
    reply = desk(h).reply(found)
    assert "Sam Rivera" in reply and "2026-04/p1" in reply and "$150.00" in reply


async def test_only_bots_then_a_person(h: MoneyHarness) -> None:
    link = await h.issue()
    await previewed_by_bots(h, link)
    assert (await diagnosed(h, link)).kind is Kind.BOTS_ONLY
    await opened(h, link)
    assert (await diagnosed(h, link)).kind is Kind.OPENED_NOT_PAID


async def test_at_checkout_then_processing_then_bank_failure(h: MoneyHarness) -> None:
    link = await h.issue()
    await at_checkout(h, link)
    found = await diagnosed(h, link)
    assert found.kind is Kind.AT_CHECKOUT and found.fixes == (Fix.RECONCILE,)
    other = await h.issue(ref="2026-04/p2")
    await processing(h, other)
    assert (await diagnosed(h, other)).kind is Kind.PROCESSING
    third = await h.issue(ref="2026-04/p3")
    await bank_failed(h, third)
    failed = await diagnosed(h, third)
    assert failed.kind is Kind.BANK_PAYMENT_FAILED
    assert failed.order_id == (await h.orders(third))[0].id


async def test_paid_receipt_owed_then_delivered(h: MoneyHarness) -> None:
    link = await h.issue()
    order = await h.paid(link)
    found = await diagnosed(h, link)
    assert found.kind is Kind.PAID_RECEIPT_NOT_DELIVERED
    assert found.order_id == order.id and found.fixes == (Fix.RESEND_RECEIPT,)
    assert found.facts["paid_at"] and found.facts["order_ids"] == [order.id]
    await receipt_delivered(h)
    delivered = await diagnosed(h, link)
    assert delivered.kind is Kind.PAID_RECEIPT_DELIVERED
    assert "$150.00" in desk(h).sentence(delivered, "en")


async def test_paid_twice_recommends_refunding_the_second_with_its_refundable(
    h: MoneyHarness,
) -> None:
    link = await h.issue()
    _, second = await paid_twice(h, link)
    found = await diagnosed(h, link)
    assert found.kind is Kind.PAID_TWICE
    assert found.fixes == (Fix.REFUND_DUPLICATE,)
    assert (found.order_id, found.refundable) == (second.id, 15000)
    reply = desk(h).reply(found)
    assert "sorry" in reply and "refunding the second payment" in reply
    assert "5 to 10 business days" in reply


async def test_expired_and_revoked(h: MoneyHarness) -> None:
    link = await h.issue(valid_for=86400)
    h.clock.advance(2 * 86400)
    expired = await diagnosed(h, link)
    assert expired.kind is Kind.EXPIRED_UNPAID and expired.fixes == (Fix.REISSUE,)
    other = await h.issue(ref="2026-04/p2")
    await revoked(h, other)
    assert (await diagnosed(h, other)).kind is Kind.REVOKED


async def test_refunded_and_disputed(h: MoneyHarness) -> None:
    link = await h.issue()
    order = await h.paid(link)
    from gateway.web.keys import MONEY

    await h.app[MONEY].refunds.refund(
        order.id, amount=None, reason="season canceled", expected_refundable=15000, actor="t"
    )
    found = await diagnosed(h, link)
    assert found.kind is Kind.REFUNDED and found.facts["refunded"] == 15000
    assert "$150.00" in desk(h).reply(found)
    other = await h.issue(ref="2026-04/p2")
    paid = await h.paid(other)
    h.emulator.dispute(paid.payment_intent_id or "")
    await h.emulator.deliver_webhooks()
    assert (await diagnosed(h, other)).kind is Kind.DISPUTED


async def test_paid_at_stripe_but_not_recorded_here(h: MoneyHarness) -> None:
    link = await h.issue()
    orphan_id, intent = await orphan(h, link)
    found = await diagnosed(h, link)
    assert found.kind is Kind.ORPHAN
    assert found.fixes == (Fix.ATTACH_ORPHAN,) and found.orphan_ids == (orphan_id,)
    assert found.facts["orphan_payment_intent_id"] == intent
    reply = desk(h).reply(found)
    assert "We are sorry" in reply and "do not need to pay again" in reply
    assert "within the hour" in reply


async def test_paid_outside_stripe(h: MoneyHarness) -> None:
    link = await h.issue()
    await marked_paid(h, link)
    found = await diagnosed(h, link)
    assert found.kind is Kind.PAID_OUTSIDE_STRIPE
    assert "cash" in desk(h).sentence(found, "en") and "cash" in desk(h).reply(found)


async def test_the_reply_is_in_the_links_language(h: MoneyHarness) -> None:
    link = await h.issue(locale="es")
    found = await diagnosed(h, link)
    assert found.locale == "es"
    # The amount is written the Spanish way whatever the catalog holds yet.
    assert "150,00" in desk(h).reply(found)
