"""docs/design.md §5 invariants 3, 4 and 5 across real crashes.

The gateway runs as ``gateway serve`` against the emulator running as its own process (so Stripe
outlives every crash, as it does in production). Thirty parents open their link, press Pay and
pay on the emulator, while failpoints SIGKILL the gateway — after an order was committed but
before Stripe was asked, after Stripe created the session but before it was saved, and while a
webhook was being applied — each life armed with another failpoint. A parent whose click died
just clicks again on the restarted gateway. After one ``gateway reconcile``: every payment is
exactly one paid order, no payable link answers 409 or an error, and nothing was deleted.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.crash.support import (
    Emulator,
    Gateway,
    GatewayDied,
    Link,
    Parents,
    assert_agrees,
    create_links,
    read_db,
    reconcile,
    scenario,
)
from tests.processes import run_cli

PARENTS = 30
# One failpoint per life, with a count that makes it fire in the middle of the run; the last
# life has none. Every entry before the last must fire, in this order (asserted).
LIVES = (
    "after_order_insert:4",
    "after_session_created:5",
    "during_webhook_apply:7",
    "after_order_insert:6",
    "",
)


def plan(i: int) -> str:
    """What parent ``i`` does on Stripe's page."""
    return {6: "paid+return", 7: "async-ok", 8: "async-fail", 9: "never"}.get(i % 10, "paid")


@dataclass(frozen=True)
class Kill:
    point: str
    exit_code: int
    detail: str


@dataclass
class CrashRun:
    gateway: Gateway
    emulator: Emulator
    parents: Parents
    database_url: str
    kills: list[Kill] = field(default_factory=list)
    order_ids_seen: set[str] = field(default_factory=set)
    audit_ids_seen: set[int] = field(default_factory=set)
    life: int = 0

    async def start_next_life(self) -> None:
        await self.gateway.start(failpoints=LIVES[self.life])
        self.life += 1

    async def remember(self) -> None:
        """Everything in the database now must still be there at the end."""
        state = await read_db(self.database_url)
        self.order_ids_seen |= {o["id"] for o in state.orders}
        self.audit_ids_seen |= state.audit_ids

    def armed(self) -> str:
        return self.gateway.failpoints.partition(":")[0]

    async def confirm_killed(self, point: str, detail: str) -> None:
        """The gateway died by SIGKILL from the failpoint this life armed; restart it."""
        assert self.armed() == point, f"died at {point!r} but {self.armed()!r} was armed"
        exit_code = self.gateway.wait_exit()
        assert exit_code == -signal.SIGKILL, (exit_code, self.gateway.logs())
        self.kills.append(Kill(point, exit_code, detail))
        await self.remember()
        await self.start_next_life()

    # --- a parent presses Pay, clicking again when the gateway died under them ---------------

    async def press_pay(self, link: Link) -> str:
        """Open the link, press Pay; returns the session the parent lands on."""
        opened = await self.parents.open(link)
        assert opened.status == 200, opened
        orders_before = (await read_db(self.database_url)).orders_of(link.id)
        try:
            pressed = await self.parents.press(link)
        except GatewayDied:
            interrupted = await self.check_click_died(link, orders_before)
            await self.confirm_killed(self.armed(), f"{link.ref}: {interrupted}")
            pressed = await self.parents.press(link)  # the parent just clicks again
            assert pressed.status == 303, pressed
            await self.check_click_resumed(link, interrupted, pressed.session_id)
        assert pressed.status == 303, pressed
        assert pressed.session_id is not None
        return pressed.session_id

    async def check_click_died(self, link: Link, orders_before: list[dict[str, object]]) -> str:
        """Evidence that the armed failpoint was reached: the order was committed (and, for
        ``after_session_created``, Stripe made its session), but no session was saved."""
        orders = (await read_db(self.database_url)).orders_of(link.id)
        new = [o for o in orders if o["id"] not in {b["id"] for b in orders_before}]
        assert len(new) == 1, (orders_before, orders)
        order = new[0]
        assert (order["status"], order["stripe_session_id"]) == ("pending", None), order
        made = [
            s for s in await self.emulator.sessions() if s["client_reference_id"] == order["id"]
        ]
        if self.armed() == "after_order_insert":
            assert made == [], "the order is committed before Stripe is called"
        else:
            assert self.armed() == "after_session_created", self.armed()
            assert [s["status"] for s in made] == ["open"], made
        return str(order["id"])

    async def check_click_resumed(self, link: Link, order_id: str, session_id: str | None) -> None:
        """The click again resumed the same attempt: no second order, and the session Stripe
        made for it before the crash (same idempotency key) rather than a new one."""
        orders = (await read_db(self.database_url)).orders_of(link.id)
        pending = [o for o in orders if o["status"] == "pending"]
        assert [o["id"] for o in pending] == [order_id], orders
        assert pending[0]["stripe_session_id"] == session_id
        made = [s for s in await self.emulator.sessions() if s["client_reference_id"] == order_id]
        assert [s["id"] for s in made] == [session_id], made

    # --- Stripe delivers webhooks when the test says so --------------------------------------

    async def deliver_webhooks(self) -> None:
        attempts = await self.emulator.deliver()
        failed = [a for a in attempts if not (a["status"] and 200 <= a["status"] < 300)]
        if not failed:
            assert self.gateway.alive()
            return
        # The only way a delivery fails here is the gateway dying while applying one.
        first = failed[0]
        assert first["status"] is None, first
        exit_code = self.gateway.wait_exit()
        inbox = {e["event_id"]: e for e in (await read_db(self.database_url)).webhook_events}
        # Received (committed) but the transaction applying it died with the process.
        assert inbox[first["event_id"]]["outcome"] == "received", inbox[first["event_id"]]
        assert exit_code == -signal.SIGKILL
        await self.confirm_killed("during_webhook_apply", f"event {first['event_id']}")
        again = await self.emulator.deliver()
        assert first["event_id"] in {a["event_id"] for a in again}
        assert all(a["status"] and 200 <= a["status"] < 300 for a in again), again
        inbox = {e["event_id"]: e for e in (await read_db(self.database_url)).webhook_events}
        assert inbox[first["event_id"]]["outcome"] in ("applied", "unchanged", "ignored")


