"""``gateway_webhooks_total`` counts the outcome the webhook handler decided, and for an answer
the handler never made (the server's own body limit) the code the edge wrote: both are labels
from a fixed set, and an unverified body never names the type."""

from __future__ import annotations

import dataclasses
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from gateway.config import Settings
from tests.harness import Harness, start_harness

SERVER_LIMIT = 4096


def small_bodies(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, server=dataclasses.replace(settings.server, max_body_bytes=SERVER_LIMIT)
    )


async def webhook_series(h: Harness) -> dict[tuple[str, str], float]:
    response = await h.client.get("/metrics")
    assert response.status == 200
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            if sample.name == "gateway_webhooks_total":
                out[(sample.labels["type"], sample.labels["outcome"])] = sample.value
    return out


async def test_outcomes_the_handler_decided_and_the_edge_answered(
    aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
) -> None:
    h: Harness = await start_harness(
        aiohttp_server, aiohttp_client, sqlite_url, configure=small_bodies
    )
    body = b'{"id": "evt_x", "type": "checkout.session.completed"}'
    signature = {"Stripe-Signature": "t=1,v1=00"}
    # Over the server's limit but under the handler's: aiohttp refuses it while it is read.
    refused = await h.client.post(
        "/stripe/webhook", data=body + b" " * SERVER_LIMIT, headers=signature
    )
    assert refused.status == 413
    assert (await refused.json())["error"]["code"] == "request_entity_too_large"
    missing = await h.client.post("/stripe/webhook", data=body)
    assert missing.status == 400
    assert await webhook_series(h) == {
        ("unverified", "request_entity_too_large"): 1.0,
        ("unverified", "signature_missing"): 1.0,
    }
