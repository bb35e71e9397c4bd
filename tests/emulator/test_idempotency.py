"""Idempotency keys: replay, conflicts, serialization of concurrent attempts, 24 h memory."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
import stripe

from gateway.dev.clock import FakeClock
from gateway.dev.emulator import StripeEmulator
from tests.emulator.conftest import API_KEY, session_params
from tests.emulator.test_formdecode import sdk_wire

HEADERS = {
    "Authorization": f"Bearer {API_KEY}",
    "Content-Type": "application/x-www-form-urlencoded",
}


async def post_raw(
    http: aiohttp.ClientSession, url: str, body: str, key: str
) -> tuple[int, bytes, dict[str, str]]:
    async with http.post(url, data=body, headers={**HEADERS, "Idempotency-Key": key}) as resp:
        return resp.status, await resp.read(), dict(resp.headers)


async def test_same_key_same_params_replays_byte_for_byte(
    http: aiohttp.ClientSession, base_url: str, clock: FakeClock, emulator: StripeEmulator
) -> None:
    url = f"{base_url}/v1/checkout/sessions"
    body = sdk_wire(session_params(clock))
    status1, first, headers1 = await post_raw(http, url, body, "order-1")
    status2, second, headers2 = await post_raw(http, url, body, "order-1")
    assert (status1, status2) == (200, 200)
    assert second == first
    assert "Idempotent-Replayed" not in headers1
    assert headers2["Idempotent-Replayed"] == "true"
    assert headers2["Request-Id"] == headers1["Request-Id"]
    assert emulator.sessions_created() == 1


async def test_replay_through_the_sdk_returns_the_same_session(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    params = session_params(clock)
    options: stripe.RequestOptions = {"idempotency_key": "order-1"}
    first = await client.v1.checkout.sessions.create_async(params, options=options)
    second = await client.v1.checkout.sessions.create_async(params, options=options)
    assert second.id == first.id
    assert second.last_response is not None
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert emulator.sessions_created() == 1


async def test_same_key_different_params_is_an_idempotency_error(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "order-1"}
    await client.v1.checkout.sessions.create_async(session_params(clock), options=options)
    changed = session_params(clock, client_reference_id="order-2")
    with pytest.raises(stripe.IdempotencyError) as caught:
        await client.v1.checkout.sessions.create_async(changed, options=options)
    assert caught.value.http_status == 400
    assert caught.value.json_body["error"]["type"] == "idempotency_error"
    assert emulator.sessions_created() == 1


async def test_same_key_on_another_endpoint_is_an_idempotency_error(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "shared"}
    session = await client.v1.checkout.sessions.create_async(session_params(clock), options=options)
    with pytest.raises(stripe.IdempotencyError) as caught:
        await client.v1.checkout.sessions.expire_async(session.id, options=options)
    assert "same endpoint" in str(caught.value.user_message)
    assert emulator.sessions[session.id]["status"] == "open"


async def test_keys_are_forgotten_after_24_hours(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "order-1"}
    first = await client.v1.checkout.sessions.create_async(session_params(clock), options=options)
    clock.advance(24 * 3600 - 1)
    replay = await client.v1.checkout.sessions.create_async(
        session_params(clock, expires_at=first.expires_at), options=options
    )
    assert replay.id == first.id
    clock.advance(1)
    fresh = await client.v1.checkout.sessions.create_async(session_params(clock), options=options)
    assert fresh.id != first.id
    assert emulator.sessions_created() == 2


async def test_a_request_whose_key_is_in_use_is_a_409_not_a_wait(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    # The first request is applied, then held: its key stays in use until it answers.
    emulator.faults.hold_next = 1
    params = session_params(clock)
    options: stripe.RequestOptions = {"idempotency_key": "order-1"}
    first = asyncio.create_task(client.v1.checkout.sessions.create_async(params, options=options))
    await emulator.held.wait_for(1)
    results = await asyncio.gather(
        *(client.v1.checkout.sessions.create_async(params, options=options) for _ in range(7)),
        return_exceptions=True,
    )
    for busy in results:
        assert isinstance(busy, stripe.APIError), busy
        assert busy.http_status == 409
        error = busy.json_body["error"]
        assert (error["type"], error["code"]) == ("idempotency_error", "idempotency_key_in_use")
        assert "currently another in-progress request" in error["message"]
        assert "order-1" in error["message"]
    emulator.held.release()
    session = await first
    # Nothing was kept for the refused requests; the key replays the first one's session.
    replay = await client.v1.checkout.sessions.create_async(params, options=options)
    assert replay.id == session.id
    assert emulator.sessions_created() == 1


async def test_held_requests_are_released_over_the_control_api(
    http: aiohttp.ClientSession,
    base_url: str,
    client: stripe.StripeClient,
    clock: FakeClock,
    emulator: StripeEmulator,
) -> None:
    async with http.post(f"{base_url}/_emulator/faults", json={"hold_next": 1}) as resp:
        assert resp.status == 200
    pending = asyncio.create_task(client.v1.checkout.sessions.create_async(session_params(clock)))
    await emulator.held.wait_for(1)
    async with http.get(f"{base_url}/_emulator/state") as resp:
        assert (await resp.json())["held_requests"] == 1
    async with http.post(f"{base_url}/_emulator/held/release") as resp:
        assert await resp.json() == {"released": 1}
    assert (await pending).status == "open"


async def test_failed_requests_are_not_remembered(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "order-1"}
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.checkout.sessions.create_async(
            session_params(clock, expires_at=int(clock.now()) + 60), options=options
        )
    session = await client.v1.checkout.sessions.create_async(session_params(clock), options=options)
    assert session.status == "open"
    assert emulator.sessions_created() == 1


async def test_get_requests_ignore_idempotency(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params(clock))
    emulator.pay(session.id)
    again = await client.v1.checkout.sessions.retrieve_async(
        session.id, options={"idempotency_key": "k"}
    )
    assert again.status == "complete"
