"""Stripe misbehaving, with real processes: a scripted run of many payment flows through
``gateway serve`` while the emulator (its own process) answers 5xx, answers too slowly for the
gateway's client timeout, drops connections before and after applying a request, and loses,
duplicates and reorders webhooks. Parents see only redirects to Stripe, "already paid" pages,
or a 503 page with a reference (never a 500); after ONE ``gateway reconcile`` the database
agrees with the emulator exactly (:func:`tests.crash.support.assert_agrees`).

The schedule is deterministic: counters (``fail_next``, ``drop_next``, ``drop_after_apply_next``,
``lose_next_webhooks``) wherever possible, one seeded ``error_rate`` round, and the only
timing-dependent fault (latency beyond the client timeout) last among the API faults, with no
rate-based fault after it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.crash.support import (
    Emulator,
    Gateway,
    Link,
    Obj,
    Parents,
    Seen,
    assert_agrees,
    create_links,
    read_db,
    reconcile,
    scenario,
)
from tests.processes import run_cli

PARENTS = 24
SESSIONS_PATH = "/v1/checkout/sessions"
MAX_CLICKS = 10

# What parent i does on Stripe's page, by i % 8.
PLANS = ("paid", "paid", "async-ok", "async-fail", "declined", "never", "paid+return", "async")


def plan(i: int) -> str:
    return PLANS[i % len(PLANS)]


@dataclass
class FaultRun:
    gateway: Gateway
    emulator: Emulator
    parents: Parents
    links: list[Link]
    sessions: dict[str, str] = field(default_factory=dict)  # link id -> the session paid on
    paid: set[str] = field(default_factory=set)  # links a payment was made for
    repaid: set[str] = field(default_factory=set)  # failed delayed payment, then paid again
    revoked: set[str] = field(default_factory=set)

    async def press_pay(self, link: Link) -> tuple[str, list[Seen]]:
        """Open the link and press Pay until Stripe's page opens; a 503 page (with its
        reference) just means "try again in a moment", as it tells the parent."""
        answers: list[Seen] = []
        for _ in range(MAX_CLICKS):
            opened = await self.parents.open(link)
            assert opened.status == 200, opened
            pressed = await self.parents.press(link)
            answers.append(pressed)
            if pressed.status == 303:
                assert pressed.session_id is not None
                return pressed.session_id, answers
            assert pressed.status == 503, pressed
            assert pressed.reference, "a 503 page must show a reference"
        raise AssertionError(f"{link.ref}: no Stripe page after {MAX_CLICKS} clicks: {answers}")

    async def pay(self, i: int, link: Link) -> list[Seen]:
        session_id, answers = await self.press_pay(link)
        self.sessions[link.id] = session_id
        match plan(i):
            case "paid" | "paid+return":
                await self.emulator.pay(session_id)
                self.paid.add(link.id)
            case "async" | "async-ok" | "async-fail":
                await self.emulator.pay(session_id, "async")
                self.paid.add(link.id)
            case "declined":
                session = await self.emulator.pay(session_id, "declined")
                assert session["status"] == "open", session
        if plan(i) == "paid+return":
            back = await self.parents.come_back(link, session_id)
            assert back.status == 200, back
        return answers

    async def deliver(self) -> list[dict[str, Any]]:
        attempts = await self.emulator.deliver()
        # A validly signed event always gets a 2xx: it is applied, a duplicate, or ignored.
        assert all(a["status"] and 200 <= a["status"] < 300 for a in attempts), attempts
        return attempts


def statuses(answers: list[Seen]) -> list[int]:
    return [a.status for a in answers]


async def script(run: FaultRun) -> None:
    em = run.emulator
    links = run.links

    # 5xx on the next three calls. Stripe keeps the create's 500 under the order's key (and
    # says not to retry it): the parent gets one 503 page. The click again asks once more
    # (the 500 again), searches the sessions (a 500, which the SDK retries), finds none, and
    # replaces the order with a new one, which Stripe creates: one session for the link.
    await em.faults(fail_next=3, paths=[SESSIONS_PATH])
    assert statuses(await run.pay(0, links[0])) == [503, 303]
    assert (await em.state())["faults"]["fail_next"] == 0

    # One dropped connection before Stripe applied the call: the SDK retry absorbs it.
    await em.faults(drop_next=1)
    assert statuses(await run.pay(1, links[1])) == [303]
    # Three: every try is lost, the parent gets a 503, then Stripe's page on the next click.
    await em.faults(drop_next=3)
    assert statuses(await run.pay(2, links[2])) == [503, 303]

    # Dropped AFTER Stripe made the session, on every try: the gateway never hears of it.
    # The next click resumes the same order with the same idempotency key: Stripe replays
    # that very session, so there is still one session for this link.
    await em.faults(drop_after_apply_next=3)
    assert statuses(await run.pay(3, links[3])) == [503, 303]
    made = [
        s for s in await em.sessions() if (s.get("metadata") or {}).get("link_id") == links[3].id
    ]
    assert [s["id"] for s in made] == [run.sessions[links[3].id]], made

    # Webhooks so far arrive; the next four events Stripe emits are lost (only /v1/events
    # still has them).
    await run.deliver()
    await em.faults(paths=None, lose_next_webhooks=4)

    # A seeded error rate on every API call while eight parents pay (and webhooks arrive twice).
    await em.faults(error_rate=0.4, duplicate_webhooks=True)
    for i in range(4, 12):
        await run.pay(i, links[i])
    attempts = await run.deliver()
    assert any(a["duplicate"] for a in attempts)
    await em.faults(error_rate=0, duplicate_webhooks=False)
    assert len((await em.webhooks())["lost"]) == 4

    # Delayed payments settle; their events (completed, then succeeded or failed) arrive in
    # reverse order: transitions are monotonic, so "paid" is never undone by "processing".
    for i, link in enumerate(links[:12]):
        if plan(i) in ("async-ok", "async-fail"):
            await em.settle(run.sessions[link.id], plan(i) == "async-ok")
    await em.faults(reorder_webhooks=True)
    await run.deliver()
    await em.faults(reorder_webhooks=False)

    # A parent whose delayed payment failed pays again: a new attempt, while Stripe takes
    # 1.5 s per call, beyond the gateway's 1 s timeout. The session is made by the first try;
    # the SDK's retry (same idempotency key) waits for it and gets it replayed, or the parent
    # gets a 503 page and the click again resumes the very same attempt.
    failed_session = run.sessions[links[3].id]
    await em.faults(latency=1.5, paths=[SESSIONS_PATH])
    again, answers = await run.press_pay(links[3])
    await em.faults(latency=0, paths=None)
    assert set(statuses(answers)) <= {303, 503}
    assert again != failed_session, "a failed attempt is never reused"
    attempts_of_link = [
        s for s in await em.sessions() if (s.get("metadata") or {}).get("link_id") == links[3].id
    ]
    assert len(attempts_of_link) == 2, attempts_of_link
    await em.pay(again)
    run.sessions[links[3].id] = again
    run.repaid.add(links[3].id)

    # The rest pay with faults as counters: 5xx and drops sprinkled over their clicks, and
    # some of their webhooks lost, some delivered twice, the last ones never delivered at all.
    for i in range(12, PARENTS):
        if i % 3 == 0:
            await em.faults(fail_next=1)
        elif i % 3 == 1:
            await em.faults(drop_after_apply_next=1)
        await run.pay(i, links[i])
        if i == 17:
            await em.faults(lose_next_webhooks=3, duplicate_webhooks=True)
            await run.deliver()
            await em.faults(duplicate_webhooks=False)

    # The other delayed payments settle too, and none of those events is ever delivered.
    for i, link in enumerate(links[12:], start=12):
        if plan(i) in ("async-ok", "async-fail"):
            await em.settle(run.sessions[link.id], plan(i) == "async-ok")

    # The treasurer revokes a link nobody paid while Stripe drops the expire call after
    # applying it: the SDK's retry learns the session is expired, the attempt is canceled.
    never = links[PLANS.index("never")]
    await em.faults(drop_after_apply_next=1, paths=[f"{SESSIONS_PATH}/{run.sessions[never.id]}"])
    revoked = run_cli(["links", "revoke", never.id, "--json"], run.gateway.env)
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["changed"] is True
    assert (await em.state())["faults"]["drop_after_apply_next"] == 0
    await em.faults(paths=None)
    run.revoked.add(never.id)

    # Paid parents press Pay again (a second tab, a forwarded email): "already paid" or, while
    # the gateway has not heard of the payment yet, Stripe's page of the session they paid.
    for i, link in enumerate(links):
        if plan(i) in ("paid", "paid+return", "async-ok", "async") or link.id in run.repaid:
            again_pressed = await run.parents.press(link)
            assert again_pressed.status in (303, 409), again_pressed
            if again_pressed.status == 303:
                assert again_pressed.session_id == run.sessions[link.id]


async def run_faults(database_url: str, tmp_path: Path) -> None:
    async with scenario(
        database_url,
        tmp_path,
        seed=424242,
        GATEWAY_STRIPE_TIMEOUT="1s",
        GATEWAY_STRIPE_MAX_RETRIES="2",
    ) as (gateway, emulator, parents):
        links = create_links(gateway.env, PARENTS, tmp_path, "faults")
        await gateway.start()
        run = FaultRun(gateway, emulator, parents, links)
        await script(run)
        await check_outcome(run)
        assert gateway.alive(), gateway.logs()
    assert "Traceback" not in gateway.logs(), gateway.logs()


async def check_outcome(run: FaultRun) -> None:
    em = run.emulator
    await em.clear_faults()
    report = reconcile(run.gateway.env)
    assert report["events_applied"], "lost webhooks must be replayed from /v1/events"

    state = await read_db(run.gateway.env["GATEWAY_DATABASE_URL"])
    sessions = await em.sessions()
    intents = await em.payment_intent_statuses(sessions)
    assert_agrees(state.orders, sessions, intents)
    by_status = {s["status"] for s in sessions}
    assert by_status == {"open", "complete", "expired"}, by_status
    assert {intents[s["payment_intent"]] for s in sessions if s["payment_intent"]} == {
        "succeeded",
        "processing",
        "requires_payment_method",
    }
    webhooks = await em.webhooks()
    assert len(webhooks["lost"]) == 7, webhooks["lost"]

    # What parents saw: Stripe's page, "already paid"/"processing", or a 503 page with a
    # reference; never a 500, never anything else.
    seen = run.parents.seen
    assert {(s.method, s.status) for s in seen} <= {
        ("GET", 200),
        ("POST", 303),
        ("POST", 409),
        ("POST", 503),
        ("RETURN", 200),
    }, sorted({(s.method, s.status) for s in seen})
    assert all(s.reference for s in seen if s.status == 503)
    assert sum(s.status == 503 for s in seen) >= 3, "the faults never reached a parent"
    assert all(s.link_id in run.paid for s in seen if s.status == 409)

    # And now, with Stripe healthy: every link is either paid/processing (409), or payable.
    for i, link in enumerate(run.links):
        pressed = await run.parents.press(link)
        if link.id in run.revoked:
            opened = await run.parents.open(link)
            assert (opened.status, pressed.status) == (410, 410), (link, opened, pressed)
        elif plan(i) in ("declined", "never"):
            opened = await run.parents.open(link)
            assert (opened.status, pressed.status) == (200, 303), (link, opened, pressed)
            assert pressed.session_id == run.sessions[link.id], "the open session is reused"
        elif plan(i) == "async-fail" and link.id not in run.repaid:
            # The bank refused the delayed payment: the link is payable again, on a new attempt.
            opened = await run.parents.open_until(link, 200)
            assert (opened.status, pressed.status) == (200, 303), (link, opened, pressed)
            assert pressed.session_id != run.sessions[link.id], "a failed attempt is reused"
        else:
            opened = await run.parents.open_until(link, 409)
            assert (opened.status, pressed.status) == (409, 409), (link, opened, pressed)


@pytest.mark.slow
async def test_stripe_faults_end_with_the_database_agreeing_with_stripe(
    database_url: str, tmp_path: Path
) -> None:
    await run_faults(database_url, tmp_path)


# --- the checker itself: each way of disagreeing is caught ------------------------------------


def _session(sid: str, order_id: str, status: str, payment_status: str, pi: str | None) -> Obj:
    return {
        "id": sid,
        "client_reference_id": order_id,
        "metadata": {"order_id": order_id, "link_id": "lk_1"},
        "status": status,
        "payment_status": payment_status,
        "payment_intent": pi,
    }


def _order(oid: str, status: str, sid: str | None, pi: str | None = None, **more: Any) -> Obj:
    return {
        "id": oid,
        "link_id": "lk_1",
        "status": status,
        "stripe_session_id": sid,
        "payment_intent_id": pi,
        "paid_at": "2026-04-01" if status == "paid" else None,
        "cancel_reason": more.pop("cancel_reason", None),
        "duplicate_of": more.pop("duplicate_of", None),
    }


AGREEING = (
    [
        _order("o1", "canceled", "cs_1", cancel_reason="superseded"),
        _order("o2", "failed", "cs_2", "pi_2"),
        _order("o3", "paid", "cs_3", "pi_3"),
        _order("o4", "paid", "cs_4", "pi_4", duplicate_of="o3"),
        _order("o5", "pending", "cs_5"),
        _order("o6", "canceled", None, cancel_reason="stale"),
    ],
    [
        _session("cs_1", "o1", "expired", "unpaid", None),
        _session("cs_2", "o2", "complete", "unpaid", "pi_2"),
        _session("cs_3", "o3", "complete", "paid", "pi_3"),
        _session("cs_4", "o4", "complete", "paid", "pi_4"),
        _session("cs_5", "o5", "open", "unpaid", None),
    ],
    {"pi_2": "requires_payment_method", "pi_3": "succeeded", "pi_4": "succeeded"},
)


def test_assert_agrees_accepts_a_database_that_tells_stripes_story() -> None:
    assert_agrees(*AGREEING)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda o, s, i: o[2].update(status="pending"), "order o3 is pending, expected ['paid']"),
        (lambda o, s, i: o[3].update(duplicate_of=None), "none flagged as duplicate"),
        (lambda o, s, i: o.pop(2), "no order 'o3'"),
        (lambda o, s, i: o[4].update(status="canceled"), "order o5 is canceled"),
        (lambda o, s, i: o[4].update(stripe_session_id=None), "stores session None"),
        (lambda o, s, i: i.update(pi_2="processing"), "order o2 is failed, expected ['proc"),
        (lambda o, s, i: o[0].update(status="pending"), "order o1 is pending"),
        (lambda o, s, i: o[5].update(status="pending", stripe_session_id="cs_9"), "unknown"),
        (lambda o, s, i: o[5].update(status="paid"), "o6 is paid without any session"),
        (lambda o, s, i: s.append(_session("cs_6", "o6", "open", "unpaid", None)), "2 open"),
        (lambda o, s, i: s.append(_session("cs_7", "o5", "open", "unpaid", None)), "2 Stripe"),
    ],
)
def test_assert_agrees_names_each_disagreement(change: Any, problem: str) -> None:
    orders = [dict(o) for o in AGREEING[0]]
    sessions = [dict(s) for s in AGREEING[1]]
    intents = dict(AGREEING[2])
    change(orders, sessions, intents)
    with pytest.raises(AssertionError, match=re.escape(problem)):
        assert_agrees(orders, sessions, intents)


# --- a revocation Stripe did not hear about -----------------------------------------------------


async def revoke_while_stripe_is_down(database_url: str, tmp_path: Path) -> None:
    async with scenario(database_url, tmp_path, seed=7) as (gateway, em, parents):
        [link] = create_links(gateway.env, 1, tmp_path, "revoke")
        await gateway.start()
        pressed = await parents.press(link)
        assert pressed.status == 303, pressed
        # The treasurer revokes the link while Stripe answers 500 to the expire call (kept
        # under the call's key, so the SDK does not retry it).
        await em.faults(fail_next=1, paths=[f"{SESSIONS_PATH}/{pressed.session_id}/expire"])
        revoked = run_cli(["links", "revoke", link.id, "--json"], gateway.env)
        assert revoked.returncode == 0, revoked.stderr
        assert (await em.state())["faults"]["fail_next"] == 0, "expire was never tried"
        assert (await parents.press(link)).status == 410
        await em.clear_faults()
        reconcile(gateway.env)
        state = await read_db(database_url)
        sessions = await em.sessions()
        assert_agrees(state.orders, sessions, {})
        # The revoked link's attempt is over at Stripe too: nobody can pay it any more.
        [session] = sessions
        [order] = state.orders
        assert (session["status"], order["status"], order["cancel_reason"]) == (
            "expired",
            "canceled",
            "revoked",
        ), (session["status"], order)


@pytest.mark.slow
async def test_a_revocation_stripe_missed_is_finished_by_reconcile(
    sqlite_url: str, tmp_path: Path
) -> None:
    await revoke_while_stripe_is_down(sqlite_url, tmp_path)
