"""Checkout's ``locale`` through the SDK: Stripe's values are kept on the session and shown on
the hosted page; anything else is refused the way Stripe refuses a value outside an enum."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
import stripe

from gateway.dev.clock import FakeClock
from gateway.dev.emulator import StripeEmulator
from tests.emulator.conftest import session_params

# Stripe's answer to ``locale=ku`` on session create, word for word (as reported in
# github.com/nursit/bank/issues/95): the wording of a value outside an enum, every value listed.
STRIPES_MESSAGE = (
    "Invalid locale: must be one of auto, bg, cs, da, de, el, en, en-GB, es, es-419, et, fi, "
    "fil, fr, fr-CA, hr, hu, id, it, ja, ko, lt, lv, ms, mt, nb, nl, pl, pt, pt-BR, ro, ru, sk, "
    "sl, sv, th, tr, vi, zh, zh-HK, or zh-TW"
)


async def create(
    client: stripe.StripeClient,
    clock: FakeClock,
    options: stripe.RequestOptions | None = None,
    **overrides: Any,
) -> Any:
    params: Any = session_params(clock, **overrides)
    return await client.v1.checkout.sessions.create_async(params, options=options or {})


@pytest.mark.parametrize("locale", ["pt-BR", "es", "fr", "en", "auto", "zh-TW", "es-419"])
async def test_a_stripe_locale_is_kept_and_returned_on_the_session(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator, locale: str
) -> None:
    session = await create(client, clock, locale=locale)
    assert session.locale == locale
    again = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert again.locale == locale
    assert emulator.created_with(session.id)["locale"] == locale


async def test_without_a_locale_the_session_has_none_and_none_was_received(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    session = await create(client, clock)
    assert session.locale is None
    assert "locale" not in emulator.created_with(session.id)


@pytest.mark.parametrize("bad", ["pt-PT", "PT-BR", "pt_BR", "en-US", "xx", "klingon"])
async def test_a_locale_stripe_does_not_have_is_a_400_naming_the_param(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator, bad: str
) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "order-1"}
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await create(client, clock, options, locale=bad)
    assert caught.value.http_status == 400
    body: Any = caught.value.json_body
    error = body["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "locale"
    assert error["message"] == STRIPES_MESSAGE
    assert emulator.sessions_created() == 0
    # Nothing was kept under the key: the corrected request succeeds with it.
    fixed = await create(client, clock, options, locale="pt-BR")
    assert fixed.locale == "pt-BR"


@pytest.mark.parametrize(
    ("locale", "shown"),
    [
        ("pt-BR", "Stripe's page language: pt-BR"),
        ("auto", "Stripe's page language: the browser's (auto)"),
        (None, "Stripe's page language: the browser's (not set)"),
    ],
)
async def test_the_hosted_page_says_which_language_stripe_would_show(
    client: stripe.StripeClient,
    clock: FakeClock,
    http: aiohttp.ClientSession,
    locale: str | None,
    shown: str,
) -> None:
    extra: dict[str, Any] = {} if locale is None else {"locale": locale}
    session = await create(client, clock, **extra)
    async with http.get(session.url) as resp:
        html = await resp.text()
    assert resp.status == 200
    assert shown in html
    assert '<html lang="en">' in html  # the emulator's own words stay English
