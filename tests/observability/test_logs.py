"""Logs of a full flow (admin API, bulk, email, open, pay, webhook, return, renew, errors), as
``gateway serve`` writes them: one JSON object per line, a request id on every request's lines,
and no token, Stripe secret, admin key or payer address anywhere."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.dev.demo_mail import MailSink
from gateway.logs import _QUIET as QUIET
from gateway.logs import configure_logging
from tests.admin.support import ADMIN_KEY, OTHER_KEY, start_admin_harness
from tests.harness import BROWSER_HEADERS, TOKEN_SECRET, WEBHOOK_SECRET

SLACKBOT = {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}
TOKEN = re.compile(r"lk_[A-Za-z0-9_-]{12}\.[A-Za-z0-9_-]{4,8}\.[A-Za-z0-9_-]{27}")


@pytest.fixture
def json_logs() -> Iterator[Any]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    levels = {name: logging.getLogger(name).level for name in QUIET}
    configure_logging("DEBUG", as_json=True)  # the product's own setup, at its most verbose
    buffer = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)  # the same handler and formatter, written where we can read it
    try:
        yield buffer.getvalue
    finally:
        root.handlers[:], root.level = saved
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


async def test_a_full_flow_logs_no_secret_and_a_request_id_on_every_request_line(
    aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str, mail_sink: MailSink, json_logs: Any
) -> None:
    h = await start_admin_harness(
        aiohttp_server, aiohttp_client, sqlite_url, smtp_port=mail_sink.port
    )
    tokens: list[str] = []
    created = await (
        await h.api(
            "POST",
            "/links",
            json={
                "email": "sam.parent@example.com",
                "name": "Sam",
                "items": ["Fee=10.00"],
                "send": True,
            },
        )
    ).json()
    tokens.append(created["token"])
    bulk = await (
        await h.api(
            "POST",
            "/links/bulk",
            data="email,name,ref,amount\nana.parent@example.com,Ana,b/1,12\n",
            headers={"Content-Type": "text/csv"},
            params={"send": "1"},
        )
    ).json()
    tokens.append(bulk["rows"][0]["url"].rsplit("/", 1)[1])
    await h.api("GET", "/links", key="wrong-key")
    await h.api("GET", "/links", key=OTHER_KEY)

    link = await h.issue(valid_for=3600)
    tokens.append(link.token)
    await h.get(link)
    await h.get(link, headers=SLACKBOT)
    await h.get(link.token[:-5])
    response = await h.post(link)
    session_id = response.headers["Location"].rsplit("/", 1)[-1]
    h.emulator.pay(re.search(r"cs_[A-Za-z0-9_]+", session_id)[0])  # type: ignore[index]
    await h.emulator.deliver_webhooks()
    await h.client.get(f"/pay/{link.token}/return?session_id=cs_unknown")
    await h.post(link)
    await h.client.post("/stripe/webhook", data=b"{}", headers={"Stripe-Signature": "t=1,v1=0"})
    h.emulator.faults.update({"fail_next": 3})
    other = await h.issue(ref="x/2", valid_for=3600)
    tokens.append(other.token)
    await h.post(other)  # Stripe down: a 503 page and a warning line
    h.clock.advance(2 * 3600)
    await h.client.post(f"/pay/{other.token}/renew", headers={**BROWSER_HEADERS, "Origin": "null"})
    await h.api("POST", "/reconcile")
    await h.client.get("/readyz")
    await h.client.get("/metrics")
    await h.flush_opens()
    assert len(mail_sink.messages) == 3  # the flow really ran

    output = json_logs()
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) > 20
    records = [json.loads(line) for line in lines]  # every line is one JSON object

    forbidden = [
        *tokens,
        TOKEN_SECRET,
        WEBHOOK_SECRET,
        "sk_test_harness",
        ADMIN_KEY,
        OTHER_KEY,
        "wrong-key",
        "sam.parent@example.com",
        "ana.parent@example.com",
        "parent@example.com",
    ]
    for line in lines:
        for secret in forbidden:
            assert secret not in line, (secret, line)
        assert not TOKEN.search(line), line

    requests = [r for r in records if r["logger"] == "gateway.http" and r["message"] == "request"]
    assert len(requests) >= 15
    assert all(re.fullmatch(r"[0-9a-f]{16}", r["request_id"]) for r in requests)
    assert len({r["request_id"] for r in requests}) == len(requests)
    assert any(r["path"] == "/pay/<token>" for r in requests)
    assert any(r["path"] == "/pay/<token>/renew" for r in requests)
    # Lines written while a request ran carry that request's id.
    warnings = [r for r in records if r["level"] == "warning" and r["logger"] != "asyncio"]
    assert warnings and all(r["request_id"] != "-" for r in warnings)
