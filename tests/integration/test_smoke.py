from __future__ import annotations

from typing import Any

from tests.harness import start_harness


async def test_pay_flow_end_to_end(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str
) -> None:
    h = await start_harness(aiohttp_server, aiohttp_client, database_url)
    link = await h.issue()
    page = await h.get(link)
    assert page.status == 200, await page.text()
    session_id = await h.pay_flow(link)
    orders = await h.orders(link)
    assert [o.status for o in orders] == ["paid"]
    assert orders[0].stripe_session_id == session_id
    again = await h.get(link)
    assert again.status == 409
