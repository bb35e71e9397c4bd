"""The pay flow against the Stripe emulator over loopback, on SQLite and PostgreSQL.

Every rule of docs/design.md §3 (Open, Confirm, Return): pending is reused or replaced, only a
payment blocks, GET never writes, Stripe trouble is a 503 that the next click recovers from.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.harness import Harness, forge, session_id_from, start_harness


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> Harness:
    return await start_harness(aiohttp_server, aiohttp_client, database_url)


class TestOpen:
    async def test_confirm_page_shows_items_and_one_pay_button(self, h: Harness) -> None:
        link = await h.issue(["Spring fee, Maya=150.00", "Spring fee, Leo=120.00"])
        response = await h.get(link)
        body = await response.text()
        assert response.status == 200
        assert "Spring fee, Maya" in body and "Spring fee, Leo" in body
        assert "$270.00" in body
        assert body.count("<form") == 1 and 'method="post"' in body
        # One script, pay.js from our own origin (one press per form); nothing inline.
        scripts = re.findall(r"<script[^>]*>", body)
        assert len(scripts) == 1 and re.fullmatch(
            r'<script src="/static/pay\.[0-9a-f]+\.js" defer>', scripts[0]
        )

    async def test_get_and_head_any_number_of_times_create_nothing(self, h: Harness) -> None:
        link = await h.issue()
        for _ in range(5):
            assert (await h.get(link)).status == 200
            assert (await h.head(link)).status == 200
        assert await h.orders(link) == []
        assert h.emulator.sessions_created() == 0
        assert h.emulator.request_log == []

    async def test_pages_send_the_security_headers(self, h: Harness) -> None:
        link = await h.issue()
        for response in (await h.get(link), await h.get("lk_forgedforged.AAAA.x" * 2)):
            headers = response.headers
            assert headers["Cache-Control"] == "no-store"
            assert headers["Referrer-Policy"] == "no-referrer"
            assert headers["X-Frame-Options"] == "DENY"
            csp = headers["Content-Security-Policy"]
            # Scripts only from our own origin (pay.js), never inline.
            assert "default-src 'none'" in csp and "script-src 'self';" in csp
            assert "unsafe-inline" not in csp
            assert "unsafe-inline" not in csp
            assert headers["X-Robots-Tag"] == "noindex, nofollow"


class TestTokens:
    async def test_forged_truncated_and_expired_each_get_their_page(self, h: Harness) -> None:
        link = await h.issue(valid_for=86400)
        forged = forge(link.token)
        truncated = link.token[:-6]

        response = await h.get(forged)
        assert response.status == 404
        assert "not valid" in await response.text()

        response = await h.get(truncated)
        assert response.status == 404
        assert "incomplete" in await response.text()

        for method in (h.get, h.post):
            response = await method(forged)
            assert response.status == 404

        h.clock.advance(86400 + 1)  # past the link's validity
        response = await h.get(link)
        assert response.status == 410
        assert "expired" in (await response.text()).lower()
        assert (await h.post(link)).status == 410
        assert await h.orders(link) == []

    async def test_token_past_max_age_is_expired_not_invalid(self, h: Harness) -> None:
        link = await h.issue()
        h.clock.advance(367 * 86400)
        response = await h.get(link)
        assert response.status == 410
        assert "expired" in (await response.text()).lower()

    @pytest.mark.parametrize("junk", ["%3Cscript%3E", "x" * 3000, "lk_", "..", "%00", "lk_abc.def"])
    async def test_junk_tokens_are_4xx_and_never_echoed(self, h: Harness, junk: str) -> None:
        for response in (await h.client.get(f"/pay/{junk}"), await h.client.post(f"/pay/{junk}")):
            assert 400 <= response.status < 500
            assert "<script>" not in await response.text()

    async def test_revoked_link_gets_410_and_creates_nothing(self, h: Harness) -> None:
        from gateway.web.keys import LINKS, PAYMENTS

        link = await h.issue()
        assert await h.app[LINKS].revoke(link.id, actor="admin:test", provider=h.app[PAYMENTS])
        response = await h.get(link)
        assert response.status == 410
        assert "withdrawn" in await response.text()
        assert (await h.post(link)).status == 410
        assert await h.orders(link) == []


class TestConfirm:
    async def test_first_click_creates_one_order_committed_before_stripe(self, h: Harness) -> None:
        link = await h.issue(["Fee A=10.00", "Fee B=5.00x2"])
        response = await h.post(link)
        assert response.status == 303
        session_id = session_id_from(response.headers["Location"])
        (order,) = await h.orders(link)
        assert order.status == "pending" and order.stripe_session_id == session_id
        session = h.emulator.sessions[session_id]
        assert session["client_reference_id"] == order.id
        assert session["metadata"] == {
            "order_id": order.id,
            "link_id": link.id,
            "ref": "2026-04/p1",
        }
        assert session["amount_total"] == 2000
        (post,) = h.stripe_posts()
        assert post[2] == f"gateway-checkout-{order.id}"  # idempotency key from the order
        # expires_at = created + stale_after + min_remaining
        assert session["expires_at"] == int(order.created_at.timestamp()) + 3600

    async def test_fresh_pending_is_reused_without_calling_stripe(self, h: Harness) -> None:
        link = await h.issue()
        first = await h.post(link)
        h.clock.advance(29 * 60)
        log_before = len(h.emulator.request_log)
        second = await h.post(link)
        assert second.status == 303
        assert second.headers["Location"] == first.headers["Location"]
        assert len(h.emulator.request_log) == log_before  # no Stripe call at all
        assert h.emulator.sessions_created() == 1
        assert [o.status for o in await h.orders(link)] == ["pending"]

    async def test_stale_pending_is_canceled_kept_and_replaced(self, h: Harness) -> None:
        link = await h.issue()
        first = await h.post(link)
        old_session = session_id_from(first.headers["Location"])
        h.clock.advance(31 * 60)
        second = await h.post(link)
        assert second.status == 303
        new_session = session_id_from(second.headers["Location"])
        assert new_session != old_session
        assert h.emulator.sessions[old_session]["status"] == "expired"
        assert h.emulator.sessions[new_session]["status"] == "open"
        old, new = await h.orders(link)
        assert (old.status, old.cancel_reason) == ("canceled", "stale")
        assert (new.status, new.stripe_session_id) == ("pending", new_session)
        trail = [(a.action, a.from_status, a.to_status) for a in await h.audit(link)]
        assert ("order.canceled", "pending", "canceled") in trail
        assert trail.count(("order.created", None, "pending")) == 2

    async def test_stale_session_that_stripe_reports_complete_is_recorded_as_paid(
        self, h: Harness
    ) -> None:
        link = await h.issue()
        first = await h.post(link)
        session_id = session_id_from(first.headers["Location"])
        h.emulator.pay(session_id)  # paid, but the webhook has not arrived
        h.clock.advance(31 * 60)
        second = await h.post(link)
        assert second.status == 409
        assert "Already paid" in await second.text()
        (order,) = await h.orders(link)
        assert order.status == "paid"
        assert h.emulator.sessions_created() == 1

    async def test_paid_link_answers_409_to_get_and_post_and_creates_nothing(
        self, h: Harness
    ) -> None:
        link = await h.issue()
        await h.pay_flow(link)
        created = h.emulator.sessions_created()
        for _ in range(3):
            get, post = await h.get(link), await h.post(link)
            assert (get.status, post.status) == (409, 409)
            assert "Already paid" in await get.text()
        assert h.emulator.sessions_created() == created
        assert [o.status for o in await h.orders(link)] == ["paid"]

    async def test_cancel_on_stripe_returns_to_the_link_and_reuses_the_session(
        self, h: Harness
    ) -> None:
        link = await h.issue()
        first = await h.post(link)
        session = h.emulator.sessions[session_id_from(first.headers["Location"])]
        assert session["cancel_url"].endswith(f"/pay/{link.token}")
        assert (await h.get(link)).status == 200  # the cancel URL is the link itself
        again = await h.post(link)
        assert again.headers["Location"] == first.headers["Location"]

    async def test_processing_payment_blocks_with_its_own_page(self, h: Harness) -> None:
        link = await h.issue()
        session_id = session_id_from((await h.post(link)).headers["Location"])
        h.emulator.pay(session_id, outcome="async")
        await h.emulator.deliver_webhooks()
        response = await h.get(link)
        assert response.status == 409
        assert "processing" in (await response.text()).lower()
        assert (await h.post(link)).status == 409
        h.emulator.settle_async(session_id, succeed=False)
        await h.emulator.deliver_webhooks()
        # A failed async payment unblocks the link: the payer can try again.
        assert [o.status for o in await h.orders(link)] == ["failed"]
        assert (await h.post(link)).status == 303


class TestStripeTrouble:
    # A 500 is different: Stripe keeps it under the key (tests/integration/test_stripe_resilience).
    @pytest.mark.parametrize("fault", [{"drop_next": 1}, {"drop_after_apply_next": 1}])
    async def test_503_then_next_click_retries_the_same_key_and_one_session_exists(
        self, h: Harness, fault: dict[str, int]
    ) -> None:
        link = await h.issue()
        h.emulator.faults.update(fault)
        failed = await h.post(link)
        assert failed.status == 503
        assert failed.headers["Retry-After"]
        body = await failed.text()
        assert "Reference:" in body
        (order,) = await h.orders(link)
        assert order.status == "pending" and order.stripe_session_id is None

        retried = await h.post(link)
        assert retried.status == 303
        assert h.emulator.sessions_created() == 1
        keys = {key for _, _, key in h.stripe_posts()}
        assert keys == {f"gateway-checkout-{order.id}"}
        (order,) = await h.orders(link)
        assert order.stripe_session_id == session_id_from(retried.headers["Location"])

    async def test_timeout_is_a_503_and_the_retry_finds_the_session(
        self, aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
    ) -> None:
        from gateway.web.keys import SETTINGS

        h = await start_harness(aiohttp_server, aiohttp_client, sqlite_url)
        # The client timeout is 2 s in the harness; answer slower than that once.
        assert h.app[SETTINGS].stripe.timeout == 2.0
        link = await h.issue()
        h.emulator.faults.update({"latency": 2.5})
        assert (await h.post(link)).status == 503
        h.emulator.faults.update({"latency": 0.0})
        retried = await h.post(link)
        assert retried.status == 303
        assert h.emulator.sessions_created() == 1

    async def test_stale_replacement_with_stripe_down_creates_nothing(self, h: Harness) -> None:
        link = await h.issue()
        await h.post(link)
        h.clock.advance(31 * 60)
        h.emulator.faults.update({"fail_next": 1})
        response = await h.post(link)
        assert response.status == 503
        (order,) = await h.orders(link)
        assert order.status == "pending"  # not canceled: its session could still be paid
        assert h.emulator.sessions_created() == 1

    async def test_stripe_unreachable_is_a_503_page(
        self, aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
    ) -> None:
        h = await start_harness(aiohttp_server, aiohttp_client, sqlite_url)
        link = await h.issue()
        await h.emulator_server.close()  # connection refused from now on
        response = await h.post(link)
        assert response.status == 503
        assert "Reference:" in await response.text()
        assert [o.status for o in await h.orders(link)] == ["pending"]


class TestReturn:
    async def test_return_page_confirms_payment_before_the_webhook(self, h: Harness) -> None:
        link = await h.issue()
        session_id = session_id_from((await h.post(link)).headers["Location"])
        h.emulator.pay(session_id)  # the webhook is still queued
        response = await h.client.get(f"/pay/{link.token}/return?session_id={session_id}")
        assert response.status == 200
        assert "payment received" in await response.text()
        (order,) = await h.orders(link)
        assert order.status == "paid"
        await h.emulator.deliver_webhooks()  # the late webhook changes nothing
        assert [o.status for o in await h.orders(link)] == ["paid"]

    async def test_return_with_someone_elses_session_records_nothing(self, h: Harness) -> None:
        link, other = await h.issue(), await h.issue(ref="other")
        await h.post(link)
        other_session = session_id_from((await h.post(other)).headers["Location"])
        h.emulator.pay(other_session)
        response = await h.client.get(f"/pay/{link.token}/return?session_id={other_session}")
        assert response.status == 200
        assert "confirming" in await response.text()
        assert [o.status for o in await h.orders(other)] == ["pending"]
