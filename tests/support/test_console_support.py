"""The console's Support page (issue 16): one search box, each link with its diagnosis, facts,
reply and a form per fix; each fix performed through the services, audited with the person and
their reason; refusals are pages that name the problem and change nothing; a viewer sees no
form and every POST is refused."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa

from gateway.adapters.db.models import AuditEntry, Order, OrphanPayment, OutboxMessage
from gateway.web.keys import DATABASE, OUTBOX
from tests.console.support import ConsoleClient, ConsoleHarness
from tests.support.support import orphan, paid_twice, processing

TREASURER = "admin:treasurer@riverside.example"


async def actions(h: ConsoleHarness, link_id: str) -> list[tuple[str, str, str | None]]:
    async with h.app[DATABASE].read() as session:
        rows = await session.execute(
            sa.select(AuditEntry.action, AuditEntry.actor, AuditEntry.detail)
            .where(AuditEntry.link_id == link_id)
            .order_by(AuditEntry.id)
        )
        return [(a, b, c) for a, b, c in rows.all()]


async def orders(h: ConsoleHarness, link_id: str) -> list[Order]:
    return await h.orders(link_id)


async def receipts(h: ConsoleHarness, link_id: str) -> list[OutboxMessage]:
    async with h.app[DATABASE].read() as session:
        rows = await session.execute(
            sa.select(OutboxMessage).where(
                OutboxMessage.link_id == link_id, OutboxMessage.kind == "receipt"
            )
        )
        return list(rows.scalars())


def done_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["done"][0]


async def paid(h: ConsoleHarness, link_id: str) -> Order:
    (order,) = [o for o in await h.orders(link_id) if o.status == "paid"]
    return order


async def test_the_page_shows_the_diagnosis_the_facts_the_reply_and_the_fixes(
    console: ConsoleHarness, treasurer: ConsoleClient, viewer: ConsoleClient
) -> None:
    link = await console.issue(email="sam@example.org", ref="U12-007")
    await console.pay_flow(link)
    html = await treasurer.page("/support?q=sam%40example.org")
    assert "Found in this database" in html
    assert "Paid $150.00 on" in html and "receipt has not been delivered" in html
    assert link.id in html and "sam@example.org" in html and "U12-007" in html
    assert re.search(r"<textarea[^>]*readonly[^>]*>Hello Sam Rivera,", html)
    assert 'data-copy="reply-0"' in html and "console-support" in html
    assert "<script>" not in html  # no inline script
    assert 'action="/admin/support/resend-receipt"' in html
    # A viewer sees what happened and the reply, never a form, and the address masked.
    seen = await viewer.page("/support?q=sam%40example.org")
    assert "receipt has not been delivered" in seen and "Hello Sam Rivera," in seen
    assert "/admin/support/" not in seen.replace('action="/admin/support"', "")
    assert "Sam Rivera, sam@example.org" not in seen  # the box shows only what they typed
    assert "Sam Rivera, sam@example.org" in html
    nothing = await treasurer.page("/support?q=nobody%40example.org")
    assert "No link matches." in nothing
    too_long = await treasurer.get("/support?q=" + "x" * 400)
    assert too_long.status == 422 and "at most 320 characters" in await too_long.text()
    assert "Support" in await treasurer.page("/")  # in the navigation


async def test_attach_an_orphan_payment_with_a_reason(
    console: ConsoleHarness, treasurer: ConsoleClient, viewer: ConsoleClient
) -> None:
    link = await console.issue()
    orphan_id, intent = await orphan(console, link)
    html = await treasurer.page(f"/support?q={intent}")
    assert "Paid at Stripe but not recorded here" in html and "We are sorry" in html
    assert f'name="orphan_id" value="{orphan_id}"' in html
    form = {"orphan_id": orphan_id, "q": intent, "target": "attach_orphan-0-1"}
    refused = await viewer.post("/support/attach", {**form, "reason": "x"})
    assert refused.status == 403
    missing = await treasurer.post("/support/attach", {**form, "reason": ""})
    assert missing.status == 422 and "reason is required" in await missing.text()
    # The error summary leads to the reason field of the form that was sent.
    assert 'href="#attach_orphan-0-1-reason"' in await missing.text()
    assert 'id="attach_orphan-0-1-reason"' in await missing.text()
    assert await orders(console, link.id) == []
    done = await treasurer.post(
        "/support/attach", {**form, "reason": "parent wrote: charged, no email"}
    )
    assert done.status == 303 and done_of(done.headers["Location"]) == "attached"
    (order,) = await orders(console, link.id)
    assert (order.status, order.payment_intent_id) == ("paid", intent)
    assert ("orphan.attached", TREASURER) in [(a, b) for a, b, _ in await actions(console, link.id)]
    after = await treasurer.page(done.headers["Location"])
    assert "The payment is attached to its link" in after
    again = await treasurer.post("/support/attach", {**form, "reason": "again"})
    assert again.status == 303  # attaching twice changes nothing
    assert len(await orders(console, link.id)) == 1
    unknown = await treasurer.post(
        "/support/attach", {**form, "orphan_id": "op_0000000000000000", "reason": "x"}
    )
    assert unknown.status == 404 and "nothing was done" in await unknown.text()
    async with console.app[DATABASE].read() as session:
        (row,) = (await session.execute(sa.select(OrphanPayment))).scalars()
        assert row.attached_by == TREASURER


async def test_refund_the_second_payment_once_with_the_guard(
    console: ConsoleHarness, treasurer: ConsoleClient, viewer: ConsoleClient
) -> None:
    link = await console.issue()
    _, second = await paid_twice(console, link)
    # The two tabs were half an hour apart: longer than a console session stays idle.
    treasurer = await console.login(treasurer.email)
    viewer = await console.login(viewer.email)
    html = await treasurer.page(f"/support?q={link.id}")
    assert 'name="expected_refundable" value="15000"' in html
    assert f'name="order_id" value="{second.id}"' in html
    form = {
        "order_id": second.id,
        "expected_refundable": "15000",
        "q": link.id,
        "reason": "paid twice",
    }
    assert (await viewer.post("/support/refund", form)).status == 403
    too_much = await treasurer.post("/support/refund", {**form, "amount": "200.00"})
    assert (
        too_much.status == 422
        and "more than the $150.00" in (await too_much.text()).replace("150.00 USD", "$150.00")
    ) or "still refundable" in await too_much.text()
    console.emulator.faults.update({"fail_next": 1, "paths": ["/v1/refunds"]})
    failed = await treasurer.post("/support/refund", form)
    assert failed.status == 503 and "made no refund" in await failed.text()
    assert console.emulator.refunds == {}
    done = await treasurer.post("/support/refund", form)
    assert done.status == 303 and done_of(done.headers["Location"]) == "refunded"
    assert [r["amount"] for r in console.emulator.refunds.values()] == [15000]
    # The same form pressed again (another treasurer at once): refused, nothing refunded.
    stale = await treasurer.post("/support/refund", form)
    assert stale.status == 409 and "already refunded" in await stale.text()
    assert len(console.emulator.refunds) == 1
    trail = await actions(console, link.id)
    assert ("order.refunded", TREASURER) in [(a, b) for a, b, _ in trail]
    assert ("refund.failed", TREASURER) in [(a, b) for a, b, _ in trail]
    # An unpaid order cannot be refunded.
    other = await console.issue(ref="2026-04/p2")
    await processing(console, other)
    (pending,) = await orders(console, other.id)
    unpaid = await treasurer.post(
        "/support/refund", {**form, "order_id": pending.id, "q": other.id}
    )
    assert unpaid.status == 409
    missing = await treasurer.post("/support/refund", {**form, "order_id": "ord_0000000000000000"})
    assert missing.status == 404


async def test_resend_the_receipt_and_the_link(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    link = await console.issue()
    await console.pay_flow(link)
    form = {"link_id": link.id, "q": link.id, "reason": "parent lost the email"}
    done = await treasurer.post("/support/resend-receipt", form)
    # The first receipt is still waiting to be sent (nothing sends in these tests): none added.
    assert done.status == 303 and done_of(done.headers["Location"]) == "receipt_waiting"
    assert len(await receipts(console, link.id)) == 1
    await console.app[OUTBOX].send_due()
    assert {r.state for r in await receipts(console, link.id)} == {"sent"}
    done = await treasurer.post("/support/resend-receipt", form)
    assert done.status == 303 and done_of(done.headers["Location"]) == "receipt"
    assert len(await receipts(console, link.id)) == 2
    assert ("support.receipt_resent", TREASURER, "parent lost the email") in await actions(
        console, link.id
    )
    no_reason = await treasurer.post("/support/resend-receipt", {**form, "reason": " "})
    assert no_reason.status == 422 and len(await receipts(console, link.id)) == 2
    unpaid = await console.issue(ref="2026-04/p2")
    refused = await treasurer.post(
        "/support/resend-receipt", {**form, "link_id": unpaid.id, "q": unpaid.id}
    )
    assert refused.status == 409 and "not paid" in await refused.text()
    sent = await treasurer.post(
        "/support/resend-link", {**form, "link_id": unpaid.id, "reason": "spam folder"}
    )
    assert sent.status == 303 and done_of(sent.headers["Location"]) == "link_sent"
    assert ("support.link_resent", TREASURER, "spam folder") in await actions(console, unpaid.id)
    paid_link = await treasurer.post("/support/resend-link", form)
    assert paid_link.status == 409  # a paid link is not emailed again


async def test_mark_paid_reconcile_and_replay(
    console: ConsoleHarness, treasurer: ConsoleClient, viewer: ConsoleClient
) -> None:
    link = await console.issue()
    html = await treasurer.page(f"/support?q={link.id}")
    assert 'action="/admin/support/mark-paid"' in html and 'value="150.00"' in html
    form = {"link_id": link.id, "q": link.id, "amount": "150.00", "method": "cash"}
    assert (await viewer.post("/support/mark-paid", {**form, "reason": "cash"})).status == 403
    wrong = await treasurer.post("/support/mark-paid", {**form, "amount": "15.00", "reason": "x"})
    assert wrong.status == 422 and await orders(console, link.id) == []
    done = await treasurer.post("/support/mark-paid", {**form, "reason": "cash at the club"})
    assert done.status == 303 and done_of(done.headers["Location"]) == "marked_paid"
    order = await paid(console, link.id)
    assert (order.method, order.payment_note) == ("cash", "cash at the club")
    assert (await console.get(link)).status == 409  # Pay is blocked

    other = await console.issue(ref="2026-04/p2")
    session_id = await processing(console, other)
    console.emulator.settle_async(session_id, succeed=True)  # the webhook is not delivered
    form = {"link_id": other.id, "q": other.id, "reason": "parent says the bank took it"}
    assert (await viewer.post("/support/reconcile", form)).status == 403
    done = await treasurer.post("/support/reconcile", form)
    assert done.status == 303 and done_of(done.headers["Location"]) == "reconciled"
    assert (await paid(console, other.id)).status == "paid"
    assert ("support.reconciled", TREASURER, "parent says the bank took it") in await actions(
        console, other.id
    )
    event = next(e for e in console.emulator.events if e["type"] == "checkout.session.completed")
    replay = {"event_id": event["id"], "link_id": link.id, "q": link.id, "reason": "check"}
    done = await treasurer.post("/support/replay", replay)
    assert done.status == 303 and done_of(done.headers["Location"]) == "replayed"
    assert any(a == "support.event_replayed" for a, _, _ in await actions(console, link.id))
    unknown = await treasurer.post("/support/replay", {**replay, "event_id": "evt_unknown0"})
    assert unknown.status == 404
    no_csrf = await treasurer.post("/support/reconcile", form, csrf=False)
    assert no_csrf.status == 403


async def test_an_expired_link_offers_the_corrected_link_form(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    link = await console.issue(valid_for=86400)
    console.clock.advance(2 * 86400)
    treasurer = await console.login(treasurer.email)  # the session idled out meanwhile
    html = await treasurer.page(f"/support?q={link.id}")
    assert "expired on" in html and "without being paid" in html
    assert f'href="/admin/links/{link.id}/correct"' in html
