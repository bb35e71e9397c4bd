"""Never lose a payment (issue 4): lost, late and duplicated webhooks, sessions created by a
request that died, payments on old sessions, refunds and disputes made in Stripe's dashboard."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.adapters.db.models import Link, Order, WebhookEvent
from gateway.services.reconcile import UNREACHABLE_LIMIT, ReconcileReport
from gateway.web.keys import DATABASE, METRICS, RECONCILER
from tests.harness import Harness, session_id_from, start_harness
from tests.processes import ROOT, gateway_env


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> Harness:
    return await start_harness(aiohttp_server, aiohttp_client, database_url)


async def reconcile(h: Harness) -> ReconcileReport:
    report = await h.app[RECONCILER].run()
    assert report.ran and not report.errors, report
    return report


async def statuses(h: Harness, link: Any) -> list[str]:
    return [o.status for o in await h.orders(link)]


class TestLostWebhooks:
    async def test_lost_completed_event_is_replayed_from_stripes_event_list(
        self, h: Harness
    ) -> None:
        link = await h.issue()
        h.emulator.faults.update({"lose_next_webhooks": 100})
        await h.pay_flow(link)
        assert await statuses(h, link) == ["pending"]
        report = await reconcile(h)
        assert await statuses(h, link) == ["paid"]
        assert any("checkout.session.completed" in e for e in report.events_applied)
        again = await reconcile(h)  # running it again changes nothing
        assert again.fixes == 0
        assert await statuses(h, link) == ["paid"]

    async def test_lost_async_success_is_settled_from_the_payment_intent(self, h: Harness) -> None:
        link = await h.issue()
        session_id = session_id_from((await h.post(link)).headers["Location"])
        h.emulator.pay(session_id, outcome="async")
        await h.emulator.deliver_webhooks()
        assert await statuses(h, link) == ["processing"]
        h.emulator.faults.update({"lose_next_webhooks": 100})
        h.emulator.settle_async(session_id, succeed=True)
        await h.emulator.deliver_webhooks()
        await reconcile(h)
        assert await statuses(h, link) == ["paid"]

    async def test_expired_session_with_lost_event_is_settled(self, h: Harness) -> None:
        link = await h.issue()
        await h.post(link)
        h.emulator.faults.update({"lose_next_webhooks": 100})
        h.clock.advance(2 * 3600)
        h.emulator.expire_due_sessions()
        await reconcile(h)
        assert await statuses(h, link) == ["expired"]
        assert (await h.post(link)).status == 303  # and the link is payable again


class TestRecovery:
    async def test_session_created_but_never_saved_is_recovered_by_its_idempotency_key(
        self, h: Harness
    ) -> None:
        link = await h.issue()
        h.emulator.faults.update({"drop_after_apply_next": 1})
        assert (await h.post(link)).status == 503  # Stripe made the session; we never heard
        (order,) = await h.orders(link)
        assert order.stripe_session_id is None
        (made,) = h.emulator.sessions.values()
        h.emulator.faults.update({"lose_next_webhooks": 100})
        h.emulator.pay(made["id"])  # the parent cannot have paid it, but suppose Stripe says so
        await h.emulator.deliver_webhooks()
        h.clock.advance(5 * 60)
        report = await reconcile(h)
        (order,) = await h.orders(link)
        assert order.stripe_session_id == made["id"]
        assert order.status == "paid"
        assert h.emulator.sessions_created() == 1
        # Found either way round: the replayed event names the order, or the key finds the session.
        assert report.sessions_recovered or report.events_applied

    async def test_after_24_hours_the_session_is_found_by_listing(self, h: Harness) -> None:
        link = await h.issue()
        h.emulator.faults.update({"drop_after_apply_next": 1, "lose_next_webhooks": 100})
        assert (await h.post(link)).status == 503
        (made,) = h.emulator.sessions.values()
        h.clock.advance(25 * 3600)
        h.emulator.expire_due_sessions()
        created_before = h.emulator.sessions_created()
        await reconcile(h)
        (order,) = await h.orders(link)
        assert (order.stripe_session_id, order.status) == (made["id"], "expired")
        assert h.emulator.sessions_created() == created_before  # found, not made anew

    async def test_order_whose_session_was_never_made_is_closed_after_its_life(
        self, h: Harness
    ) -> None:
        link = await h.issue()
        h.emulator.faults.update({"fail_next": 1})
        assert (await h.post(link)).status == 503
        h.clock.advance(25 * 3600)
        await reconcile(h)
        (order,) = await h.orders(link)
        assert (order.status, order.cancel_reason) == ("canceled", "stale")
        assert h.emulator.sessions_created() == 0


class TestDuplicates:
    async def pay_old_session_after_new(self, h: Harness, link: Any) -> tuple[str, str]:
        old = session_id_from((await h.post(link)).headers["Location"])
        h.clock.advance(31 * 60)
        new = session_id_from((await h.post(link)).headers["Location"])
        assert old != new
        return old, new

    async def test_payment_on_a_canceled_order_is_recorded_and_the_new_attempt_retired(
        self, h: Harness
    ) -> None:
        link = await h.issue()
        # The old session expired at Stripe when replaced; a parent in another tab paid it just
        # before that (the emulator lets us pay it regardless, as a race would).
        old, new = await self.pay_old_session_after_new(h, link)
        h.emulator.sessions[old]["status"] = "open"
        h.emulator.pay(old)
        await h.emulator.deliver_webhooks()
        first, second = await h.orders(link)
        assert (first.stripe_session_id, first.status) == (old, "paid")
        assert (second.status, second.cancel_reason) == ("canceled", "superseded")
        assert h.emulator.sessions[new]["status"] == "expired"  # nobody can pay twice now
        assert (await h.get(link)).status == 409

    async def test_second_payment_is_flagged_and_refunded_exactly_once(
        self, aiohttp_server: Any, aiohttp_client: Any, database_url: str
    ) -> None:
        h = await start_harness(
            aiohttp_server, aiohttp_client, database_url, refund_duplicates=True
        )
        link = await h.issue()
        old, new = await self.pay_old_session_after_new(h, link)
        h.emulator.pay(new)
        await h.emulator.deliver_webhooks()
        h.emulator.sessions[old]["status"] = "open"  # the other tab pays the old one too
        h.emulator.faults.update({"duplicate_webhooks": True})
        h.emulator.pay(old)
        for _ in range(3):  # the same event delivered three times (and twice each)
            await h.emulator.deliver_webhooks()
            event = next(
                e for e in reversed(h.emulator.events) if e["type"] == "checkout.session.completed"
            )
            h.emulator.webhooks.enqueue(event)
        await h.emulator.deliver_webhooks()
        await reconcile(h)
        await reconcile(h)
        orders = {o.stripe_session_id: o for o in await h.orders(link)}
        assert orders[new].status == "paid" and orders[new].duplicate_of is None
        duplicate = orders[old]
        assert duplicate.duplicate_of == orders[new].id
        assert duplicate.status == "refunded" and duplicate.refund_id
        assert len(h.emulator.refunds) == 1
        (refund,) = h.emulator.refunds.values()
        assert refund["payment_intent"] == h.emulator.sessions[old]["payment_intent"]
        assert (await h.get(link)).status == 409  # still paid by the first payment

    async def test_without_auto_refund_the_duplicate_is_flagged_only(self, h: Harness) -> None:
        link = await h.issue()
        old, new = await self.pay_old_session_after_new(h, link)
        h.emulator.pay(new)
        h.emulator.sessions[old]["status"] = "open"
        h.emulator.pay(old)
        await h.emulator.deliver_webhooks()
        report = await reconcile(h)
        orders = {o.stripe_session_id: o for o in await h.orders(link)}
        assert orders[old].duplicate_of == orders[new].id and orders[old].status == "paid"
        assert orders[old].id in report.duplicates
        assert h.emulator.refunds == {}


class TestRefundsAndDisputes:
    async def test_dashboard_refunds_partial_then_full(self, h: Harness) -> None:
        link = await h.issue()
        session_id = await h.pay_flow(link)
        intent = h.emulator.sessions[session_id]["payment_intent"]
        h.emulator.refund_from_dashboard(intent, amount=5000)
        await h.emulator.deliver_webhooks()
        (order,) = await h.orders(link)
        assert (order.status, order.refunded_amount) == ("paid", 5000)
        h.emulator.refund_from_dashboard(intent)
        await h.emulator.deliver_webhooks()
        (order,) = await h.orders(link)
        assert (order.status, order.refunded_amount) == ("refunded", 15000)
        trail = [a.action for a in await h.audit(link)]
        assert trail[-2:] == ["order.partially_refunded", "order.refunded"]

    async def test_dispute_flags_the_order(self, h: Harness) -> None:
        link = await h.issue()
        session_id = await h.pay_flow(link)
        h.emulator.dispute(h.emulator.sessions[session_id]["payment_intent"])
        await h.emulator.deliver_webhooks()
        (order,) = await h.orders(link)
        assert order.disputed and order.status == "paid"

    async def test_refund_before_the_payment_event_is_deferred_then_applied(
        self, h: Harness
    ) -> None:
        link = await h.issue()
        session_id = session_id_from((await h.post(link)).headers["Location"])
        h.emulator.faults.update({"lose_next_webhooks": 10})
        h.emulator.pay(session_id)  # completed event lost
        await h.emulator.deliver_webhooks()
        h.emulator.faults.update({"lose_next_webhooks": 0})
        h.emulator.refund_from_dashboard(h.emulator.sessions[session_id]["payment_intent"])
        await h.emulator.deliver_webhooks()  # charge.refunded answered 503: Stripe will retry
        async with h.app[DATABASE].read() as session:
            refunded_events = [
                e
                for e in (await session.execute(WebhookEvent.__table__.select())).all()
                if e.type == "charge.refunded"
            ]
        assert [e.outcome for e in refunded_events] == ["deferred"]
        assert await statuses(h, link) == ["pending"]
        await reconcile(h)  # replays completed, then the refund
        assert await statuses(h, link) == ["refunded"]


class TestConcurrentReconcilers:
    async def test_two_at_once_one_runs_the_other_skips(self, h: Harness) -> None:
        link = await h.issue()
        h.emulator.faults.update({"lose_next_webhooks": 100})
        await h.pay_flow(link)
        first, second = await asyncio.gather(h.app[RECONCILER].run(), h.app[RECONCILER].run())
        assert sorted([first.ran, second.ran]) == [False, True]
        assert await statuses(h, link) == ["paid"]

    @pytest.mark.slow
    async def test_two_processes_at_once_give_the_same_result_as_one(
        self, h: Harness, database_url: str
    ) -> None:
        links = [await h.issue(ref=f"r{i}") for i in range(4)]
        h.emulator.faults.update({"lose_next_webhooks": 1000})
        for link in links:
            await h.pay_flow(link)
        env = gateway_env(database_url, str(h.emulator_server.make_url("")).rstrip("/"), 1)

        async def run() -> dict[str, Any]:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway.cli",
                "reconcile",
                "--json",
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await process.communicate()
            assert process.returncode == 0, err.decode()
            return dict(json.loads(out))

        reports = await asyncio.gather(run(), run())
        applied = sum(len(r["events_applied"]) + len(r["orders_settled"]) for r in reports)
        assert applied == len(links)  # each payment recorded once, whoever ran
        assert [o.status for o in await h.all_orders()] == ["paid"] * len(links)
        report = await reconcile(h)
        assert report.fixes == 0


class TestWebhookCommands:
    async def cli(self, h: Harness, database_url: str, *args: str) -> str:
        env = gateway_env(database_url, str(h.emulator_server.make_url("")).rstrip("/"), 1)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.cli",
            *args,
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        return out.decode()

    async def test_list_and_replay_a_lost_event(self, h: Harness) -> None:
        link = await h.issue()
        await h.get(link)
        session_id = session_id_from((await h.post(link)).headers["Location"])
        h.emulator.faults.update({"lose_next_webhooks": 100})
        h.emulator.pay(session_id)
        await h.emulator.deliver_webhooks()
        event = next(e for e in h.emulator.events if e["type"] == "checkout.session.completed")
        database_url = str(h.app[DATABASE].engine.url.render_as_string(hide_password=False))

        listed = json.loads(await self.cli(h, database_url, "webhooks", "list", "--json"))
        assert event["id"] not in {row["event_id"] for row in listed}

        replayed = json.loads(
            await self.cli(h, database_url, "webhooks", "replay", event["id"], "--json")
        )
        assert replayed["outcome"] == "applied"
        assert await statuses(h, link) == ["paid"]
        again = json.loads(
            await self.cli(h, database_url, "webhooks", "replay", event["id"], "--json")
        )
        assert again["outcome"] == "unchanged"
        listed = json.loads(await self.cli(h, database_url, "webhooks", "list", "--json"))
        (row,) = [r for r in listed if r["event_id"] == event["id"]]
        assert (row["source"], row["attempts"]) == ("replay", 2)
        table = await self.cli(h, database_url, "webhooks", "list")
        assert event["id"] in table and "checkout.session.completed" in table


async def set_row(h: Harness, model: Any, row_id: str, **values: Any) -> None:
    """Write a row directly: the state a bug, an old version or a hand edit could leave."""
    async with h.app[DATABASE].write() as session:
        await session.execute(sa.update(model).where(model.id == row_id).values(**values))


async def run_reconcile(h: Harness) -> ReconcileReport:
    report = await h.app[RECONCILER].run()
    assert report.ran
    h.app[METRICS].record_reconcile(report)
    return report


def failed(report: ReconcileReport) -> list[tuple[str, str]]:
    return [(f["step"], f["item"]) for f in report.failures]


class TestOneBadItemDoesNotStopAPass:
    """Issue 10, item 13: a failure is counted, reported and skipped; the later items go on."""

    async def test_orders_stripe_does_not_know_are_reported_and_later_orders_are_settled(
        self, h: Harness
    ) -> None:
        unknown_intent, unknown_session = await h.issue(ref="a"), await h.issue(ref="b")
        await h.post(unknown_intent)
        h.clock.advance(1)
        await h.post(unknown_session)
        (a,), (b,) = await h.orders(unknown_intent), await h.orders(unknown_session)
        await set_row(h, Order, a.id, status="processing", payment_intent_id="pi_unknown")
        await set_row(h, Order, b.id, stripe_session_id="cs_unknown")
        h.clock.advance(60)
        later = [await h.issue(ref=f"later{i}") for i in range(2)]
        h.emulator.faults.update({"lose_next_webhooks": 100})
        for link in later:
            await h.pay_flow(link)
        # Stripe's event list unavailable this time: settling from the sessions has to do it.
        h.emulator.faults.update({"fail_next": 1, "paths": ["/v1/events"]})
        report = await run_reconcile(h)
        h.emulator.faults.update({"paths": None})
        assert [await statuses(h, link) for link in later] == [["paid"], ["paid"]]
        assert len(report.orders_settled) == 2
        assert failed(report) == [("settle", a.id), ("settle", b.id)]
        assert "No such payment_intent" in report.failures[0]["error"]
        assert "No such checkout.session" in report.failures[1]["error"]
        assert report.as_dict()["failed"] == 2 and not report.ok
        metrics = h.app[METRICS].render().decode()
        assert 'gateway_reconcile_failures_total{step="settle"} 2.0' in metrics
        assert 'gateway_reconcile_runs_total{result="errors"} 1.0' in metrics
        assert [await statuses(h, link) for link in (unknown_intent, unknown_session)] == [
            ["processing"],
            ["pending"],
        ]
        again = await run_reconcile(h)  # reported each pass until someone looks; nothing else
        assert failed(again) == [("settle", a.id), ("settle", b.id)] and again.fixes == 0

    async def test_an_event_the_gateway_cannot_use_does_not_stop_the_replay(
        self, h: Harness
    ) -> None:
        first, second = await h.issue(ref="first"), await h.issue(ref="second")
        h.emulator.faults.update({"lose_next_webhooks": 100})
        await h.pay_flow(first)
        broken = next(e for e in h.emulator.events if e["type"] == "checkout.session.completed")
        broken["data"]["object"]["expires_at"] = 10**20
        h.clock.advance(1)
        await h.pay_flow(second)
        report = await run_reconcile(h)
        assert failed(report) == [("replay", broken["id"])]
        assert "expires_at" in report.failures[0]["error"]
        assert len(report.events_applied) == 1  # the second payment's event
        # The first payment is settled all the same, from its session.
        assert await statuses(h, first) == await statuses(h, second) == ["paid"]
        again = await run_reconcile(h)  # recorded as invalid: not tried again
        assert again.ok and again.fixes == 0

    async def test_one_attempt_that_cannot_be_retired_does_not_keep_the_others(
        self, h: Harness
    ) -> None:
        links = [await h.issue(ref=f"r{i}") for i in range(2)]
        for link in links:
            await h.post(link)
            h.clock.advance(1)
        (bad,), (good,) = [await h.orders(link) for link in links]
        await set_row(h, Order, bad.id, stripe_session_id="cs_unknown")
        for link in links:  # revoked while Stripe could not be reached: still pending
            await set_row(h, Link, link.id, revoked_at=bad.created_at)
        report = await run_reconcile(h)
        assert ("retire", bad.id) in failed(report)
        assert report.attempts_retired == [good.id]
        (good,) = await h.orders(links[1])
        assert (good.status, good.cancel_reason) == ("canceled", "revoked")

    async def test_one_duplicate_that_cannot_be_refunded_does_not_keep_the_others(
        self, aiohttp_server: Any, aiohttp_client: Any, database_url: str
    ) -> None:
        h = await start_harness(
            aiohttp_server, aiohttp_client, database_url, refund_duplicates=True
        )
        duplicates = []
        for i in range(2):
            link = await h.issue(ref=f"d{i}")
            old = session_id_from((await h.post(link)).headers["Location"])
            h.clock.advance(31 * 60)
            new = session_id_from((await h.post(link)).headers["Location"])
            h.emulator.pay(new)
            h.emulator.sessions[old]["status"] = "open"  # paid in another tab as well
            h.emulator.pay(old)
            h.emulator.faults.update({"drop_next": 1, "paths": ["/v1/refunds"]})
            await h.emulator.deliver_webhooks()  # the automatic refund fails: left to reconcile
            (duplicate,) = [o for o in await h.orders(link) if o.duplicate_of]
            assert duplicate.status == "paid" and duplicate.refund_id is None
            duplicates.append(duplicate)
        h.emulator.faults.update({"paths": None})
        await set_row(h, Order, duplicates[0].id, payment_intent_id="pi_unknown")
        report = await run_reconcile(h)
        assert failed(report) == [("refund", duplicates[0].id)]
        assert report.refunds == [duplicates[1].id]
        assert len(h.emulator.refunds) == 1

    async def test_stripe_unreachable_several_times_in_a_row_ends_the_step(
        self, h: Harness
    ) -> None:
        links = [await h.issue(ref=f"u{i}") for i in range(UNREACHABLE_LIMIT + 1)]
        for link in links:
            await h.post(link)
        h.emulator.faults.update(
            {"fail_next": UNREACHABLE_LIMIT, "paths": ["/v1/checkout/sessions/"]}
        )
        report = await run_reconcile(h)
        h.emulator.faults.update({"paths": None})
        assert [step for step, _ in failed(report)] == ["settle"] * UNREACHABLE_LIMIT
        assert any(e.startswith("settle_orders: Stripe unreachable") for e in report.errors)
        assert (await run_reconcile(h)).ok  # the next pass goes through

    async def test_the_cli_reports_failures_in_its_json_and_exits_non_zero(
        self, h: Harness, database_url: str
    ) -> None:
        broken, later = await h.issue(ref="broken"), await h.issue(ref="later")
        await h.post(broken)
        (order,) = await h.orders(broken)
        await set_row(h, Order, order.id, status="processing", payment_intent_id="pi_unknown")
        h.clock.advance(60)
        h.emulator.faults.update({"lose_next_webhooks": 100})
        await h.pay_flow(later)
        env = gateway_env(database_url, str(h.emulator_server.make_url("")).rstrip("/"), 1)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.cli",
            "reconcile",
            "--json",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 2
        assert b"1 failed item(s)" in err
        report = json.loads(out)
        assert report["failed"] == 1
        (failure,) = report["failures"]
        assert (failure["step"], failure["item"]) == ("settle", order.id)
        assert "No such payment_intent" in failure["error"]
        assert await statuses(h, later) == ["paid"]
