"""Stripe's page in the payer's language (issue 13 item 4), against the emulator over loopback,
on SQLite and PostgreSQL.

The Checkout ``locale`` is a session parameter, so it is decided when the order is created and
stored with it: every later request for that order's session (a Resume after a lost answer,
the reconciler's recovery) sends the stored value, whatever the press that triggers it asked.
An order stored without one (made before languages) sends no ``locale`` at all. The emulator
replays a key only for identical parameters (an ``idempotency_error`` otherwise), so a replay
that sent anything else would fail these tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.domain.errors import PaymentProviderUnavailable
from gateway.services.checkout import Redirect
from gateway.services.sessions import ReturnUrls
from gateway.web.keys import CHECKOUT, RECONCILER
from tests.harness import BROWSER_HEADERS, Harness, session_id_from, start_harness

URLS = ReturnUrls(
    success_url="http://127.0.0.1/pay/tok/return?session_id={CHECKOUT_SESSION_ID}",
    cancel_url="http://127.0.0.1/pay/tok",
)


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> Harness:
    return await start_harness(aiohttp_server, aiohttp_client, database_url)


async def confirm(h: Harness, link_id: str, checkout_locale: str | None = None) -> Redirect:
    result = await h.app[CHECKOUT].confirm(link_id, URLS, checkout_locale=checkout_locale)
    assert isinstance(result, Redirect), result
    return result


def sent(h: Harness, result: Redirect) -> dict[str, Any]:
    """What the gateway sent for the redirect's session, as the emulator decoded it."""
    return h.emulator.created_with(session_id_from(result.url))


class TestCreate:
    @pytest.mark.parametrize("locale", ["pt-BR", "es", "fr", "en", "auto"])
    async def test_the_session_carries_the_locale_and_the_order_stores_it(
        self, h: Harness, locale: str
    ) -> None:
        link = await h.issue()
        result = await confirm(h, link.id, locale)
        assert result.kind == "created"
        assert sent(h, result)["locale"] == locale
        assert h.emulator.sessions[session_id_from(result.url)]["locale"] == locale
        (order,) = await h.orders(link)
        assert order.checkout_locale == locale

    async def test_without_a_locale_none_is_sent_or_stored(self, h: Harness) -> None:
        link = await h.issue()
        result = await confirm(h, link.id)
        assert "locale" not in sent(h, result)
        assert h.emulator.sessions[session_id_from(result.url)]["locale"] is None
        (order,) = await h.orders(link)
        assert order.checkout_locale is None

    @pytest.mark.parametrize("bad", ["pt-PT", "PT-BR", "pt_BR", "xx", "", "en" * 20])
    async def test_a_value_stripe_would_refuse_is_refused_before_anything_is_written(
        self, h: Harness, bad: str
    ) -> None:
        link = await h.issue()
        with pytest.raises(ValueError, match="not a Checkout locale"):
            await h.app[CHECKOUT].confirm(link.id, URLS, checkout_locale=bad)
        assert await h.orders(link) == []
        assert h.emulator.request_log == []


class TestReplays:
    @pytest.mark.parametrize("fault", ["drop_next", "drop_after_apply_next"])
    async def test_resume_sends_the_stored_locale_not_the_new_presses(
        self, h: Harness, fault: str
    ) -> None:
        """The first press's answer is lost (before or after Stripe made the session); the
        next press, from a page in another language, resumes the same order."""
        link = await h.issue()
        h.emulator.faults.update({fault: 1})
        with pytest.raises(PaymentProviderUnavailable):
            await confirm(h, link.id, "pt-BR")
        (pending,) = await h.orders(link)
        assert (pending.stripe_session_id, pending.checkout_locale) == (None, "pt-BR")

        result = await confirm(h, link.id, "es")
        assert (result.kind, result.order_id) == ("resumed", pending.id)
        assert sent(h, result)["locale"] == "pt-BR"
        assert h.emulator.sessions_created() == 1  # after the dropped answer: Stripe's replay
        (order,) = await h.orders(link)
        assert order.checkout_locale == "pt-BR"

    async def test_an_order_stored_without_a_locale_never_sends_one(self, h: Harness) -> None:
        """An order made before languages (checkout_locale NULL) resumed by a press that asks
        for Portuguese: its session request is the one it always was, with no ``locale``."""
        link = await h.issue()
        h.emulator.faults.update({"drop_after_apply_next": 1})
        with pytest.raises(PaymentProviderUnavailable):
            await confirm(h, link.id)
        (pending,) = await h.orders(link)
        assert pending.checkout_locale is None

        result = await confirm(h, link.id, "pt-BR")
        assert result.kind == "resumed"
        assert "locale" not in sent(h, result)
        assert h.emulator.sessions[session_id_from(result.url)]["locale"] is None
        assert h.emulator.sessions_created() == 1

    async def test_the_reconcilers_recovery_sends_the_stored_locale(self, h: Harness) -> None:
        link = await h.issue()
        h.emulator.faults.update({"drop_next": 1})  # lost before Stripe made anything
        with pytest.raises(PaymentProviderUnavailable):
            await confirm(h, link.id, "fr")
        h.clock.advance(5 * 60)
        report = await h.app[RECONCILER].run()
        assert report.ran and not report.errors, report
        (order,) = await h.orders(link)
        assert order.stripe_session_id is not None
        assert h.emulator.created_with(order.stripe_session_id)["locale"] == "fr"

    async def test_reuse_keeps_the_sessions_locale(self, h: Harness) -> None:
        link = await h.issue()
        first = await confirm(h, link.id, "es")
        again = await confirm(h, link.id, "fr")
        assert (again.kind, again.url) == ("reused", first.url)
        assert h.emulator.sessions_created() == 1
        assert [o.checkout_locale for o in await h.orders(link)] == ["es"]

    async def test_a_replacement_order_takes_the_new_presses_locale(self, h: Harness) -> None:
        link = await h.issue()
        first = await confirm(h, link.id, "es")
        h.clock.advance(31 * 60)  # past checkout.stale_after: the attempt is replaced
        second = await confirm(h, link.id, "pt-BR")
        assert second.kind == "replaced" and second.order_id != first.order_id
        assert sent(h, first)["locale"] == "es"
        assert sent(h, second)["locale"] == "pt-BR"
        orders = {o.id: o for o in await h.orders(link)}
        assert orders[first.order_id].checkout_locale == "es"
        assert orders[first.order_id].status == "canceled"
        assert orders[second.order_id].checkout_locale == "pt-BR"


class TestThroughThePayButton:
    """POST /pay/{token}: Stripe's page gets the language the payer's page was in."""

    @pytest.mark.parametrize(
        ("accept_language", "expected"),
        [
            ("es-MX,es;q=0.9,en;q=0.5", "es"),
            ("pt-PT,pt;q=0.9", "pt-BR"),
            ("fr-CA", "fr"),
            ("de-DE,de;q=0.9", "en"),  # nothing offered: the default, en
        ],
    )
    async def test_the_session_is_in_the_pages_language(
        self, h: Harness, accept_language: str, expected: str
    ) -> None:
        link = await h.issue()
        headers = {**BROWSER_HEADERS, "Accept-Language": accept_language}
        response = await h.post(link, headers=headers)
        assert response.status == 303, await response.text()
        session_id = session_id_from(response.headers["Location"])
        assert h.emulator.created_with(session_id)["locale"] == expected
        (order,) = await h.orders(link)
        assert order.checkout_locale == expected
