"""Orphan payments (issue 16): a payment made on a session whose order row was lost is found by
reconcile, listed, and attached once (the receipt owed once)."""

from __future__ import annotations

import sqlalchemy as sa

from gateway.adapters.db.models import Order
from gateway.web.keys import DATABASE
from tests.harness import session_id_from
from tests.money.support import MoneyHarness


async def lose_order_row(h: MoneyHarness, order_id: str) -> None:
    """The database as restored from a backup taken after the link was issued and before the
    Pay press: the order row is gone, Stripe still has its session (nothing in the gateway
    deletes; only a restore can do this)."""
    async with h.app[DATABASE].write() as session:
        await session.execute(sa.delete(Order).where(Order.id == order_id))


async def test_an_orphan_payment_is_found_listed_and_attached_once(h: MoneyHarness) -> None:
    link = await h.issue()
    pressed = await h.post(link)
    session_id = session_id_from(pressed.headers["Location"])
    (order,) = await h.orders(link)
    await lose_order_row(h, order.id)
    h.emulator.pay(session_id)
    await h.emulator.deliver_webhooks()  # the webhook finds no order: nothing recorded
    assert await h.orders(link) == []
    intent = h.emulator.sessions[session_id]["payment_intent"]

    status, report = await h.body("POST", "/reconcile")
    assert status == 200, report
    (orphan_id,) = report["orphans_found"]
    status, listed = await h.body("GET", "/orphans")
    (orphan,) = listed["orphans"]
    assert orphan["id"] == orphan_id
    assert (orphan["payment_intent_id"], orphan["session_id"]) == (intent, session_id)
    assert (orphan["link_id"], orphan["order_id"]) == (link.id, order.id)
    assert (orphan["amount"], orphan["currency"], orphan["attached"]) == (15000, "usd", False)
    # Found once, however often reconcile runs.
    status, again = await h.body("POST", "/reconcile")
    assert again["orphans_found"] == []
    assert len((await h.body("GET", "/orphans"))[1]["orphans"]) == 1

    status, refused = await h.body("POST", f"/orphans/{orphan_id}/attach", json={})
    assert status == 422 and "reason" in refused["error"]["fields"]
    status, attached = await h.body(
        "POST", f"/orphans/{orphan_id}/attach", json={"reason": "parent wrote: charged, no email"}
    )
    assert status == 200, attached
    assert attached["changed"] is True and attached["attached_by"] == "admin:treasurer"
    (restored,) = await h.orders(link)
    assert restored.id == order.id == attached["order_id"]
    assert (restored.status, restored.payment_intent_id) == ("paid", intent)
    (receipt,) = await h.owed("receipt", link.id)
    assert '"recovered": true' in receipt.payload
    actions = [(a, actor) for a, actor, _ in await h.actions(link)]
    for expected in ("order.restored", "order.paid", "orphan.attached"):
        assert (expected, "admin:treasurer") in actions
    page = await h.get(link)
    assert page.status == 409 and "Already paid" in await page.text()

    status, twice = await h.body("POST", f"/orphans/{orphan_id}/attach", json={"reason": "again"})
    assert (status, twice["changed"], twice["order_id"]) == (200, False, order.id)
    assert len(await h.orders(link)) == 1
    assert len(await h.owed("receipt", link.id)) == 1
    assert (await h.body("GET", "/orphans", params={"attached": "false"}))[1]["orphans"] == []
    (done,) = (await h.body("GET", "/orphans", params={"attached": "true"}))[1]["orphans"]
    assert done["attached_order_id"] == order.id
    status, again = await h.body("POST", "/reconcile")
    assert again["orphans_found"] == []


async def test_payments_with_an_order_are_not_orphans_and_unknown_ids_are_404(
    h: MoneyHarness,
) -> None:
    await h.paid(await h.issue())
    status, report = await h.body("POST", "/reconcile")
    assert status == 200 and report["orphans_found"] == []
    assert (await h.body("GET", "/orphans"))[1]["orphans"] == []
    status, answer = await h.body(
        "POST", "/orphans/op_AAAAAAAAAAAAAAAA/attach", json={"reason": "x"}
    )
    assert status == 404 and answer["error"]["message"] == "no such orphan payment"
    status, _ = await h.body("POST", "/orphans/nope/attach", json={"reason": "x"})
    assert status == 404
    status, answer = await h.body("GET", "/orphans", params={"attached": "maybe"})
    assert status == 422
