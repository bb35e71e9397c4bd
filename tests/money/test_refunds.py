"""Refunds a person asks for (issue 16): against the emulator over HTTP, on SQLite and
PostgreSQL. The refundable amount is the guard; the intent is written before Stripe is asked;
Stripe's errors are answered clearly and nothing is recorded that Stripe did not do."""

from __future__ import annotations

import asyncio

from tests.money.support import MoneyHarness

REASON = {"reason": "family moved away"}


async def test_two_refunds_of_the_same_amount_at_once_refund_once(h: MoneyHarness) -> None:
    order = await h.paid(await h.issue())
    status, shown = await h.body("GET", f"/orders/{order.id}/refund")
    assert status == 200 and shown["refundable"] == 15000
    body = {**REASON, "amount": "50.00", "expected_refundable": shown["refundable"]}
    # Stripe answers the first refund only when the test says so: the second request arrives
    # while the first is being made at Stripe.
    h.emulator.faults.update({"hold_next": 1, "paths": ["/v1/refunds"]})
    first = asyncio.create_task(h.body("POST", f"/orders/{order.id}/refund", json=body))
    second = asyncio.create_task(h.body("POST", f"/orders/{order.id}/refund", json=body))
    done, _ = await asyncio.wait({first, second}, return_when=asyncio.FIRST_COMPLETED)
    await h.emulator.held.wait_for(1)
    (loser,) = done
    status, refused = loser.result()
    assert status == 409, refused
    assert refused["error"]["code"] == "refund_in_progress"
    assert "50.00 USD" in refused["error"]["message"]
    h.emulator.held.release()
    (winner,) = {first, second} - done
    status, refunded = await winner
    assert status == 200, refunded
    assert (refunded["amount"], refunded["refundable"]) == (5000, 10000)
    assert [r["amount"] for r in h.stripe_refunds()] == [5000]
    # The same press again (the guard it carries is now stale): refused, saying why.
    status, again = await h.body("POST", f"/orders/{order.id}/refund", json=body)
    assert status == 409
    assert again["error"]["code"] == "already_refunded"
    assert again["error"]["message"] == "already refunded 50.00 USD; refundable now 100.00 USD"
    assert len(h.stripe_refunds()) == 1
    assert (await h.order(order.id)).refunded_amount == 5000


async def test_a_partial_then_a_full_refund_never_exceed_the_payment(h: MoneyHarness) -> None:
    link = await h.issue()
    order = await h.paid(link)
    status, part = await h.body(
        "POST",
        f"/orders/{order.id}/refund",
        json={**REASON, "amount": "50.00", "expected_refundable": 15000},
    )
    assert status == 200, part
    assert part["order_status"] == "paid" and part["refundable"] == 10000
    # No amount: all that is left.
    status, rest = await h.body(
        "POST", f"/orders/{order.id}/refund", json={**REASON, "expected_refundable": 10000}
    )
    assert status == 200, rest
    assert (rest["amount"], rest["refunded_total"], rest["refundable"]) == (10000, 15000, 0)
    assert rest["order_status"] == "refunded"
    status, more = await h.body("POST", f"/orders/{order.id}/refund", json=REASON)
    assert status == 409 and more["error"]["code"] == "already_refunded"
    await h.emulator.deliver_webhooks()  # charge.refunded twice: already recorded
    charge = h.emulator.charges[
        h.emulator.payment_intents[order.payment_intent_id]["latest_charge"]
    ]
    assert charge["amount_refunded"] == 15000
    stored = await h.order(order.id)
    assert (stored.status, stored.refunded_amount) == ("refunded", 15000)
    assert sum(r["amount"] for r in h.stripe_refunds()) == 15000
    # One "refund issued" message per refund, whichever of us and the webhook recorded it.
    owed = await h.owed("refunded", link.id)
    assert {m.subject for m in owed} == {f"{order.id}:5000", f"{order.id}:15000"}
    assert len(owed) == 2
    actions = await h.actions(link)
    refunded = [(a, actor) for a, actor, _ in actions if a.startswith("order.") and "refund" in a]
    assert refunded == [
        ("order.partially_refunded", "admin:treasurer"),
        ("order.refunded", "admin:treasurer"),
    ]
    assert all("family moved away" in (d or "") for a, _, d in actions if a == "refund.requested")


