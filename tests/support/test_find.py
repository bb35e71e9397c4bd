"""Find (issue 16 item 1): every kind of query a parent's message holds finds its link, the
database first and Stripe where the database has nothing, each answer saying where it came from;
what can match nothing says why. Through the service, the JSON API and the CLI."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from gateway.adapters.db.models import Order
from gateway.cli import main
from gateway.domain.errors import ValidationFailed
from gateway.domain.support import Kind
from gateway.services.support import Found
from gateway.services.webhooks import InvalidEvent, parse_event
from gateway.web.keys import DATABASE, MONEY, SETTINGS
from tests.admin.test_openapi import checked
from tests.harness import TOKEN_SECRET, forge
from tests.money.support import MoneyHarness
from tests.support.support import at_checkout, desk, lose_order_row, orphan


def ids(found: Found) -> list[tuple[str | None, str]]:
    return [(r.diagnosis.link_id if r.diagnosis else None, r.source) for r in found.results]


async def test_people_references_and_links(h: MoneyHarness) -> None:
    sam = await h.issue(email="Sam.Rivera@Example.org", name="Sam Rivera", ref="U12-007")
    other = await h.issue(email="jo@example.org", name="Jo Park", ref="U14-001")
    find = desk(h).find
    assert ids(await find("sam.rivera@example.org")) == [(sam.id, "database")]
    assert ids(await find("  <Sam.Rivera@example.ORG> ")) == [(sam.id, "database")]
    assert ids(await find("Rivera")) == [(sam.id, "database")]
    assert ids(await find("U12-007")) == [(sam.id, "database")]
    assert {i for i, _ in ids(await find("ref:U1"))} == {sam.id, other.id}
    assert ids(await find(other.id)) == [(other.id, "database")]
    assert ids(await find(other.url)) == [(other.id, "database")]
    assert ids(await find(other.token)) == [(other.id, "database")]
    forged = await find(forge(other.token))
    assert forged.results == [] and forged.problem and "not made by this gateway" in forged.problem
    nobody = await find("nobody-here@example.org")
    assert nobody.results == [] and nobody.problem is None
    with pytest.raises(ValidationFailed) as too_long:
        await find("x" * 400)
    assert "q" in too_long.value.errors


async def test_stripe_ids_in_the_database(h: MoneyHarness) -> None:
    link = await h.issue()
    order = await h.paid(link)
    assert order.stripe_session_id and order.payment_intent_id
    for query in (order.stripe_session_id, order.payment_intent_id):
        found = await desk(h).find(query)
        assert ids(found) == [(link.id, "database")] and not found.asked_stripe
    refund = await h.app[MONEY].refunds.refund(
        order.id, amount="50.00", reason="injured", expected_refundable=15000, actor="t"
    )
    assert ids(await desk(h).find(refund.stripe_refund_id)) == [(link.id, "database")]
    event = next(e for e in h.emulator.events if e["type"] == "checkout.session.completed")
    assert ids(await desk(h).find(event["id"])) == [(link.id, "database")]


async def test_what_only_stripe_knows_is_asked_there_and_said_so(h: MoneyHarness) -> None:
    link = await h.issue()
    session_id = await at_checkout(h, link)
    (order,) = await h.orders(link)
    await lose_order_row(h, order.id)
    h.emulator.pay(session_id)
    intent = h.emulator.sessions[session_id]["payment_intent"]
    # No order, no orphan recorded yet (reconcile has not run): Stripe names the link.
    for query in (session_id, intent):
        found = await desk(h).find(query)
        assert found.asked_stripe and ids(found) == [(link.id, "stripe")], query
        assert found.results[0].note
    unknown = await desk(h).find("pi_doesnotexist000")
    assert unknown.asked_stripe and unknown.results == []
    assert unknown.problem and "neither this database nor Stripe" in unknown.problem
    event = next(e for e in h.emulator.events if e["type"] == "checkout.session.completed")
    by_event = await desk(h).find(event["id"])
    assert ids(by_event) == [(link.id, "stripe")]


async def test_an_orphan_payment_is_found_by_its_stripe_ids(h: MoneyHarness) -> None:
    link = await h.issue()
    _, intent = await orphan(h, link)
    found = await desk(h).find(intent)
    assert ids(found) == [(link.id, "database")] and not found.asked_stripe
    diagnosis = found.results[0].diagnosis
    assert diagnosis is not None and diagnosis.kind is Kind.ORPHAN


async def test_ids_that_are_not_stored_say_what_to_search_instead(h: MoneyHarness) -> None:
    for query, words in (
        ("ch_3abc", "nor Stripe knows"),
        ("dp_1abc", "nor Stripe knows"),
        ("re_unknown", "no refund recorded here"),
        ("4242 150.00 2026-04-03", "no payment of that amount"),
        ("4242 150.00 2026-13-03", "write it like"),
    ):
        found = await desk(h).find(query)
        assert found.results == [] and found.problem and words in found.problem, query


async def test_a_charge_or_a_dispute_is_found_through_its_payment_at_stripe(
    h: MoneyHarness,
) -> None:
    link = await h.issue()
    order = await h.paid(link)
    assert order.payment_intent_id is not None
    charge_id = h.emulator.payment_intents[order.payment_intent_id]["latest_charge"]
    dispute_id = h.emulator.dispute(order.payment_intent_id)["id"]

    by_charge = await desk(h).find(charge_id)
    by_dispute = await desk(h).find(dispute_id)

    assert ids(by_charge) == [(link.id, "database")]
    assert ids(by_dispute) == [(link.id, "database")]
    assert by_charge.asked_stripe and order.payment_intent_id in by_charge.label


async def test_the_json_api_matches_its_document(h: MoneyHarness) -> None:
    link = await h.issue()
    await h.paid(link)
    doc = await (await h.api("GET", "/openapi.json", key=None)).json()
    body = await checked(h, doc, "get", "/support/find", "/support/find", params={"q": link.id})
    (result,) = body["results"]
    assert result["source"] == "database"
    assert result["diagnosis"]["kind"] == "paid_receipt_not_delivered"
    assert result["diagnosis"]["fixes"] == [
        {"fix": "resend_receipt", "label": "Send the receipt again"}
    ]
    assert "$150.00" in result["diagnosis"]["reply"]
    await checked(h, doc, "get", "/support/find", "/support/find", params={"q": "x" * 400})
    await checked(h, doc, "get", "/support/find", "/support/find")
    await checked(h, doc, "get", "/support/find", "/support/find", params={"q": "ch_1"})


@pytest.fixture
def cli(
    h: MoneyHarness, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> MoneyHarness:
    for name in ("GATEWAY_CONFIG", "LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    monkeypatch.setenv("GATEWAY_TOKENS_SECRET_KEYS", TOKEN_SECRET)
    monkeypatch.setenv("GATEWAY_SERVER_PUBLIC_URL", h.app[SETTINGS].server.public_url)
    monkeypatch.setenv("GATEWAY_STRIPE_API_BASE", str(h.emulator_server.make_url("")).rstrip("/"))
    monkeypatch.setenv("GATEWAY_STRIPE_API_KEY", "sk_test_cli")
    # Mail set up as the app's (nothing is sent by `support find`).
    monkeypatch.setenv("GATEWAY_EMAIL_HOST", "127.0.0.1")
    monkeypatch.setenv("GATEWAY_EMAIL_PORT", "9")
    monkeypatch.setenv("GATEWAY_EMAIL_FROM_ADDRESS", "treasurer@riverside.example")
    return h


async def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(args))
    out, err = capsys.readouterr()
    return code, out, err


async def test_the_command_line(cli: MoneyHarness, capsys: pytest.CaptureFixture[str]) -> None:
    link = await cli.issue(email="sam@example.org")
    await cli.paid(link)
    code, out, err = await run(capsys, "support", "find", "sam@example.org")
    assert code == 0, err
    assert link.id in out and "from this database" in out
    assert "Fix: Send the receipt again" in out
    assert "Your payment of $150.00 for 2026-04/p1" in out
    code, out, err = await run(capsys, "support", "find", link.id, "--json")
    assert code == 0, err
    body: dict[str, Any] = json.loads(out)
    assert body["results"][0]["diagnosis"]["link_id"] == link.id
    code, out, err = await run(capsys, "support", "find", "x" * 400)
    assert code == 2 and "q:" in err


async def test_last4_amount_and_date_match_the_card_recorded_then_stripes(
    h: MoneyHarness,
) -> None:
    link = await h.issue()
    order = await h.paid(link)
    other = await h.issue(ref="2026-04/p2", items=("Spring fee=90.00",))
    await h.paid(other)
    # Recorded from charge.succeeded as the payment was made.
    assert (order.card_last4, order.card_brand) == ("4242", "visa")
    assert order.paid_at is not None
    zone = ZoneInfo(h.app[SETTINGS].checkout.timezone)
    day = order.paid_at.astimezone(zone).date().isoformat()
    found = await desk(h).find(f"4242 150.00 {day}")
    assert ids(found) == [(link.id, "database")] and not found.asked_stripe
    assert ids(await desk(h).find(f"4242 150,00 {day}")) == [(link.id, "database")]
    other_card = await desk(h).find(f"1111 150.00 {day}")
    assert other_card.results == [] and other_card.problem
    assert "with that card" in other_card.problem
    # A payment recorded before cards were kept: Stripe is asked, and says so.
    async with h.app[DATABASE].write() as session:
        await session.execute(
            sa.update(Order).where(Order.id == order.id).values(card_last4=None, card_brand=None)
        )
    asked = await desk(h).find(f"4242 150.00 {day}")
    assert ids(asked) == [(link.id, "stripe")] and asked.asked_stripe
    assert asked.results[0].note and "visa card ending 4242" in asked.results[0].note
    elsewhere = await desk(h).find(f"1111 150.00 {day}")
    assert elsewhere.problem and "other cards" in elsewhere.problem


async def test_a_malformed_card_in_a_charge_event_is_refused_as_invalid() -> None:
    event = {
        "id": "evt_1",
        "type": "charge.succeeded",
        "data": {"object": {"id": "ch_1", "payment_method_details": {"card": {"last4": 4242}}}},
    }
    with pytest.raises(InvalidEvent) as refused:
        parse_event(event)
    assert "payment_method_details.card.last4" in str(refused.value)


async def test_last4_finds_an_orphan_payment(h: MoneyHarness) -> None:
    link = await h.issue()
    await orphan(h, link)
    zone = ZoneInfo(h.app[SETTINGS].checkout.timezone)
    day = datetime.fromtimestamp(h.clock.now(), UTC).astimezone(zone).date().isoformat()
    found = await desk(h).find(f"4242 150.00 {day}")
    assert ids(found) == [(link.id, "stripe")]
    diagnosis = found.results[0].diagnosis
    assert diagnosis is not None and diagnosis.kind is Kind.ORPHAN


async def test_stripe_down_while_asked_is_said_plainly(h: MoneyHarness) -> None:
    h.emulator.faults.update({"fail_next": 1, "paths": ["/v1/payment_intents/pi_nothing000"]})
    found = await desk(h).find("pi_nothing000")
    assert found.asked_stripe and found.results == []
    assert found.problem and "Stripe could not be asked now" in found.problem
