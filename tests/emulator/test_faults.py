"""Injected faults, as the SDK experiences them."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
import stripe

from gateway.dev.clock import FakeClock
from gateway.dev.emulator import Faults, StripeEmulator
from tests.emulator.conftest import API_KEY, make_client, session_params


async def test_fail_next_gives_api_errors_and_applies_nothing(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    emulator.faults.fail_next = 1
    with pytest.raises(stripe.APIError) as caught:
        await client.v1.checkout.sessions.create_async(session_params(clock))
    assert caught.value.http_status == 500
    assert caught.value.json_body["error"]["type"] == "api_error"
    assert emulator.sessions_created() == 0
    assert emulator.faults.fail_next == 0


async def test_sdk_retries_of_a_read_outlast_fail_next(
    http: aiohttp.ClientSession, base_url: str, emulator: StripeEmulator
) -> None:
    client = make_client(base_url, http, retries=2)
    emulator.faults.fail_next = 2
    listing = await client.v1.checkout.sessions.list_async()
    assert listing.data == []
    assert [path for _, path, _ in emulator.request_log] == ["/v1/checkout/sessions"] * 3


async def test_sdk_gives_up_with_api_error_when_failures_outlast_retries(
    http: aiohttp.ClientSession, base_url: str, emulator: StripeEmulator
) -> None:
    client = make_client(base_url, http, retries=2)
    emulator.faults.fail_next = 3
    with pytest.raises(stripe.APIError):
        await client.v1.checkout.sessions.list_async()
    assert len(emulator.request_log) == 3


async def test_a_post_s_500_tells_the_sdk_not_to_retry_it(
    http: aiohttp.ClientSession, base_url: str, clock: FakeClock, emulator: StripeEmulator
) -> None:
    # Stripe keeps the 500 under the key, so a retry could only replay it.
    client = make_client(base_url, http, retries=2)
    emulator.faults.fail_next = 1
    with pytest.raises(stripe.APIError) as caught:
        await client.v1.checkout.sessions.create_async(
            session_params(clock), options={"idempotency_key": "k1"}
        )
    assert caught.value.headers is not None
    assert caught.value.headers["Stripe-Should-Retry"] == "false"
    assert [key for _, _, key in emulator.request_log] == ["k1"]
    assert emulator.sessions_created() == 0


async def test_error_rate_is_reproducible_with_the_seed(
    clock: FakeClock, aiohttp_server: object
) -> None:
    def outcomes(seed: int) -> list[str]:
        emulator = StripeEmulator(clock=clock, seed=seed)
        emulator.faults.error_rate = 0.5
        return [emulator.fault_decider.for_request("/v1/x").value for _ in range(40)]

    assert outcomes(1) == outcomes(1)
    assert outcomes(1) != outcomes(2)
    assert 5 < outcomes(1).count("fail") < 35


async def test_drop_next_is_a_connection_error_and_applies_nothing(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    emulator.faults.drop_next = 1
    with pytest.raises(stripe.APIConnectionError):
        await client.v1.checkout.sessions.create_async(session_params(clock))
    assert emulator.sessions_created() == 0
    session = await client.v1.checkout.sessions.create_async(session_params(clock))
    assert session.status == "open"


async def test_drop_after_apply_creates_the_session_the_caller_never_saw(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    emulator.faults.drop_after_apply_next = 1
    options: stripe.RequestOptions = {"idempotency_key": "order-1"}
    params = session_params(clock)
    with pytest.raises(stripe.APIConnectionError):
        await client.v1.checkout.sessions.create_async(params, options=options)
    assert emulator.sessions_created() == 1
    (hidden_id,) = emulator.sessions
    retried = await client.v1.checkout.sessions.create_async(params, options=options)
    assert retried.id == hidden_id
    assert retried.last_response is not None
    assert retried.last_response.headers["Idempotent-Replayed"] == "true"
    assert emulator.sessions_created() == 1


async def test_sdk_retry_after_a_drop_after_apply_gets_the_same_session(
    http: aiohttp.ClientSession, base_url: str, clock: FakeClock, emulator: StripeEmulator
) -> None:
    # The SDK generates one idempotency key per call and reuses it for its own retries.
    client = make_client(base_url, http, retries=1)
    emulator.faults.drop_after_apply_next = 1
    session = await client.v1.checkout.sessions.create_async(session_params(clock))
    assert list(emulator.sessions) == [session.id]


async def test_a_timed_out_create_may_still_have_happened(
    http: aiohttp.ClientSession,
    base_url: str,
    clock: FakeClock,
    emulator: StripeEmulator,
    client: stripe.StripeClient,
) -> None:
    impatient = make_client(base_url, http, timeout=0.05)
    emulator.faults.hold_next = 1  # made, then answered only when the test says so
    options: stripe.RequestOptions = {"idempotency_key": "order-1"}
    params = session_params(clock)
    first = asyncio.create_task(
        impatient.v1.checkout.sessions.create_async(params, options=options)
    )
    await emulator.held.wait_for(1)
    assert emulator.sessions_created() == 1
    with pytest.raises(stripe.APIConnectionError):
        await first
    # Stripe is still on it: the same key now is a 409, never a second session.
    with pytest.raises(stripe.APIError) as busy:
        await client.v1.checkout.sessions.create_async(params, options=options)
    assert busy.value.http_status == 409
    # Once it finishes (although the client hung up), the key replays its session.
    assert emulator.held.release() == 1
    await emulator.idempotency.wait_settled("order-1")
    retried = await client.v1.checkout.sessions.create_async(params, options=options)
    assert list(emulator.sessions) == [retried.id]
    assert retried.last_response is not None
    assert retried.last_response.headers["Idempotent-Replayed"] == "true"


async def test_latency_trips_a_client_timeout(
    http: aiohttp.ClientSession, base_url: str, clock: FakeClock, emulator: StripeEmulator
) -> None:
    client = make_client(base_url, http, timeout=0.05)
    emulator.faults.latency = 0.5
    with pytest.raises(stripe.APIConnectionError):
        await client.v1.checkout.sessions.list_async()
    emulator.faults.latency = 0.0
    listing = await client.v1.checkout.sessions.list_async()
    assert listing.data == []


async def test_faults_can_be_restricted_to_paths(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    emulator.faults = Faults(fail_next=1, paths=["/v1/checkout/sessions/"])
    session = await client.v1.checkout.sessions.create_async(session_params(clock))
    assert emulator.faults.fail_next == 1  # POST /v1/checkout/sessions is not under the prefix
    with pytest.raises(stripe.APIError):
        await client.v1.checkout.sessions.retrieve_async(session.id)
    assert emulator.faults.fail_next == 0


async def test_a_500_is_kept_under_its_idempotency_key_and_replayed_for_24_hours(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    emulator.faults.fail_next = 1
    options: stripe.RequestOptions = {"idempotency_key": "order-1"}
    params = session_params(clock)
    with pytest.raises(stripe.APIError) as first:
        await client.v1.checkout.sessions.create_async(params, options=options)
    clock.advance(24 * 3600 - 60)
    with pytest.raises(stripe.APIError) as replayed:
        await client.v1.checkout.sessions.create_async(params, options=options)
    assert emulator.faults.fail_next == 0  # the second answer is the first one, replayed
    assert replayed.value.http_status == 500
    assert replayed.value.http_body == first.value.http_body
    assert replayed.value.request_id == first.value.request_id
    assert replayed.value.headers is not None
    assert replayed.value.headers["Idempotent-Replayed"] == "true"
    assert replayed.value.headers["Stripe-Should-Retry"] == "false"
    assert emulator.sessions_created() == 0
    # Another key (a new attempt) goes through; the old key is forgotten after 24 hours.
    other = await client.v1.checkout.sessions.create_async(
        session_params(clock), options={"idempotency_key": "order-2"}
    )
    assert other.status == "open"
    clock.advance(60)
    later = await client.v1.checkout.sessions.create_async(session_params(clock), options=options)
    assert later.status == "open"


async def test_a_500_on_a_key_that_already_holds_an_answer_changes_nothing(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "order-1"}
    params = session_params(clock)
    session = await client.v1.checkout.sessions.create_async(params, options=options)
    emulator.faults.fail_next = 1
    with pytest.raises(stripe.APIError):
        await client.v1.checkout.sessions.create_async(params, options=options)
    replayed = await client.v1.checkout.sessions.create_async(params, options=options)
    assert replayed.id == session.id


async def test_fail_after_apply_makes_the_session_and_answers_a_kept_500(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    emulator.faults.fail_after_apply_next = 1
    options: stripe.RequestOptions = {"idempotency_key": "order-1"}
    params = session_params(clock)
    for _ in range(2):  # the answer, then its replay
        with pytest.raises(stripe.APIError) as caught:
            await client.v1.checkout.sessions.create_async(params, options=options)
        assert caught.value.http_status == 500
    assert emulator.sessions_created() == 1  # made, although both answers said otherwise
    (made,) = emulator.sessions.values()
    listing = await client.v1.checkout.sessions.list_async({"created": {"gte": made["created"]}})
    assert [s.id for s in listing.data] == [made["id"]]


async def test_a_500_without_a_key_is_not_kept(
    http: aiohttp.ClientSession, base_url: str, emulator: StripeEmulator
) -> None:
    emulator.faults.fail_next = 1
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with http.post(f"{base_url}/v1/checkout/sessions", headers=headers) as resp:
        assert resp.status == 500
        assert "Stripe-Should-Retry" not in resp.headers
    assert len(emulator.idempotency) == 0


def test_fault_settings_are_validated() -> None:
    faults = Faults()
    faults.update({"fail_next": 2, "duplicate_webhooks": 0.5, "paths": "/v1/refunds"})
    assert (faults.fail_next, faults.duplicate_webhooks, faults.paths) == (2, 0.5, ["/v1/refunds"])
    for bad in ({"fail_next": -1}, {"error_rate": 2}, {"nope": 1}, {"latency": "x"}):
        with pytest.raises(ValueError, match=r"."):
            faults.update(bad)
    assert faults.fail_next == 2
