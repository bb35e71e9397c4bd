"""Authentication, unknown routes and ids, and the headers every response carries."""

from __future__ import annotations

import base64

import aiohttp
import pytest
import stripe

from gateway.dev.emulator import StripeEmulator
from tests.emulator.conftest import API_KEY


async def test_missing_key_is_a_401_in_stripes_shape(
    http: aiohttp.ClientSession, base_url: str
) -> None:
    async with http.get(f"{base_url}/v1/checkout/sessions") as resp:
        body = await resp.json()
        assert resp.status == 401
        assert resp.headers["Request-Id"].startswith("req_")
    assert body["error"]["type"] == "invalid_request_error"
    assert "API key" in body["error"]["message"]


async def test_wrong_key_kind_is_rejected_by_the_sdk_as_authentication_error(
    http: aiohttp.ClientSession, base_url: str
) -> None:
    client = stripe.StripeClient(
        "pk_test_publishable",
        base_addresses={"api": base_url},
        http_client=stripe.AIOHTTPClient(session=http),
    )
    with pytest.raises(stripe.AuthenticationError) as caught:
        await client.v1.checkout.sessions.list_async()
    assert caught.value.http_status == 401


async def test_basic_auth_with_the_key_as_user_is_accepted(
    http: aiohttp.ClientSession, base_url: str
) -> None:
    token = base64.b64encode(f"{API_KEY}:".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}  # what ``curl -u sk_test_...:`` sends
    async with http.get(f"{base_url}/v1/events", headers=headers) as resp:
        assert resp.status == 200
        assert (await resp.json())["object"] == "list"


async def test_unknown_session_is_a_404_in_stripes_shape(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.retrieve_async("cs_test_nope")
    error = caught.value.json_body["error"]
    assert caught.value.http_status == 404
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "resource_missing"
    assert error["message"] == "No such checkout.session: 'cs_test_nope'"
    assert caught.value.request_id is not None
    assert caught.value.request_id.startswith("req_")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/customers"), ("DELETE", "/v1/checkout/sessions"), ("PUT", "/v1/refunds")],
)
async def test_unrecognized_urls_are_stripe_404s(
    http: aiohttp.ClientSession, base_url: str, method: str, path: str
) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with http.request(method, f"{base_url}{path}", headers=headers) as resp:
        body = await resp.json()
        assert resp.status == 404
    assert body["error"]["message"].startswith(f"Unrecognized request URL ({method}: {path})")


async def test_json_bodies_are_refused(http: aiohttp.ClientSession, base_url: str) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with http.post(
        f"{base_url}/v1/checkout/sessions", json={"mode": "payment"}, headers=headers
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["type"] == "invalid_request_error"


async def test_every_api_request_is_logged_with_its_idempotency_key(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    await client.v1.events.list_async()
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.refunds.create_async({}, options={"idempotency_key": "r1"})
    assert emulator.request_log == [("GET", "/v1/events", None), ("POST", "/v1/refunds", "r1")]
