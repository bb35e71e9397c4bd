"""Made-up bot names add neither metric series nor ``link_previews`` rows (issue 10, item 7):
an audit's 20,000 GETs with distinct bot names made 20,000 of each."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from gateway.adapters.db.models import LinkPreview
from gateway.metrics import Metrics
from gateway.services.opens import OpenRecorder
from gateway.web.keys import DATABASE
from tests.harness import Harness, start_harness

GETS = 300


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> Harness:
    return await start_harness(aiohttp_server, aiohttp_client, database_url)


async def previews(h: Harness, link_id: str) -> dict[str, int]:
    async with h.app[DATABASE].read() as session:
        rows = await session.execute(
            sa.select(LinkPreview.bot_name, LinkPreview.count).where(LinkPreview.link_id == link_id)
        )
        return {str(name): int(count) for name, count in rows}


async def bot_series(h: Harness) -> dict[str, float]:
    response = await h.client.get("/metrics")
    assert response.status == 200
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            if sample.name == "gateway_bot_previews_total":
                out[sample.labels["bot"]] = sample.value
    return out


async def test_made_up_bot_names_share_one_row_and_one_series(h: Harness) -> None:
    link = await h.issue()
    for i in range(GETS):
        agent = f"Zorg{i}bot/1.{i} (+https://zorg{i}.example/bot)"
        response = await h.get(link, headers={"User-Agent": agent})
        assert response.status == 200
    googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    assert (await h.get(link, headers={"User-Agent": googlebot})).status == 200
    await h.flush_opens()
    assert await previews(h, link.id) == {"other": GETS, "Googlebot": 1}
    assert await bot_series(h) == {"other": GETS, "Googlebot": 1}


async def test_the_counters_bound_any_name_they_are_given(h: Harness) -> None:
    """Whoever calls them: a name outside the set is counted as "other"."""
    link = await h.issue()
    recorder = OpenRecorder(h.app[DATABASE], h.clock)
    metrics = Metrics()
    for i in range(50):
        recorder.bot_preview(link.id, f"anything {i}")
        metrics.record_bot_preview(f"anything {i}")
    recorder.bot_preview(link.id, "Slackbot")
    await recorder.flush()
    assert await previews(h, link.id) == {"other": 50, "Slackbot": 1}
    assert metrics.bot_previews.value("other") == 50
    assert metrics.bot_previews.value("anything 1") == 0
