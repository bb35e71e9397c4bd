"""Header bytes that are not text are data (issue 10, item 5).

aiohttp decodes header bytes with ``surrogateescape``: ``User-Agent: \\xff\\xfe\\xfd`` reaches
the gateway as a ``str`` of lone surrogates, which Prometheus, the database drivers and a UTF-8
log stream cannot encode. One such GET used to make ``/metrics`` answer 500 for good and wedge
the open-count flush. The requests here are written on a raw socket, byte for byte.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.adapters.db.models import Link, LinkPreview
from gateway.metrics import Metrics
from gateway.services.links import IssuedLink
from gateway.services.opens import OpenRecorder
from gateway.visitors import clean_header
from gateway.web.keys import DATABASE
from tests.harness import Harness, start_harness

RAW_AGENT = b"\xff\xfe\xfd"


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> Harness:
    return await start_harness(aiohttp_server, aiohttp_client, database_url)


async def raw_get(h: Harness, path: str, user_agent: bytes) -> bytes:
    """One GET written by hand, so that the header's bytes are exactly ``user_agent``."""
    return await h.send_raw(
        b"GET "
        + path.encode()
        + b" HTTP/1.1\r\nHost: gateway\r\nUser-Agent: "
        + user_agent
        + b"\r\nConnection: close\r\n\r\n"
    )


async def counts(h: Harness, link: IssuedLink) -> tuple[int, dict[str, int]]:
    async with h.app[DATABASE].read() as session:
        opened = (
            await session.execute(sa.select(Link.open_count).where(Link.id == link.id))
        ).scalar_one()
        previews = (
            await session.execute(
                sa.select(LinkPreview.bot_name, LinkPreview.count).where(
                    LinkPreview.link_id == link.id
                )
            )
        ).all()
    return opened, {str(name): int(count) for name, count in previews}


async def test_a_user_agent_of_raw_bytes_breaks_neither_metrics_nor_the_flush(h: Harness) -> None:
    link = await h.issue()
    response = await raw_get(h, h.path(link), RAW_AGENT)
    assert response.startswith(b"HTTP/1.1 200 "), response[:200]

    scrape = await h.client.get("/metrics")
    assert scrape.status == 200
    text = await scrape.text()
    assert "gateway_bot_previews_total{" in text
    assert "\udcff" not in text

    assert (await h.get(link)).status == 200  # a person, counted after the poisoned request
    await h.flush_opens()  # raised UnicodeEncodeError / DBAPIError before the fix
    opened, previews = await counts(h, link)
    assert opened == 1
    assert sum(previews.values()) == 1
    for name in previews:
        name.encode("utf-8")  # stored as text
    assert (await h.client.get("/metrics")).status == 200  # and it stays that way


async def test_a_row_the_database_refuses_is_dropped_and_the_others_are_written(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever a row holds, it cannot hold up the others: the flush writes the rest, drops the
    refused one with an error log, and the next flush starts clean."""
    good, other = await h.issue(ref="r/1"), await h.issue(ref="r/2")
    recorder = OpenRecorder(h.app[DATABASE], h.clock)
    recorder.human_open(good.id)
    recorder.human_open("\udcff-not-text")  # no driver can send this
    recorder.bot_preview(good.id, "Slackbot")
    recorder.human_open(other.id)
    recorder.human_open(other.id)
    with caplog.at_level(logging.ERROR, logger="gateway.services.opens"):
        await recorder.flush()
    assert recorder.pending == 0
    assert await counts(h, good) == (1, {"Slackbot": 1})
    assert await counts(h, other) == (2, {})
    dropped = [r for r in caplog.records if r.getMessage().startswith("open count dropped")]
    assert len(dropped) == 1
    assert dropped[0].__dict__["link_id"] == ascii("\udcff-not-text")

    recorder.human_open(good.id)
    await recorder.flush()
    assert (await counts(h, good))[0] == 2


def test_bot_names_are_cleaned_before_they_are_counted() -> None:
    assert clean_header("\udcff\udcfe\udcfd") == "\ufffd\ufffd\ufffd"
    assert clean_header("a\x00b\nc\td") == "a\ufffdb\ufffdc\td"
    assert clean_header("Mozilla/5.0 (Linux; Android 14) Ünïcödé") == (
        "Mozilla/5.0 (Linux; Android 14) Ünïcödé"
    )
    name = "Mozilla/5.0 (Linux; Android 14)"
    assert clean_header(name) is name  # the common case costs no copy


def test_metrics_render_whatever_bot_name_they_are_given() -> None:
    metrics = Metrics()
    metrics.record_bot_preview("\udcff\udcfe\udcfd")
    text = metrics.render().decode("utf-8")  # raised UnicodeEncodeError before
    assert 'gateway_bot_previews_total{bot="other"} 1.0' in text
