"""The money operations' answers match the OpenAPI document (every status documented, bodies
valid against their schemas), as tests/admin/test_openapi.py checks the rest of the API."""

from __future__ import annotations

from typing import Any

from tests.admin.test_openapi import check
from tests.harness import session_id_from
from tests.money.support import MoneyHarness
from tests.money.test_orphans import lose_order_row


async def checked(
    h: MoneyHarness, doc: dict[str, Any], method: str, path: str, template: str, **kwargs: Any
) -> tuple[int, Any]:
    response = await h.api(method.upper(), path, **kwargs)
    body = await response.json()
    responses = doc["paths"]["/admin/api" + template][method]["responses"]
    assert str(response.status) in responses, (method, path, response.status, body)
    spec = responses[str(response.status)]
    if "$ref" in spec:
        spec = doc["components"]["responses"]["Error"]
    check(body, spec["content"]["application/json"]["schema"], doc)
    return response.status, body


async def test_money_answers_match_the_document(h: MoneyHarness) -> None:
    doc = await (await h.api("GET", "/openapi.json", key=None)).json()
    order = await h.paid(await h.issue())
    refund = "/orders/{id}/refund"
    path = f"/orders/{order.id}/refund"
    assert (await checked(h, doc, "get", path, refund))[0] == 200
    assert (await checked(h, doc, "get", "/orders/ord_AAAAAAAAAAAAAAAA/refund", refund))[0] == 404
    body = {"amount": "10.00", "reason": "r", "expected_refundable": 15000}
    assert (await checked(h, doc, "post", path, refund, json=body))[0] == 200
    assert (await checked(h, doc, "post", path, refund, json=body))[0] == 409
    assert (await checked(h, doc, "post", path, refund, json={"reason": ""}))[0] == 422
    assert (await checked(h, doc, "post", path, refund, data=b"{"))[0] == 400
    h.emulator.faults.update({"fail_next": 1, "paths": ["/v1/refunds"]})
    assert (await checked(h, doc, "post", path, refund, json={"reason": "r"}))[0] == 503
    h.emulator.refund_from_dashboard(order.payment_intent_id or "")
    assert (await checked(h, doc, "post", path, refund, json={"reason": "r"}))[0] == 502

    mark = "/links/{id}/mark-paid"
    link = await h.issue(ref="cash")
    cash = {"amount": "150.00", "method": "cash", "note": "n"}
    assert (await checked(h, doc, "post", f"/links/{link.id}/mark-paid", mark, json=cash))[0] == 201
    assert (await checked(h, doc, "post", f"/links/{link.id}/mark-paid", mark, json=cash))[0] == 200
    other = {**cash, "note": "other"}
    assert (await checked(h, doc, "post", f"/links/{link.id}/mark-paid", mark, json=other))[
        0
    ] == 409
    bad = {**cash, "method": "x"}
    assert (await checked(h, doc, "post", f"/links/{link.id}/mark-paid", mark, json=bad))[0] == 422
    missing = "/links/lk_AAAAAAAAAAAA/mark-paid"
    assert (await checked(h, doc, "post", missing, mark, json=cash))[0] == 404
    await checked(h, doc, "get", f"/links/{link.id}", "/links/{id}")
    await checked(h, doc, "get", "/orders", "/orders")

    lost = await h.issue(ref="lost")
    session_id = session_id_from((await h.post(lost)).headers["Location"])
    (pending,) = await h.orders(lost)
    await lose_order_row(h, pending.id)
    h.emulator.pay(session_id)
    _, report = await checked(h, doc, "post", "/reconcile", "/reconcile")
    (orphan_id,) = report["orphans_found"]
    _, listed = await checked(h, doc, "get", "/orphans", "/orphans")
    assert [o["id"] for o in listed["orphans"]] == [orphan_id]
    attach = "/orphans/{id}/attach"
    here = f"/orphans/{orphan_id}/attach"
    assert (await checked(h, doc, "post", here, attach, json={}))[0] == 422
    assert (await checked(h, doc, "post", here, attach, json={"reason": "r"}))[0] == 200
    assert (await checked(h, doc, "post", here, attach, json={"reason": "r"}))[0] == 200
    gone = "/orphans/op_AAAAAAAAAAAAAAAA/attach"
    assert (await checked(h, doc, "post", gone, attach, json={"reason": "r"}))[0] == 404
    await checked(h, doc, "get", "/orphans", "/orphans", params={"attached": "x"})