async def run_crashes(database_url: str, tmp_path: Path) -> None:
    async with scenario(
        database_url,
        tmp_path,
        seed=20260401,
        emulator_args=["--webhook-retry-delays", ",".join(["0"] * 10)],
    ) as (gateway, emulator, parents):
        links = create_links(gateway.env, PARENTS, tmp_path, "crash")
        run = CrashRun(gateway, emulator, parents, database_url)
        await run.start_next_life()
        await drive(run, links)
        await check_outcome(run, links)


async def drive(run: CrashRun, links: list[Link]) -> None:
    sessions: dict[str, str] = {}
    for i, link in enumerate(links):
        session_id = await run.press_pay(link)
        sessions[link.id] = session_id
        match plan(i):
            case "paid" | "paid+return":
                await run.emulator.pay(session_id)
            case "async-ok" | "async-fail":
                await run.emulator.pay(session_id, "async")
        if plan(i) == "paid+return":
            back = await run.parents.come_back(link, session_id)
            assert back.status == 200, back
        if (i + 1) % 4 == 0:
            await run.deliver_webhooks()
    # The delayed payments arrive, or fail.
    for i, link in enumerate(links):
        if plan(i) in ("async-ok", "async-fail"):
            await run.emulator.settle(sessions[link.id], plan(i) == "async-ok")
    await run.deliver_webhooks()
    # A parent whose bank refused the delayed payment pays again: a new attempt, and this time
    # Stripe's webhooks are lost altogether: only the reconciler can find these payments.
    for i, link in enumerate(links):
        if plan(i) == "async-fail":
            again = await run.press_pay(link)
            assert again != sessions[link.id], "a failed attempt is never reused"
            await run.emulator.pay(again)
    await run.remember()


