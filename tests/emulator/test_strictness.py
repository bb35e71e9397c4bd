"""The emulator refuses what Stripe refuses, so the gateway's tests catch the mistake: unknown
parameters (400 ``parameter_unknown``), currencies Stripe does not support, and totals under
Stripe's minimum charge (400 ``amount_too_small``). Same key at once: see test_idempotency."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
import stripe

from gateway.dev.clock import FakeClock
from gateway.dev.emulator import StripeEmulator
from tests.emulator.conftest import API_KEY, session_params


def one_item(currency: str, unit_amount: int, quantity: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "price_data": {
                "currency": currency,
                "unit_amount": unit_amount,
                "product_data": {"name": "Fee"},
            },
            "quantity": quantity,
        }
    ]


async def refused(client: stripe.StripeClient, params: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.create_async(params)  # type: ignore[arg-type]
    assert caught.value.http_status == 400
    error: dict[str, Any] = caught.value.json_body["error"]
    assert error["type"] == "invalid_request_error"
    return error


class TestUnknownParameters:
    @pytest.mark.parametrize(
        ("change", "name"),
        [
            (lambda p: p.update(colour="red"), "colour"),
            (lambda p: p.update(expires_in=3600), "expires_in"),
            (lambda p: p["line_items"][1].update(qty=2), "line_items[1][qty]"),
            (
                lambda p: p["line_items"][0]["price_data"].update(amount=4500),
                "line_items[0][price_data][amount]",
            ),
            (
                lambda p: p["line_items"][0]["price_data"]["product_data"].update(title="x"),
                "line_items[0][price_data][product_data][title]",
            ),
            (
                lambda p: p["payment_intent_data"].update(meta={"a": "b"}),
                "payment_intent_data[meta]",
            ),
        ],
    )
    async def test_are_a_400_parameter_unknown_naming_them(
        self,
        client: stripe.StripeClient,
        clock: FakeClock,
        emulator: StripeEmulator,
        change: Any,
        name: str,
    ) -> None:
        params = session_params(clock)
        change(params)
        error = await refused(client, params)
        assert error["code"] == "parameter_unknown"
        assert error["param"] == name
        assert error["message"] == f"Received unknown parameter: {name}"
        assert emulator.sessions_created() == 0

    async def test_parameters_stripe_knows_are_accepted_even_if_not_modelled(
        self, client: stripe.StripeClient, clock: FakeClock
    ) -> None:
        params = session_params(
            clock,
            locale="fr",
            automatic_tax={"enabled": "false"},
            payment_method_types=["card"],
            metadata={"anything_at_all": "is fine in metadata"},
        )
        session = await client.v1.checkout.sessions.create_async(params)
        assert session.locale == "fr"

    async def test_reads_refuse_unknown_query_parameters_too(
        self, http: aiohttp.ClientSession, base_url: str
    ) -> None:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        url = f"{base_url}/v1/checkout/sessions?limit=3&created[gte]=1&sort=asc"
        async with http.get(url, headers=headers) as resp:
            body = await resp.json()
            assert resp.status == 400
        assert (body["error"]["code"], body["error"]["param"]) == ("parameter_unknown", "sort")

    async def test_an_unknown_parameter_is_not_kept_under_the_key(
        self, client: stripe.StripeClient, clock: FakeClock
    ) -> None:
        options: stripe.RequestOptions = {"idempotency_key": "order-1"}
        with pytest.raises(stripe.InvalidRequestError):
            await client.v1.checkout.sessions.create_async(
                session_params(clock, colour="red"), options=options
            )
        session = await client.v1.checkout.sessions.create_async(
            session_params(clock), options=options
        )
        assert session.status == "open"


class TestCurrencies:
    @pytest.mark.parametrize("currency", ["xyz", "eu", "btc"])
    async def test_a_currency_stripe_does_not_support_is_refused(
        self, client: stripe.StripeClient, clock: FakeClock, currency: str
    ) -> None:
        error = await refused(client, session_params(clock, line_items=one_item(currency, 5000)))
        assert error["param"] == "line_items[0][price_data][currency]"
        assert error["message"].startswith(
            f"Invalid currency: {currency}. Stripe currently supports these currencies: usd, aed"
        )

    async def test_supported_currencies_in_any_case_are_accepted(
        self, client: stripe.StripeClient, clock: FakeClock
    ) -> None:
        for currency in ("EUR", "jpy", "kwd"):
            params = session_params(clock, line_items=one_item(currency, 5000))
            session = await client.v1.checkout.sessions.create_async(params)
            assert session.currency == currency.lower()


class TestMinimumCharge:
    @pytest.mark.parametrize(
        ("currency", "minimum", "shown"),
        [("usd", 50, "0.50 usd"), ("gbp", 30, "0.30 gbp"), ("jpy", 50, "50 jpy")],
    )
    async def test_a_total_under_the_minimum_is_amount_too_small(
        self,
        client: stripe.StripeClient,
        clock: FakeClock,
        emulator: StripeEmulator,
        currency: str,
        minimum: int,
        shown: str,
    ) -> None:
        error = await refused(
            client, session_params(clock, line_items=one_item(currency, minimum - 1))
        )
        assert error["code"] == "amount_too_small"
        assert error["message"] == (
            f"The Checkout Session's total amount due must add up to at least {shown}"
        )
        at_minimum = session_params(clock, line_items=one_item(currency, minimum))
        session = await client.v1.checkout.sessions.create_async(at_minimum)
        assert session.amount_total == minimum
        assert emulator.sessions_created() == 1

    async def test_the_minimum_applies_to_the_total_not_each_item(
        self, client: stripe.StripeClient, clock: FakeClock
    ) -> None:
        params = session_params(clock, line_items=one_item("usd", 20, quantity=3))
        session = await client.v1.checkout.sessions.create_async(params)
        assert session.amount_total == 60