async def test_refusals_change_nothing(h: MoneyHarness) -> None:
    link = await h.issue()
    order = await h.paid(link)
    url = f"/orders/{order.id}/refund"
    cases = [
        ({**REASON, "amount": "150.01"}, 422, "amount", "more than the 150.00 USD"),
        ({**REASON, "amount": "50,00"}, 422, "amount", "ambiguous"),
        ({**REASON, "amount": "-5"}, 422, "amount", ""),
        ({"amount": "5.00"}, 422, "reason", "required"),
        ({**REASON, "expected_refundable": "15000"}, 422, "expected_refundable", ""),
    ]
    for body, status, field, words in cases:
        got, answer = await h.body("POST", url, json=body)
        assert got == status, (body, answer)
        assert words in answer["error"]["fields"][field], answer
    got, answer = await h.body("POST", url, json={**REASON, "expected_refundable": 9999})
    assert got == 409 and answer["error"]["code"] == "already_refunded"
    assert answer["error"]["message"] == "already refunded 0.00 USD; refundable now 150.00 USD"
    got, answer = await h.body("POST", url, data=b"[1")
    assert got == 400
    # Unknown and unpaid orders.
    got, answer = await h.body("POST", "/orders/ord_AAAAAAAAAAAAAAAA/refund", json=REASON)
    assert got == 404 and answer["error"]["message"] == "no such order"
    got, _ = await h.body("POST", "/orders/nope/refund", json=REASON)
    assert got == 404
    unpaid = await h.issue(ref="2026-04/p2")
    assert (await h.post(unpaid)).status == 303
    (pending,) = await h.orders(unpaid)
    got, answer = await h.body("POST", f"/orders/{pending.id}/refund", json=REASON)
    assert got == 409 and answer["error"]["code"] == "not_refundable"
    assert "pending" in answer["error"]["message"]
    assert h.stripe_refunds() == []
    assert await h.refund_rows(order.id) == [] and await h.refund_rows(pending.id) == []
    assert (await h.order(order.id)).refunded_amount == 0
    assert not [a for a, _, _ in await h.actions(link) if a.startswith("refund")]


async def test_a_stripe_500_is_answered_clearly_and_the_retry_uses_a_new_key(
    h: MoneyHarness,
) -> None:
    """Stripe keeps a 500 under its idempotency key for 24 hours: the next try must not reuse
    the key (it would answer 500 forever), and must not refund twice."""
    link = await h.issue()
    order = await h.paid(link)
    body = {**REASON, "amount": "20.00", "expected_refundable": 15000}
    h.emulator.faults.update({"fail_next": 1, "paths": ["/v1/refunds"]})
    status, failed = await h.body("POST", f"/orders/{order.id}/refund", json=body)
    assert status == 503, failed
    assert failed["error"]["code"] == "payment_provider_unavailable"
    assert "made no refund" in failed["error"]["message"]
    assert failed["error"]["reference"]
    assert h.stripe_refunds() == []
    (row,) = await h.refund_rows(order.id)
    assert (row.status, row.attempt) == ("failed", 0)
    assert (await h.order(order.id)).refunded_amount == 0
    assert await h.owed("refunded", link.id) == []

    status, done = await h.body("POST", f"/orders/{order.id}/refund", json=body)
    assert status == 200, done
    assert [r["amount"] for r in h.stripe_refunds()] == [2000]
    keys = [key for _, path, key in h.emulator.request_log if path == "/v1/refunds" and key]
    assert keys == [f"gateway-refund-{order.id}-15000-0", f"gateway-refund-{order.id}-15000-1"]
    (row,) = await h.refund_rows(order.id)
    assert (row.status, row.attempt, row.stripe_refund_id) == (
        "succeeded",
        1,
        done["stripe_refund_id"],
    )
    assert len(await h.owed("refunded", link.id)) == 1


async def test_a_refund_made_then_answered_500_is_found_and_recorded_once(
    h: MoneyHarness,
) -> None:
    link = await h.issue()
    order = await h.paid(link)
    h.emulator.faults.update({"fail_after_apply_next": 1, "paths": ["/v1/refunds"]})
    status, done = await h.body("POST", f"/orders/{order.id}/refund", json=REASON)
    assert status == 200, done
    (made,) = h.stripe_refunds()
    assert done["stripe_refund_id"] == made["id"] and done["amount"] == 15000
    assert (await h.order(order.id)).status == "refunded"
    status, again = await h.body("POST", f"/orders/{order.id}/refund", json=REASON)
    assert status == 409 and again["error"]["code"] == "already_refunded"
    assert len(h.stripe_refunds()) == 1