async def check_outcome(run: CrashRun, links: list[Link]) -> None:
    assert [k.point for k in run.kills] == [p.partition(":")[0] for p in LIVES if p], run.kills
    assert all(k.exit_code == -signal.SIGKILL for k in run.kills)

    report = reconcile(run.gateway.env)
    assert report["events_applied"], "the last payments' webhooks were never delivered"

    state = await read_db(run.database_url)
    sessions = await run.emulator.sessions()
    intents = await run.emulator.payment_intent_statuses(sessions)
    assert_agrees(state.orders, sessions, intents)

    # Every payment on Stripe is exactly one paid order, on the link it was for.
    paid_sessions = [s for s in sessions if s["payment_status"] == "paid"]
    expected_payers = [link for i, link in enumerate(links) if plan(i) != "never"]
    assert len(paid_sessions) == len(expected_payers)
    for link in links:
        paid = [o for o in state.orders_of(link.id) if o["status"] == "paid"]
        assert len(paid) == (link in expected_payers), (link, state.orders_of(link.id))
        assert all(o["duplicate_of"] is None for o in paid)
    assert not [o for o in state.orders if o["status"] == "processing"]

    # Every event the gateway ever received was applied in the end, even the one it died on.
    undone = [
        e for e in state.webhook_events if e["outcome"] not in ("applied", "unchanged", "ignored")
    ]
    assert not undone, undone

    # Nothing deleted: every order and audit entry ever seen is still there.
    assert run.order_ids_seen <= {o["id"] for o in state.orders}
    assert run.audit_ids_seen <= state.audit_ids

    # No payable link answers 409 or an error; a paid one answers "already paid".
    for i, link in enumerate(links):
        pressed = await run.parents.press(link)
        if plan(i) == "never":
            opened = await run.parents.open(link)
            assert (opened.status, pressed.status) == (200, 303), (opened, pressed)
        else:
            opened = await run.parents.open_until(link, 409)
            assert (opened.status, pressed.status) == (409, 409), (opened, pressed)
    # What parents saw all along: pages, redirects, "already paid"; never a server error.
    statuses = {(s.method, s.status) for s in run.parents.seen}
    assert statuses <= {
        ("GET", 200),
        ("GET", 409),
        ("POST", 303),
        ("POST", 409),
        ("RETURN", 200),
    }, statuses


@pytest.mark.slow
async def test_sigkill_at_each_step_loses_no_payment_and_strands_no_parent(
    database_url: str, tmp_path: Path
) -> None:
    await run_crashes(database_url, tmp_path)


async def revoke_after_a_crash_before_the_session_was_saved(
    database_url: str, tmp_path: Path
) -> None:
    async with scenario(database_url, tmp_path, seed=11) as (gateway, em, parents):
        [link] = create_links(gateway.env, 1, tmp_path, "revoke")
        await gateway.start(failpoints="after_session_created")
        with pytest.raises(GatewayDied):
            await parents.press(link)
        assert gateway.wait_exit() == -signal.SIGKILL
        [made] = await em.sessions()
        assert made["status"] == "open"
        # The parent gives up; the treasurer revokes the link.
        await gateway.start()
        revoked = run_cli(["links", "revoke", link.id, "--json"], gateway.env)
        assert revoked.returncode == 0, revoked.stderr
        reconcile(gateway.env)
        state = await read_db(database_url)
        sessions = await em.sessions()
        # Stripe's session for the revoked attempt must not stay open (payable).
        assert_agrees(state.orders, sessions, {})
        assert [s["status"] for s in sessions] == ["expired"]


@pytest.mark.slow
async def test_revoking_after_a_crash_before_the_session_was_saved_expires_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    await revoke_after_a_crash_before_the_session_was_saved(sqlite_url, tmp_path)
