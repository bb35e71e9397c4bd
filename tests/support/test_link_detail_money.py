"""The link page's Refund and Mark-paid forms (issue 16 item 3, the console's buttons): the
amount still refundable shown and sent back as the guard, a partial then the rest never more
than was paid, refusals named on the page with nothing changed, a viewer sees neither form and
is refused."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from gateway.web.keys import MONEY
from tests.console.support import ConsoleClient, ConsoleHarness

TREASURER = "admin:treasurer@riverside.example"


def done_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["done"][0]


async def test_refund_part_then_the_rest_from_the_link_page(
    console: ConsoleHarness, treasurer: ConsoleClient, viewer: ConsoleClient
) -> None:
    link = await console.issue()
    await console.pay_flow(link)
    (order,) = await console.orders(link)
    page = f"/links/{link.id}"
    html = await treasurer.page(page)
    assert 'name="expected_refundable" value="15000"' in html
    assert "still refundable: $150.00" in html
    seen = await viewer.page(page)
    assert "/refund" not in seen and "/mark-paid" not in seen
    form = {"order_id": order.id, "expected_refundable": "15000", "target": "refund-1"}
    assert (await viewer.post(f"{page}/refund", {**form, "reason": "x"})).status == 403
    no_reason = await treasurer.post(f"{page}/refund", {**form, "amount": "50.00"})
    assert no_reason.status == 422 and "reason is required" in await no_reason.text()
    # The error summary leads to the field of the form that was sent.
    assert 'href="#refund-1-reason"' in await no_reason.text()
    assert 'id="refund-1-reason"' in await no_reason.text()
    too_much = await treasurer.post(
        f"{page}/refund", {**form, "amount": "200.00", "reason": "injured"}
    )
    assert too_much.status == 422 and "still refundable" in await too_much.text()
    assert console.emulator.refunds == {}
    part = await treasurer.post(f"{page}/refund", {**form, "amount": "50.00", "reason": "injured"})
    assert part.status == 303 and done_of(part.headers["Location"]) == "refunded"
    after = await treasurer.page(part.headers["Location"])
    assert "The refund is made" in after and "still refundable: $100.00" in after
    # The page as it was before (another treasurer's): refused, saying what is left.
    stale = await treasurer.post(f"{page}/refund", {**form, "reason": "injured"})
    assert stale.status == 409 and "refundable now $100.00" in (await stale.text()).replace(
        "100.00 USD", "$100.00"
    )
    rest = await treasurer.post(
        f"{page}/refund", {**form, "expected_refundable": "10000", "reason": "injured"}
    )
    assert rest.status == 303
    assert sorted(r["amount"] for r in console.emulator.refunds.values()) == [5000, 10000]
    final = await treasurer.page(page)
    assert 'name="expected_refundable"' not in final  # nothing left to refund
    other = await treasurer.post(
        f"{page}/refund", {**form, "order_id": "ord_0000000000000000", "reason": "x"}
    )
    assert other.status == 404


async def test_mark_paid_from_the_link_page(
    console: ConsoleHarness, treasurer: ConsoleClient, viewer: ConsoleClient
) -> None:
    link = await console.issue()
    page = f"/links/{link.id}"
    html = await treasurer.page(page)
    assert f'action="/admin/links/{link.id}/mark-paid"' in html and 'value="150.00"' in html
    form = {"amount": "150.00", "method": "bank_transfer", "target": "mark-paid"}
    assert (await viewer.post(f"{page}/mark-paid", {**form, "reason": "x"})).status == 403
    no_note = await treasurer.post(f"{page}/mark-paid", form)
    assert no_note.status == 422 and await console.orders(link) == []
    bad = await treasurer.post(f"{page}/mark-paid", {**form, "method": "cheque", "reason": "x"})
    assert bad.status == 422
    done = await treasurer.post(f"{page}/mark-paid", {**form, "reason": "transfer of 3 April"})
    assert done.status == 303 and done_of(done.headers["Location"]) == "marked_paid"
    (order,) = await console.orders(link)
    assert (order.status, order.method, order.recorded_by) == ("paid", "bank_transfer", TREASURER)
    again = await treasurer.post(f"{page}/mark-paid", {**form, "reason": "transfer of 3 April"})
    assert again.status == 303  # the same payment twice records one
    assert len(await console.orders(link)) == 1
    # Paid outside Stripe: nothing to refund through Stripe, no mark-paid form any more.
    html = await treasurer.page(page)
    assert "/mark-paid" not in html and 'name="expected_refundable"' not in html
    assert (await console.app[MONEY].refunds.refundable(order.id)).refundable == 0
