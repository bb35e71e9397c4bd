"""The emulator's list endpoints the money operations use, as Stripe answers them:
``GET /v1/payment_intents`` (created ranges, newest first, cursor pages) and ``GET /v1/refunds``
(by payment intent or charge); unknown parameters are refused like Stripe refuses them."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.money.support import MoneyHarness

AUTH = {"Authorization": "Bearer sk_test_lists"}


async def get(h: MoneyHarness, path: str, params: dict[str, Any]) -> tuple[int, Any]:
    url = str(h.emulator_server.make_url(path))
    async with aiohttp.ClientSession() as http, http.get(url, params=params, headers=AUTH) as r:
        return r.status, await r.json()


async def test_payment_intents_and_refunds_are_listed_like_stripe(h: MoneyHarness) -> None:
    first = await h.paid(await h.issue(ref="a"))
    h.clock.advance(100)
    second = await h.paid(await h.issue(ref="b"))
    created = h.emulator.payment_intents[second.payment_intent_id]["created"]

    status, page = await get(h, "/v1/payment_intents", {"limit": 1})
    assert status == 200 and page["object"] == "list" and page["has_more"] is True
    assert [pi["id"] for pi in page["data"]] == [second.payment_intent_id]
    status, page = await get(
        h, "/v1/payment_intents", {"limit": 1, "starting_after": second.payment_intent_id}
    )
    assert [pi["id"] for pi in page["data"]] == [first.payment_intent_id]
    assert page["has_more"] is False
    status, page = await get(h, "/v1/payment_intents", {"created[gte]": created})
    assert [pi["id"] for pi in page["data"]] == [second.payment_intent_id]
    assert page["data"][0]["metadata"]["order_id"] == second.id
    status, refused = await get(h, "/v1/payment_intents", {"colour": "red"})
    assert status == 400 and refused["error"]["code"] == "parameter_unknown"

    h.emulator.refund_from_dashboard(first.payment_intent_id or "", 1000)
    h.emulator.refund_from_dashboard(second.payment_intent_id or "", 2000)
    status, page = await get(h, "/v1/refunds", {"payment_intent": first.payment_intent_id})
    assert status == 200 and [r["amount"] for r in page["data"]] == [1000]
    charge = h.emulator.payment_intents[second.payment_intent_id]["latest_charge"]
    status, page = await get(h, "/v1/refunds", {"charge": charge})
    assert [r["amount"] for r in page["data"]] == [2000]
    status, page = await get(h, "/v1/refunds", {})
    assert [r["amount"] for r in page["data"]] == [2000, 1000]
    status, refused = await get(h, "/v1/refunds", {"limit": 101})
    assert status == 400
