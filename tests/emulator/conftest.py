"""Fixtures: an emulator on a loopback server, and the real ``stripe`` SDK pointed at it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import stripe
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.dev.clock import FakeClock
from gateway.dev.emulator import StripeEmulator, create_emulator_app

FIXTURES = Path(__file__).parent.parent / "fixtures" / "stripe" / "fixtures.json"
START = 1_800_000_000.0
API_KEY = "sk_test_emulator"

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture
def fixtures() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURES.read_text())
    return data


@pytest.fixture(autouse=True)
def _no_sdk_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK sleeps 0.5 s+ between retries; tests exercise retries, not the wait.
    monkeypatch.setattr(stripe._http_client.HTTPClient, "INITIAL_DELAY", 0.0)
    monkeypatch.setattr(stripe._http_client.HTTPClient, "MAX_DELAY", 0.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def emulator(clock: FakeClock) -> StripeEmulator:
    return StripeEmulator(clock=clock, webhook_mode="manual")


@pytest.fixture
async def server(emulator: StripeEmulator, aiohttp_server: ServerFactory) -> TestServer:
    app = create_emulator_app(emulator)
    srv = await aiohttp_server(app)
    # The hosted page URL must point at this server's random port.
    emulator.public_url = str(srv.make_url(""))
    return srv


@pytest.fixture
def base_url(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_client(
    base_url: str, http: aiohttp.ClientSession, *, retries: int = 0, timeout: float = 10
) -> stripe.StripeClient:
    return stripe.StripeClient(
        API_KEY,
        base_addresses={"api": base_url},
        http_client=stripe.AIOHTTPClient(session=http, timeout=timeout),
        max_network_retries=retries,
    )


@pytest.fixture
def client(base_url: str, http: aiohttp.ClientSession) -> stripe.StripeClient:
    return make_client(base_url, http)


def session_params(clock: FakeClock, **overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 4500,
                    "product_data": {"name": "Season fee — Alice"},
                },
                "quantity": 1,
            },
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 2000,
                    "product_data": {"name": "Jersey"},
                },
                "quantity": 2,
            },
        ],
        "success_url": "https://gw.example/pay/tok/return?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://gw.example/pay/tok",
        "client_reference_id": "order-1",
        "customer_email": "parent@example.com",
        "metadata": {"order_id": "order-1", "link_id": "link-1", "ref": "2026-04/player-26"},
        "payment_intent_data": {"metadata": {"order_id": "order-1", "link_id": "link-1"}},
        "expires_at": int(clock.now()) + 3600,
    }
    params.update(overrides)
    return params
