"""Injected faults, as the SDK experiences them."""

from __future__ import annotations

import aiohttp
import pytest
import stripe

from gateway.clock import FakeClock
from gateway.emulator import Faults, StripeEmulator
from tests.emulator.conftest import make_client, session_params


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


async def test_sdk_retries_outlast_fail_next(
    http: aiohttp.ClientSession, base_url: str, clock: FakeClock, emulator: StripeEmulator
) -> None:
    client = make_client(base_url, http, retries=2)
    emulator.faults.fail_next = 2
    session = await client.v1.checkout.sessions.create_async(
        session_params(clock), options={"idempotency_key": "k1"}
    )
    assert session.status == "open"
    assert emulator.sessions_created() == 1
    keys = [key for method, _, key in emulator.request_log if method == "POST"]
    assert keys == ["k1", "k1", "k1"]


async def test_sdk_gives_up_with_api_error_when_failures_outlast_retries(
    http: aiohttp.ClientSession, base_url: str, clock: FakeClock, emulator: StripeEmulator
) -> None:
    client = make_client(base_url, http, retries=2)
    emulator.faults.fail_next = 3
    with pytest.raises(stripe.APIError):
        await client.v1.checkout.sessions.create_async(session_params(clock))
    assert len(emulator.request_log) == 3
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
    emulator.faults.latency = 0.3
    options: stripe.RequestOptions = {"idempotency_key": "order-1"}
    params = session_params(clock)
    with pytest.raises(stripe.APIConnectionError):
        await impatient.v1.checkout.sessions.create_async(params, options=options)
    assert emulator.sessions_created() == 1
    # The retry waits for the first attempt, still running under the same key, and gets its
    # session, even though the server cancelled the first handler when the client hung up.
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


async def test_fault_errors_are_not_stored_for_the_idempotency_key(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    emulator.faults.fail_next = 1
    options: stripe.RequestOptions = {"idempotency_key": "order-1"}
    params = session_params(clock)
    with pytest.raises(stripe.APIError):
        await client.v1.checkout.sessions.create_async(params, options=options)
    session = await client.v1.checkout.sessions.create_async(params, options=options)
    assert session.status == "open"
    assert session.last_response is not None
    assert "Idempotent-Replayed" not in session.last_response.headers


def test_fault_settings_are_validated() -> None:
    faults = Faults()
    faults.update({"fail_next": 2, "duplicate_webhooks": 0.5, "paths": "/v1/refunds"})
    assert (faults.fail_next, faults.duplicate_webhooks, faults.paths) == (2, 0.5, ["/v1/refunds"])
    for bad in ({"fail_next": -1}, {"error_rate": 2}, {"nope": 1}, {"latency": "x"}):
        with pytest.raises(ValueError, match=r"."):
            faults.update(bad)
    assert faults.fail_next == 2
