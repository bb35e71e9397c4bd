"""docs/design.md §5's invariants under random sequences of everything that can happen to a link.

A hypothesis state machine drives the gateway and the Stripe emulator (one shared FakeClock,
loopback HTTP, a SQLite file per example): parents and bots opening links (GET/HEAD), pressing
Pay, paying the session they were sent to or an *old* session of the link, async payments
settling, time passing (stale replacement, session and link expiry), webhooks delivered late,
twice, reordered or lost, Stripe failing during a click, admins revoking links and refunding in
the dashboard, payers coming back to the return page, the reconciler, and some of these at once
(double taps racing a payment, a webhook delivery and a reconcile). After every step it checks:

1. GET/HEAD change nothing: no order, audit entry, Stripe request or Stripe object;
2. at most one pending order and at most one open Stripe session per link;
3. only paid/processing block: a payable link answers GET 200 and POST 303 (503 only while a
   Stripe fault was armed for that click; 409 only if the click itself found a payment);
4. after webhooks and a reconcile, every paid Stripe session is exactly one paid/refunded order;
5. nothing is deleted and audit trails only grow; order states only move forward;
6. no response is ever outside 200/303/403/409/410/503 (never a 500), webhooks included.

The machine is synchronous and owns its event loop: each example gets fresh servers, a fresh
database (a copy of one migrated template) and a fresh emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer, unused_port
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from gateway.adapters.db.engine import create_database
from gateway.adapters.db.migrate import upgrade
from gateway.adapters.db.models import AuditEntry, Link, Order
from gateway.app import create_app
from gateway.dev.clock import FakeClock
from gateway.dev.emulator import StripeEmulator, create_emulator_app
from gateway.dev.emulator.errors import StripeError
from gateway.services.links import IssuedLink
from gateway.web.keys import CLASSIFIER, DATABASE, LINKS, PAYMENTS, RECONCILER
from tests.harness import (
    ANDROID_CHROME,
    IPHONE_SAFARI,
    WEBHOOK_SECRET,
    Harness,
    session_id_from,
)
from tests.harness import test_settings as gateway_settings

T = TypeVar("T")

ALLOWED_CODES = {200, 303, 403, 409, 410, 503}
# A person on a phone: never classified as a bot, so the page status is the link's state.
PEOPLE = {
    "iphone-safari": IPHONE_SAFARI,
    "android-chrome": ANDROID_CHROME,
}
USER_AGENTS = {
    **PEOPLE,
    "gmail-in-app": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) GSA/310.0.620443431 Mobile/15E148 Safari/604.1"
    ),
    "facebook-in-app": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/458.0.0.30.107;FBBV/580000000]"
    ),
    "slackbot": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "facebookexternalhit": (
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
    ),
    "googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "outlook-safelinks": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0"
    ),
    "curl": "curl/8.5.0",
    "empty": "",
}
# Stripe API faults a click may run into (each armed for one request, then cleared).
API_FAULTS = ("fail_next", "drop_next", "drop_after_apply_next")
# Time steps: around the 30 min stale mark, the 60 min session lifetime, hours, a day.
CLOCK_STEPS = (60, 5 * 60, 20 * 60, 29 * 60, 31 * 60, 45 * 60, 61 * 60, 3 * 3600, 8 * 3600, 86400)
# Link validities: some links run out during an example.
VALIDITIES = (2 * 3600, 12 * 3600, 30 * 86400, 30 * 86400)
# Where an order may go next (through any number of steps between two observations).
FORWARD: dict[str, set[str]] = {
    "pending": {"pending", "processing", "paid", "failed", "refunded", "canceled", "expired"},
    "processing": {"processing", "paid", "failed", "refunded"},
    "paid": {"paid", "refunded"},
    "refunded": {"refunded"},
    "failed": {"failed"},
    "canceled": {"canceled", "processing", "paid", "failed", "refunded"},
    "expired": {"expired", "processing", "paid", "failed", "refunded"},
}
BLOCKING = {"paid", "processing"}
MAX_LINKS = 4
LINK = st.integers(0, MAX_LINKS - 1)


@dataclass(frozen=True)
class OrderRow:
    id: str
    link_id: str
    status: str
    session_id: str | None
    duplicate_of: str | None
    updated_at: datetime
    refunded_amount: int


@dataclass(frozen=True)
class World:
    """Everything GET/HEAD must leave alone, read between two steps."""

    orders: dict[str, OrderRow]
    audit: dict[int, tuple[Any, ...]]
    revoked: dict[str, bool]
    valid_until: dict[str, datetime]
    stripe_requests: int
    stripe_sessions: tuple[tuple[str, str, str], ...]
    stripe_events: int

    def link_orders(self, link_id: str) -> list[OrderRow]:
        return [o for o in self.orders.values() if o.link_id == link_id]

    def state(self, link_id: str, now: datetime) -> str:
        """What the link's page must say (docs/design.md §4: payment outranks revocation/expiry)."""
        statuses = {o.status for o in self.link_orders(link_id)}
        if "paid" in statuses:
            return "paid"
        if "processing" in statuses:
            return "processing"
        if self.revoked[link_id]:
            return "revoked"
        if now >= self.valid_until[link_id]:
            return "expired"
        return "payable"