async def test_stripe_refusing_is_a_502_and_nothing_is_recorded(h: MoneyHarness) -> None:
    link = await h.issue()
    order = await h.paid(link)
    # Refunded in Stripe's dashboard; its webhook has not arrived yet.
    h.emulator.refund_from_dashboard(order.payment_intent_id or "")
    status, refused = await h.body(
        "POST", f"/orders/{order.id}/refund", json={**REASON, "expected_refundable": 15000}
    )
    assert status == 502, refused
    assert refused["error"]["code"] == "stripe_refused"
    assert "Nothing was refunded" in refused["error"]["message"]
    assert len(h.stripe_refunds()) == 1  # the dashboard's only
    (row,) = await h.refund_rows(order.id)
    assert row.status == "failed"
    assert (await h.order(order.id)).refunded_amount == 0
    await h.emulator.deliver_webhooks()
    assert (await h.order(order.id)).refunded_amount == 15000
    status, shown = await h.body("GET", f"/orders/{order.id}/refund")
    assert (status, shown["refundable"]) == (200, 0)


async def test_no_answer_from_stripe_is_looked_up_before_any_new_refund(h: MoneyHarness) -> None:
    """The connection drops: Stripe may or may not have made the refund. Nothing is recorded,
    nobody refunds the order again until Stripe's list of refunds says what happened."""
    link = await h.issue()
    order = await h.paid(link)
    body = {**REASON, "amount": "30.00", "expected_refundable": 15000}
    h.emulator.faults.update({"drop_next": 1, "paths": ["/v1/refunds"]})
    status, lost = await h.body("POST", f"/orders/{order.id}/refund", json=body)
    assert status == 503, lost
    assert "not known yet" in lost["error"]["message"]
    (row,) = await h.refund_rows(order.id)
    assert row.status == "unknown"
    assert (await h.order(order.id)).refunded_amount == 0
    # Pressed again at once: the first may still be under way at Stripe.
    status, busy = await h.body("POST", f"/orders/{order.id}/refund", json=body)
    assert status == 409 and busy["error"]["code"] == "refund_in_progress"
    assert h.stripe_refunds() == []
    # Once the claim has run out, Stripe's list says none was made: the next try makes it.
    h.clock.advance(6 * 60)
    status, done = await h.body("POST", f"/orders/{order.id}/refund", json=body)
    assert status == 200, done
    assert [r["amount"] for r in h.stripe_refunds()] == [3000]
    (row,) = await h.refund_rows(order.id)
    assert (row.status, row.attempt) == ("succeeded", 1)


async def test_a_refund_made_whose_answer_was_lost_is_recorded_from_stripes_list(
    h: MoneyHarness,
) -> None:
    link = await h.issue()
    order = await h.paid(link)
    h.emulator.faults.update({"drop_after_apply_next": 1, "paths": ["/v1/refunds"]})
    status, done = await h.body("POST", f"/orders/{order.id}/refund", json=REASON)
    assert status == 200, done
    (made,) = h.stripe_refunds()
    assert made["metadata"]["gateway_refund"] == done["id"]
    assert (await h.order(order.id)).refunded_amount == 15000
    assert len(await h.owed("refunded", link.id)) == 1


async def test_the_webhook_arriving_first_owes_the_one_message(h: MoneyHarness) -> None:
    """Stripe's ``charge.refunded`` may be applied before Stripe's answer reaches the gateway:
    the refund is recorded once and the payer is told once."""
    link = await h.issue()
    order = await h.paid(link)
    h.emulator.faults.update({"hold_next": 1, "paths": ["/v1/refunds"]})
    asking = asyncio.create_task(
        h.body("POST", f"/orders/{order.id}/refund", json={**REASON, "amount": "50.00"})
    )
    await h.emulator.held.wait_for(1)
    await h.emulator.deliver_webhooks()
    assert (await h.order(order.id)).refunded_amount == 5000  # from the webhook
    h.emulator.held.release()
    status, done = await asking
    assert status == 200, done
    assert (done["refunded_total"], done["refundable"]) == (5000, 10000)
    assert (await h.order(order.id)).refunded_amount == 5000
    (message,) = await h.owed("refunded", link.id)
    assert message.subject == f"{order.id}:5000"
    (row,) = await h.refund_rows(order.id)
    assert row.status == "succeeded"
