"""Payments made outside Stripe (issue 16): recorded by a person, they block payment exactly
like a Stripe payment and show as such everywhere."""

from __future__ import annotations

from tests.harness import session_id_from
from tests.money.support import MoneyHarness

CASH = {"amount": "150.00", "method": "cash", "note": "paid at training, receipt #12"}


async def test_mark_paid_blocks_pay_and_shows_everywhere(h: MoneyHarness) -> None:
    link = await h.issue()
    # The payer had started a checkout: it is retired first, its session expired at Stripe.
    pressed = await h.post(link)
    assert pressed.status == 303
    session_id = session_id_from(pressed.headers["Location"])
    assert (await h.get(link)).status == 200  # payable, cached on the GET path

    status, marked = await h.body("POST", f"/links/{link.id}/mark-paid", json=CASH)
    assert status == 201, marked
    assert (marked["amount"], marked["method"], marked["changed"]) == (15000, "cash", True)
    assert marked["recorded_by"] == "admin:treasurer"
    assert h.emulator.sessions[session_id]["status"] == "expired"

    page = await h.get(link)
    assert page.status == 409 and "Already paid" in await page.text()
    assert (await h.post(link)).status == 409
    assert len(h.emulator.sessions) == 1  # Pay created no new session

    orders = {o.status: o for o in await h.orders(link)}
    assert set(orders) == {"canceled", "paid"}
    paid = orders["paid"]
    assert (paid.method, paid.stripe_session_id, paid.payment_intent_id) == ("cash", None, None)
    status, shown = await h.body("GET", f"/links/{link.id}")
    assert shown["state"] == "paid" and shown["status"] == "paid"
    (json_order,) = [o for o in shown["orders"] if o["status"] == "paid"]
    assert json_order["method"] == "cash"
    assert json_order["payment_note"] == CASH["note"]
    assert json_order["recorded_by"] == "admin:treasurer"
    entries = [(a, actor) for a, actor, _ in await h.actions(link)]
    assert ("order.paid", "admin:treasurer") in entries
    assert len(await h.owed("receipt", link.id)) == 1

    # The same request again records nothing more; any other one is refused.
    status, again = await h.body("POST", f"/links/{link.id}/mark-paid", json=CASH)
    assert (status, again["changed"], again["order_id"]) == (200, False, marked["order_id"])
    other = {**CASH, "method": "bank_transfer", "note": "transfer 2026-04-03"}
    status, refused = await h.body("POST", f"/links/{link.id}/mark-paid", json=other)
    assert status == 409 and refused["error"]["code"] == "already_paid"
    assert "nothing was recorded" in refused["error"]["message"]
    assert len([o for o in await h.orders(link) if o.status == "paid"]) == 1
    assert len(await h.owed("receipt", link.id)) == 1
    # Paid outside Stripe: not refundable through it.
    status, answer = await h.body(
        "POST", f"/orders/{paid.id}/refund", json={"reason": "changed mind"}
    )
    assert status == 409 and answer["error"]["code"] == "not_refundable"
    assert h.emulator.refunds == {}


async def test_a_session_paid_meanwhile_wins_and_the_manual_payment_is_refused(
    h: MoneyHarness,
) -> None:
    link = await h.issue()
    pressed = await h.post(link)
    session_id = session_id_from(pressed.headers["Location"])
    h.emulator.pay(session_id)  # paid at Stripe; its webhook has not arrived
    status, refused = await h.body("POST", f"/links/{link.id}/mark-paid", json=CASH)
    assert status == 409, refused
    assert refused["error"]["code"] == "already_paid"
    assert "Stripe" in refused["error"]["message"]
    (order,) = await h.orders(link)
    assert (order.status, order.method) == ("paid", "stripe")
    assert (await h.post(link)).status == 409


async def test_bad_requests_change_nothing(h: MoneyHarness) -> None:
    link = await h.issue()
    cases = [
        ({**CASH, "amount": "100.00"}, "amount", "not the link's total, 150.00 USD"),
        ({**CASH, "amount": "150,00"}, "amount", "ambiguous"),
        ({**CASH, "method": "cheque"}, "method", "cash, bank_transfer, other"),
        ({**CASH, "note": ""}, "note", "required"),
        ({**CASH, "note": "x\x00"}, "note", "control characters"),
    ]
    for body, field, words in cases:
        status, answer = await h.body("POST", f"/links/{link.id}/mark-paid", json=body)
        assert status == 422, (body, answer)
        assert words in answer["error"]["fields"][field], answer
    status, _ = await h.body("POST", "/links/lk_AAAAAAAAAAAA/mark-paid", json=CASH)
    assert status == 404
    status, _ = await h.body("POST", f"/links/{link.id}/mark-paid", json=[1])
    assert status == 400
    assert await h.orders(link) == []
    revoked = await h.issue(ref="2026-04/p9")
    assert (await h.api("POST", f"/links/{revoked.id}/revoke", json={})).status == 200
    status, answer = await h.body("POST", f"/links/{revoked.id}/mark-paid", json=CASH)
    assert status == 409 and answer["error"]["code"] == "wrong_state"
    assert await h.orders(revoked) == []
    assert (await h.get(link)).status == 200