REFUSAL_CODE = {"paid": 409, "processing": 409, "revoked": 410, "expired": 410}


def _template_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def _migrate(path: Path) -> None:
    db = create_database(_template_url(path))
    try:
        await upgrade(db)
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated database, copied for each example (migrating costs more than an example)."""
    path = tmp_path_factory.mktemp("state-machine") / "template.sqlite3"
    asyncio.run(_migrate(path))
    return path


class CheckoutMachine(RuleBasedStateMachine):
    template: Path
    workdir: Path
    examples = 0

    def __init__(self) -> None:
        super().__init__()
        CheckoutMachine.examples += 1
        self.loop = asyncio.new_event_loop()
        self.dbdir = self.workdir / f"example-{CheckoutMachine.examples}"
        self.dbdir.mkdir()
        db_path = self.dbdir / "gateway.sqlite3"
        shutil.copyfile(self.template, db_path)
        self.h: Harness = self.run(self._start(_template_url(db_path)))
        self.links: list[IssuedLink] = []
        # Sessions a payer was sent to (303 Location), by link, oldest first.
        self.sessions_seen: dict[str, list[str]] = {}
        self.world: World | None = None
        self.codes: set[int] = set()

    # --- plumbing ------------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    async def _start(self, database_url: str) -> Harness:
        clock = FakeClock()
        emulator = StripeEmulator(clock=clock, webhook_mode="manual", webhook_secret=WEBHOOK_SECRET)
        emulator_server = TestServer(create_emulator_app(emulator), host="127.0.0.1")
        await emulator_server.start_server()
        emulator_url = str(emulator_server.make_url("")).rstrip("/")
        emulator.public_url = emulator_url
        port = unused_port()
        public = f"http://127.0.0.1:{port}"
        config = gateway_settings(database_url, emulator_url)
        config = dataclasses.replace(
            config, server=dataclasses.replace(config.server, public_url=public)
        )
        emulator.webhooks.url = f"{public}/stripe/webhook"
        app = create_app(config, clock=clock, auto_migrate=False, background_tasks=False)
        client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1", port=port))
        try:
            await client.start_server()
        except BaseException:
            await emulator_server.close()
            raise
        return Harness(clock, emulator, emulator_server, client)

    def teardown(self) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
            shutil.rmtree(self.dbdir, ignore_errors=True)

    async def _stop(self) -> None:
        try:
            await self.h.client.close()
        finally:
            await self.h.emulator_server.close()

    @property
    def emulator(self) -> StripeEmulator:
        return self.h.emulator

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.h.clock.now(), UTC)

    def clear_api_faults(self) -> None:
        self.emulator.faults.update(dict.fromkeys(API_FAULTS, 0))

    async def read_world(self) -> World:
        async with self.h.app[DATABASE].read() as session:
            orders = (await session.execute(sa.select(Order))).scalars().all()
            audit = (await session.execute(sa.select(AuditEntry))).scalars().all()
            links = (await session.execute(sa.select(Link))).scalars().all()
        return World(
            orders={
                o.id: OrderRow(
                    o.id,
                    o.link_id,
                    o.status,
                    o.stripe_session_id,
                    o.duplicate_of,
                    o.updated_at,
                    o.refunded_amount,
                )
                for o in orders
            },
            audit={
                a.id: (a.at, a.link_id, a.order_id, a.action, a.from_status, a.to_status, a.actor)
                for a in audit
            },
            revoked={link.id: link.revoked_at is not None for link in links},
            valid_until={link.id: link.valid_until for link in links},
            stripe_requests=len(self.emulator.request_log),
            stripe_sessions=tuple(
                (sid, s["status"], s["payment_status"]) for sid, s in self.emulator.sessions.items()
            ),
            stripe_events=len(self.emulator.events),
        )

    def note_code(self, code: int, what: str) -> None:
        self.codes.add(code)
        assert code in ALLOWED_CODES, f"{what} answered {code}"

    def link(self, index: int) -> IssuedLink:
        return self.links[index % len(self.links)]

    # --- set-up --------------------------------------------------------------------------------

    @initialize(validities=st.lists(st.sampled_from(VALIDITIES), min_size=1, max_size=2))
    def issue_links(self, validities: list[int]) -> None:
        for valid_for in validities:
            self.issue_link(valid_for)

    @precondition(lambda self: len(self.links) < MAX_LINKS)
    @rule(valid_for=st.sampled_from(VALIDITIES))
    def issue_link(self, valid_for: int) -> None:
        n = len(self.links)
        link = self.run(self.h.issue(ref=f"2026-04/p{n}", valid_for=valid_for))
        self.links.append(link)
        self.sessions_seen[link.id] = []

    # --- parents and bots ----------------------------------------------------------------------

    @rule(
        index=LINK,
        agent=st.sampled_from(sorted(USER_AGENTS)),
        method=st.sampled_from(["GET", "HEAD"]),
    )
    def open_link(self, index: int, agent: str, method: str) -> None:
        """Invariants 1, 3 and 6 for GET/HEAD."""
        link = self.link(index)
        before = self.run(self.read_world())
        headers = {"User-Agent": USER_AGENTS[agent], "Accept-Language": "en-US,en;q=0.9"}
        code = self.run(self._open(link, method, headers))
        self.note_code(code, f"{method} as {agent}")
        event(f"{method} {code}")
        after = self.run(self.read_world())
        assert after == before, f"{method} as {agent} changed something"
        state = before.state(link.id, self.now())
        if state == "payable":
            assert code == 200, f"{method} of a payable link as {agent} answered {code}"
        elif agent in PEOPLE:
            assert code == REFUSAL_CODE[state], (state, code)
        else:  # a bot gets the harmless preview whatever the state
            assert code in (200, REFUSAL_CODE[state]), (state, code)

    async def _open(self, link: IssuedLink, method: str, headers: dict[str, str]) -> int:
        response = await self.h.client.request(
            method, self.h.path(link), headers=headers, allow_redirects=False
        )
        await response.read()
        return response.status

    @rule(
        index=LINK,
        agent=st.sampled_from(sorted(USER_AGENTS)),
        fault=st.sampled_from([None, None, None, *API_FAULTS]),
    )
    def press_pay(self, index: int, agent: str, fault: str | None) -> None:
        """Invariant 3 for POST: 303, or 503 only with a fault armed, or 409 only if blocked."""
        link = self.link(index)
        before = self.run(self.read_world())
        headers = {"User-Agent": USER_AGENTS[agent], "Origin": "null"}
        if fault:
            self.emulator.faults.update({fault: 1})
        try:
            response = self.run(self.h.post(link, headers=headers))
            self.run(response.read())
        finally:
            self.clear_api_faults()
        code = response.status
        self.note_code(code, f"POST as {agent} with fault {fault}")
        event(f"POST {code}" + (f" ({fault})" if fault else ""))
        after = self.run(self.read_world())
        listed = self.h.app[CLASSIFIER].classify(USER_AGENTS[agent], headers, "POST").listed
        if listed:
            assert agent not in PEOPLE
            assert code == 403, code
            assert after == before, "a listed scanner's POST changed something"
            return
        now = self.now()
        state_before = before.state(link.id, now)
        state_after = after.state(link.id, now)
        if code == 303:
            assert state_before == "payable", f"a {state_before} link answered 303"
            session_id = session_id_from(response.headers["Location"])
            assert self.emulator.sessions[session_id]["metadata"]["link_id"] == link.id
            seen = self.sessions_seen[link.id]
            if session_id not in seen:
                seen.append(session_id)
        elif state_before == "payable":
            allowed = {503} if fault else set()
            if state_after in BLOCKING:  # pressing Pay found a payment at Stripe (stale check)
                allowed.add(409)
            assert code in allowed, (
                f"POST on a payable link as {agent} (fault {fault}) answered {code}; "
                f"link {state_before} -> {state_after}"
            )
        else:
            assert code == REFUSAL_CODE[state_before], (state_before, code)

    @rule(
        index=LINK,
        actions=st.lists(
            st.sampled_from(["click", "click", "pay", "return", "deliver", "reconcile"]),
            min_size=2,
            max_size=4,
        ),
    )
    def at_once(self, index: int, actions: list[str]) -> None:
        """Concurrent clicks (double taps, a scanner and a parent), racing webhook deliveries
        and a reconcile: still one session per link, never a 5xx."""
        link = self.link(index)
        before = self.run(self.read_world())
        results = self.run(self._gather(link, actions))
        after = self.run(self.read_world())
        now = self.now()
        state_before = before.state(link.id, now)
        state_after = after.state(link.id, now)
        redirects = set()
        for action, code, location in results:
            if action == "return":
                assert code == 200, f"the return page answered {code}"
            if action != "click":
                continue
            assert isinstance(code, int)
            self.note_code(code, "a concurrent POST")
            event(f"concurrent POST {code}")
            if code == 303:
                assert location is not None
                redirects.add(session_id_from(location))
                continue
            # Whatever the link was before or became meanwhile (a concurrent delivery may have
            # recorded a payment, or a refund); never a 503: no fault is armed.
            allowed = {REFUSAL_CODE[s] for s in (state_before, state_after) if s != "payable"}
            assert code in allowed, (
                f"concurrent POST answered {code}; link {state_before} -> {state_after}"
            )
        assert len(redirects) <= 1, f"concurrent clicks were sent to sessions {redirects}"

    async def _gather(
        self, link: IssuedLink, actions: list[str]
    ) -> list[tuple[str, int | None, str | None]]:
        return await asyncio.gather(*(self._one(link, action) for action in actions))

    async def _one(self, link: IssuedLink, action: str) -> tuple[str, int | None, str | None]:
        if action == "click":
            response = await self.h.post(link, headers={"User-Agent": IPHONE_SAFARI})
            await response.read()
            location = response.headers.get("Location")
            if location and session_id_from(location) not in self.sessions_seen[link.id]:
                self.sessions_seen[link.id].append(session_id_from(location))
            return action, response.status, location
        if action == "pay":  # the parent pays the open session, while the others run
            await asyncio.sleep(0)
            for session_id in list(self.sessions_seen[link.id]):
                if self.emulator.sessions[session_id]["status"] == "open":
                    with contextlib.suppress(StripeError):
                        self.emulator.pay(session_id)
        elif action == "return":
            seen = self.sessions_seen[link.id]
            code = await self._return(link, seen[-1] if seen else "")
            return action, code, None
        elif action == "deliver":
            await self.emulator.deliver_webhooks()
        else:
            report = await self.h.app[RECONCILER].run()
            assert not report.errors, report
        return action, None, None

    @precondition(lambda self: any(self.sessions_seen.values()))
    @rule(data=st.data())
    def return_from_stripe(self, data: st.DataObject) -> None:
        """The success_url: the return page may record the payment itself (idempotently)."""
        link = data.draw(st.sampled_from([li for li in self.links if self.sessions_seen[li.id]]))
        session_id = data.draw(st.sampled_from(self.sessions_seen[link.id]), label="session")
        code = self.run(self._return(link, session_id))
        self.note_code(code, "the return page")
        assert code == 200, f"the return page answered {code}"

    async def _return(self, link: IssuedLink, session_id: str) -> int:
        response = await self.h.client.get(
            f"{self.h.path(link)}/return",
            params={"session_id": session_id},
            headers={"User-Agent": IPHONE_SAFARI},
            allow_redirects=False,
        )
        await response.read()
        return response.status

    # --- Stripe's side -------------------------------------------------------------------------

    @precondition(lambda self: any(self.sessions_seen.values()))
    @rule(data=st.data(), outcome=st.sampled_from(["paid", "async", "declined"]))
    def pay_newest_session(self, data: st.DataObject, outcome: str) -> None:
        """The payer pays the session the last click sent them to."""
        sessions = [seen[-1] for seen in self.sessions_seen.values() if seen]
        self._pay(data.draw(st.sampled_from(sessions), label="session"), outcome)

    @precondition(lambda self: any(self.sessions_seen.values()))
    @rule(data=st.data(), outcome=st.sampled_from(["paid", "async"]))
    def pay_any_session(self, data: st.DataObject, outcome: str) -> None:
        """An old tab: pay any session a payer was ever sent to (the duplicate payment case)."""
        sessions = [sid for seen in self.sessions_seen.values() for sid in seen]
        self._pay(data.draw(st.sampled_from(sessions), label="session"), outcome)

    def _pay(self, session_id: str, outcome: str) -> None:
        newest = any(seen and seen[-1] == session_id for seen in self.sessions_seen.values())
        try:
            self.emulator.pay(session_id, outcome=outcome)  # type: ignore[arg-type]
        except StripeError:  # no longer open (expired or already paid): Stripe's page says so
            event("pay: session not open")
        else:
            event(f"pay: {outcome} on {'newest' if newest else 'an old'} session")

    def _processing_sessions(self) -> list[str]:
        intents = self.emulator.payment_intents
        return sorted(
            sid
            for sid, s in self.emulator.sessions.items()
            if s.get("payment_intent") and intents[s["payment_intent"]]["status"] == "processing"
        )

    @precondition(lambda self: bool(self._processing_sessions()))
    @rule(data=st.data(), succeed=st.booleans())
    def settle_async_payment(self, data: st.DataObject, succeed: bool) -> None:
        session_id = data.draw(st.sampled_from(self._processing_sessions()), label="session")
        self.emulator.settle_async(session_id, succeed=succeed)

    def _refundable_intents(self) -> list[str]:
        return sorted(
            pi_id
            for pi_id, intent in self.emulator.payment_intents.items()
            if intent["status"] == "succeeded"
            and self.emulator.charges[intent["latest_charge"]]["amount_refunded"] == 0
        )

    @precondition(lambda self: bool(self._refundable_intents()))
    @rule(data=st.data())
    def refund_in_dashboard(self, data: st.DataObject) -> None:
        intent = data.draw(st.sampled_from(self._refundable_intents()), label="payment intent")
        self.emulator.refund_from_dashboard(intent)

    @rule(seconds=st.sampled_from(CLOCK_STEPS), sweep=st.booleans())
    def time_passes(self, seconds: int, sweep: bool) -> None:
        self.h.clock.advance(seconds)
        if sweep:  # otherwise Stripe expires sessions lazily, on the next API request
            self.emulator.expire_due_sessions()

    @rule(lose=st.integers(0, 2))
    def lose_next_webhooks(self, lose: int) -> None:
        self.emulator.faults.update({"lose_next_webhooks": lose})

    @rule(duplicate=st.booleans(), reorder=st.booleans())
    def deliver_webhooks(self, duplicate: bool, reorder: bool) -> None:
        self.emulator.faults.update({"duplicate_webhooks": duplicate, "reorder_webhooks": reorder})
        try:
            self.run(self.emulator.deliver_webhooks())
        finally:
            self.emulator.faults.update({"duplicate_webhooks": False, "reorder_webhooks": False})

    # --- the admin -----------------------------------------------------------------------------

    @rule(index=LINK, fault=st.sampled_from([None, None, *API_FAULTS]))
    def revoke(self, index: int, fault: str | None) -> None:
        link = self.link(index)
        if fault:
            self.emulator.faults.update({fault: 1})
        try:
            self.run(
                self.h.app[LINKS].revoke(
                    link.id, actor="admin:test", reason="test", provider=self.h.app[PAYMENTS]
                )
            )
        finally:
            self.clear_api_faults()

    @rule()
    def reconcile(self) -> None:
        """Invariant 4: once webhooks were delivered and reconcile ran, no payment is lost."""
        self.run(self.emulator.deliver_webhooks())
        report = self.run(self.h.app[RECONCILER].run())
        assert report.ran and not report.errors, report
        self.run(self.emulator.deliver_webhooks())
        if report.fixes:
            event("reconcile fixed something")
        world = self.run(self.read_world())
        by_session: dict[str, list[OrderRow]] = {}
        for order in world.orders.values():
            if order.session_id:
                by_session.setdefault(order.session_id, []).append(order)
        for session_id, stripe_session in self.emulator.sessions.items():
            if stripe_session["status"] != "complete":
                continue
            orders = by_session.get(session_id, [])
            assert len(orders) == 1, f"paid session {session_id} has orders {orders}"
            (order,) = orders
            if stripe_session["payment_status"] == "paid":
                assert order.status in ("paid", "refunded"), (
                    f"paid session {session_id} is order {order}"
                )
            else:  # an async payment still in flight, or one that failed
                assert order.status in ("processing", "failed"), (
                    f"unpaid complete session {session_id} is order {order}"
                )
        for order in world.orders.values():
            if order.status != "pending":
                continue
            # Settled: a pending order's session is still open at Stripe ...
            if order.session_id is not None:
                stripe_status = self.emulator.sessions[order.session_id]["status"]
                assert stripe_status == "open", f"pending {order} has a {stripe_status} session"
            # ... and a paid link keeps no other attempt open.
            statuses = {o.status for o in world.link_orders(order.link_id)}
            assert not statuses & BLOCKING, f"pending {order} on a link that is {statuses}"
        for link in self.links:
            paid = [
                o
                for o in world.link_orders(link.id)
                if o.status == "paid" and o.duplicate_of is None
            ]
            assert len(paid) <= 1, f"link {link.id} has several unflagged payments: {paid}"

    # --- invariants after every step -----------------------------------------------------------

    @invariant()
    def invariants_hold(self) -> None:
        if not self.links:
            return
        world = self.run(self.read_world())
        now_ts = self.h.clock.now()
        # 2. one pending order and one open Stripe session per link, at most.
        for link in self.links:
            pending = [o.id for o in world.link_orders(link.id) if o.status == "pending"]
            assert len(pending) <= 1, f"link {link.id} has pending orders {pending}"
            open_sessions = [
                sid
                for sid, s in self.emulator.sessions.items()
                if s["metadata"].get("link_id") == link.id
                and s["status"] == "open"
                and s["expires_at"] > now_ts
            ]
            assert len(open_sessions) <= 1, f"link {link.id} has open sessions {open_sessions}"
        # 5. nothing deleted, audit only grows, states only move forward.
        if self.world is not None:
            for order_id, old in self.world.orders.items():
                new = world.orders.get(order_id)
                assert new is not None, f"order {order_id} was deleted"
                assert new.status in FORWARD[old.status], (
                    f"order {order_id} went {old.status} -> {new.status}"
                )
            for entry_id, entry in self.world.audit.items():
                assert world.audit.get(entry_id) == entry, f"audit entry {entry_id} changed"
        for order in world.orders.values():
            assert any(entry[2] == order.id for entry in world.audit.values()), (
                f"order {order.id} has no audit trail"
            )
        statuses = {o.status for o in world.orders.values()}
        for status in statuses:
            event(f"an order {status}")
        if any(o.duplicate_of for o in world.orders.values()):
            event("a duplicate payment")
        # A flagged duplicate points at another payment of the same link, never at one that
        # failed (that would make the link's only payment a "duplicate", to be refunded).
        for order in world.orders.values():
            if order.duplicate_of is not None:
                original = world.orders.get(order.duplicate_of)
                assert original is not None and original.link_id == order.link_id, order
                if order.status in BLOCKING:
                    assert original.status in {"paid", "processing", "refunded"}, (
                        f"{order} is flagged a duplicate of {original}"
                    )
        # 6. no 500 anywhere, webhook deliveries included (503: "retry me later").
        for attempt in self.emulator.webhooks.attempts:
            assert attempt.error is None, attempt
            assert attempt.status in (200, 503), attempt
        self.world = world


def test_checkout_state_machine(template_db: Path, tmp_path: Path) -> None:
    CheckoutMachine.template = template_db
    CheckoutMachine.workdir = tmp_path
    run_state_machine_as_test(
        CheckoutMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
