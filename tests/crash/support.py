"""Real processes for the crash and fault tests: a gateway that can be SIGKILLed and restarted
on the same port, the emulator's control API, parents clicking over HTTP, and the one check
that matters at the end: the database agrees with Stripe (:func:`assert_agrees`)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import sqlalchemy as sa
from aiohttp.test_utils import unused_port

from gateway.adapters.db.engine import create_database
from gateway.adapters.db.models import AuditEntry, Order, WebhookEvent
from tests.harness import BROWSER_HEADERS, WEBHOOK_SECRET
from tests.processes import ROOT, EmulatorProcess, GatewayProcess, run_cli, wait_healthy

Obj = dict[str, Any]

SESSION_ID = re.compile(r"(cs_[A-Za-z0-9_]+)")
REFERENCE = re.compile(r"Reference: <code>([^<]+)</code>")


class GatewayDied(Exception):
    """A request lost its connection because the gateway process went away."""


# --- the gateway ------------------------------------------------------------------------------


class Gateway(GatewayProcess):
    """``gateway serve`` that a test kills (failpoints) and restarts on the same port, so the
    emulator's webhook URL and the links stay valid. Each life logs to its own file: a pipe
    nobody reads would block a gateway that logs a lot (every Stripe fault is a warning)."""

    def __init__(self, database_url: str, emulator_url: str, log_dir: Path, **extra: str) -> None:
        # The periodic reconciler must not run behind the test's back (or hold its lease).
        super().__init__(database_url, emulator_url, GATEWAY_RECONCILE_INTERVAL="1h", **extra)
        self.log_dir = log_dir
        self.lives = 0
        self.failpoints = ""

    async def start(self, timeout: float = 30.0, failpoints: str = "") -> None:
        assert self.process is None or self.process.poll() is not None, "still running"
        self.lives += 1
        self.failpoints = failpoints
        env = dict(self.env)
        if failpoints:
            env["GATEWAY_FAILPOINTS"] = failpoints
        with (self.log_dir / f"gateway-{self.lives}.log").open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        await wait_healthy(self.url, self.process, timeout)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_exit(self, timeout: float = 15.0) -> int:
        """The exit status of a gateway that is dying or dead (negative: killed by a signal)."""
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def logs(self) -> str:
        return "\n".join(
            f"--- life {n} ---\n"
            + (self.log_dir / f"gateway-{n}.log").read_text(errors="replace")[-3000:]
            for n in range(1, self.lives + 1)
        )


# --- the emulator's control API ---------------------------------------------------------------


class Emulator:
    """``/_emulator/`` over HTTP, plus the two ``/v1`` reads the checks need."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.http = session

    async def _call(self, method: str, path: str, body: Obj | None = None) -> Any:
        async with self.http.request(method, f"{self.url}{path}", json=body) as response:
            data = await response.json()
            if response.status != 200:
                raise AssertionError(f"{method} {path} -> {response.status}: {data}")
            return data

    async def state(self) -> Obj:
        data: Obj = await self._call("GET", "/_emulator/state")
        return data

    async def sessions(self) -> list[Obj]:
        data = await self._call("GET", "/_emulator/sessions")
        return list(data["data"])

    async def faults(self, **changes: Any) -> Obj:
        data: Obj = await self._call("POST", "/_emulator/faults", changes)
        return data

    async def clear_faults(self) -> None:
        await self.faults(
            latency=0,
            fail_next=0,
            error_rate=0,
            drop_next=0,
            drop_after_apply_next=0,
            paths=None,
            webhook_loss_rate=0,
            lose_next_webhooks=0,
            duplicate_webhooks=False,
            reorder_webhooks=False,
        )

    async def pay(self, session_id: str, outcome: str = "paid") -> Obj:
        data: Obj = await self._call(
            "POST", f"/_emulator/sessions/{session_id}/pay", {"outcome": outcome}
        )
        return data

    async def settle(self, session_id: str, succeed: bool) -> Obj:
        data: Obj = await self._call(
            "POST", f"/_emulator/payment_intents/{session_id}/settle", {"succeed": succeed}
        )
        return data

    async def deliver(self) -> list[Obj]:
        """Deliver every queued webhook now; returns the attempts this delivery made."""
        before = len((await self.webhooks())["attempts"])
        await self._call("POST", "/_emulator/webhooks/deliver")
        attempts: list[Obj] = (await self.webhooks())["attempts"]
        return attempts[before:]

    async def webhooks(self) -> Obj:
        data: Obj = await self._call("GET", "/_emulator/webhooks")
        return data

    async def payment_intent_statuses(self, sessions: Iterable[Obj]) -> dict[str, str]:
        statuses: dict[str, str] = {}
        headers = {"Authorization": "Bearer sk_test_checks"}
        for session in sessions:
            pi = session.get("payment_intent")
            if not pi:
                continue
            async with self.http.get(
                f"{self.url}/v1/payment_intents/{pi}", headers=headers
            ) as response:
                assert response.status == 200, await response.text()
                statuses[pi] = (await response.json())["status"]
        return statuses


# --- parents ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    id: str
    token: str
    ref: str


@dataclass(frozen=True)
class Seen:
    """One answer a parent's browser got."""

    link_id: str
    method: str
    status: int
    session_id: str | None = None
    reference: str | None = None


@dataclass
class Parents:
    """Phones with a real browser's headers, one connection per request (a restarted gateway
    must never be reached over a connection opened to the one that died)."""

    base_url: str
    http: aiohttp.ClientSession
    seen: list[Seen] = field(default_factory=list)

    async def _request(self, method: str, link: Link, path: str = "") -> tuple[int, str, Any]:
        url = f"{self.base_url}/pay/{link.token}{path}"
        try:
            async with self.http.request(
                method, url, headers=BROWSER_HEADERS, allow_redirects=False
            ) as response:
                return response.status, await response.text(), response.headers
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientConnectionError) as exc:
            raise GatewayDied(f"{method} {link.ref}: {type(exc).__name__}") from exc

    def _note(self, link: Link, method: str, status: int, body: str, headers: Any) -> Seen:
        session_id = reference = None
        if status == 303:
            match = SESSION_ID.search(headers.get("Location", ""))
            assert match, headers.get("Location")
            session_id = match[1]
        if status >= 500:
            match = REFERENCE.search(body)
            reference = match[1] if match else None
        seen = Seen(link.id, method, status, session_id, reference)
        self.seen.append(seen)
        return seen

    async def open(self, link: Link) -> Seen:
        status, body, headers = await self._request("GET", link)
        return self._note(link, "GET", status, body, headers)

    async def press(self, link: Link) -> Seen:
        status, body, headers = await self._request("POST", link)
        seen = self._note(link, "POST", status, body, headers)
        if status == 503:
            assert headers.get("Retry-After"), "a 503 page must say when to come back"
        return seen

    async def open_until(self, link: Link, status: int, timeout: float = 5.0) -> Seen:
        """GET until it answers ``status``. A GET may be answered from a snapshot up to a
        second old (docs/design.md §8), so a change made by another process (the reconciler) shows
        within that bound; POST decisions are always fresh and are checked without waiting."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            seen = await self.open(link)
            if seen.status == status or loop.time() > deadline:
                return seen
            await asyncio.sleep(0.1)

    async def come_back(self, link: Link, session_id: str) -> Seen:
        status, body, headers = await self._request("GET", link, f"/return?session_id={session_id}")
        return self._note(link, "RETURN", status, body, headers)


def parents_http() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(force_close=True),
        timeout=aiohttp.ClientTimeout(total=60),
    )


# --- the whole scene ---------------------------------------------------------------------------


class Scenario(NamedTuple):
    gateway: Gateway
    emulator: Emulator
    parents: Parents


@asynccontextmanager
async def scenario(
    database_url: str,
    log_dir: Path,
    *,
    seed: int,
    emulator_args: Sequence[str] = (),
    **gateway_env: str,
) -> AsyncIterator[Scenario]:
    """The emulator as its own process (seeded, holding every webhook until the test delivers
    them), a gateway pointed at it but not started yet (each test starts it, with or without
    failpoints), and the parents' and the control API's HTTP clients. Both processes are
    stopped at the end, whatever happened."""
    emulator_port = unused_port()
    gateway = Gateway(database_url, f"http://127.0.0.1:{emulator_port}", log_dir, **gateway_env)
    emulator = EmulatorProcess(
        "--webhook-url",
        f"{gateway.url}/stripe/webhook",
        "--webhook-secret",
        WEBHOOK_SECRET,
        "--seed",
        str(seed),
        *emulator_args,
        port=emulator_port,
        webhook_mode="manual",
    )
    await emulator.start()
    try:
        async with parents_http() as http, aiohttp.ClientSession() as control:
            yield Scenario(gateway, Emulator(emulator.url, control), Parents(gateway.url, http))
    finally:
        gateway.stop()
        emulator.stop()


# --- admin side -------------------------------------------------------------------------------


def create_links(env: Mapping[str, str], count: int, workdir: Path, prefix: str) -> list[Link]:
    """``gateway links bulk --json``: one process for all links (one per CLI call is slow)."""
    rows = ["email,name,ref,items"] + [
        f"parent{i}@example.com,Parent {i},{prefix}/{i:02d},Season fee={100 + i}.00"
        for i in range(count)
    ]
    csv = workdir / f"{prefix}.csv"
    csv.write_text("\n".join(rows) + "\n")
    done = run_cli(["links", "bulk", str(csv), "--json"], env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["created"] == count, report
    return [Link(row["id"], row["url"].rsplit("/pay/", 1)[1], row["ref"]) for row in report["rows"]]


def reconcile(env: Mapping[str, str]) -> Obj:
    done = run_cli(["reconcile", "--json"], env)
    assert done.returncode == 0, f"reconcile failed: {done.stdout}\n{done.stderr}"
    report: Obj = json.loads(done.stdout)
    assert report["ran"] and not report["errors"], report
    return report


# --- the database, read directly --------------------------------------------------------------


@dataclass(frozen=True)
class DbState:
    orders: list[Obj]
    webhook_events: list[Obj]
    audit_ids: set[int]

    def orders_of(self, link_id: str) -> list[Obj]:
        return sorted(
            (o for o in self.orders if o["link_id"] == link_id),
            key=lambda o: (o["created_at"], o["id"]),
        )


def _row(obj: Any, columns: Sequence[str]) -> Obj:
    return {name: getattr(obj, name) for name in columns}


async def read_db(database_url: str) -> DbState:
    db = create_database(database_url)
    try:
        async with db.read() as session:
            orders = (await session.execute(sa.select(Order))).scalars().all()
            events = (await session.execute(sa.select(WebhookEvent))).scalars().all()
            audit_ids = set((await session.execute(sa.select(AuditEntry.id))).scalars().all())
    finally:
        await db.dispose()
    order_columns = [c.key for c in Order.__table__.columns]
    event_columns = [c.key for c in WebhookEvent.__table__.columns]
    return DbState(
        [_row(o, order_columns) for o in orders],
        [_row(e, event_columns) for e in events],
        audit_ids,
    )


# --- the database agrees with Stripe ----------------------------------------------------------

PAYMENT_STATUSES = ("paid", "processing", "refunded")
CANCEL_REASONS = ("stale", "superseded", "revoked", "admin")


def expected_statuses(session: Obj, intent_statuses: Mapping[str, str]) -> set[str]:
    """The order statuses that agree with what Stripe says about the order's session."""
    status, payment_status = session["status"], session["payment_status"]
    if status == "open":
        return {"pending"}  # an open session whose order is over could be paid twice
    if status == "expired":
        # Expired by Stripe (its own clock): expired. Expired by the gateway itself because the
        # attempt was replaced, superseded or revoked: canceled, with that reason.
        return {"expired", "canceled"}
    assert status == "complete", session
    if payment_status == "paid":
        return {"paid"}
    intent = intent_statuses.get(session.get("payment_intent") or "")
    if intent == "processing":
        return {"processing"}
    if intent in ("requires_payment_method", "canceled"):
        return {"failed"}
    raise AssertionError(f"complete, unpaid session with payment intent {intent}: {session}")


def agreement_problems(
    orders: Sequence[Obj], sessions: Sequence[Obj], intent_statuses: Mapping[str, str]
) -> list[str]:
    problems: list[str] = []
    by_id = {o["id"]: o for o in orders}
    session_ids = {s["id"] for s in sessions}
    sessions_of_order: Counter[str] = Counter()
    open_sessions_of_link: Counter[str] = Counter()
    for s in sessions:
        order_id = s.get("client_reference_id") or ""
        sessions_of_order[order_id] += 1
        if s["status"] == "open":
            open_sessions_of_link[(s.get("metadata") or {}).get("link_id", "?")] += 1
        order = by_id.get(order_id)
        where = f"session {s['id']} ({s['status']}/{s['payment_status']})"
        if order is None:
            problems.append(f"{where}: no order {order_id!r} in the database")
            continue
        if (s.get("metadata") or {}).get("order_id") != order_id:
            problems.append(f"{where}: metadata names another order than {order_id}")
        if order["stripe_session_id"] != s["id"]:
            problems.append(
                f"{where}: its order {order_id} stores session {order['stripe_session_id']}"
            )
        expected = expected_statuses(s, intent_statuses)
        if order["status"] not in expected:
            problems.append(
                f"{where}: order {order_id} is {order['status']}, expected {sorted(expected)}"
            )
        if order["status"] == "canceled" and order["cancel_reason"] not in CANCEL_REASONS:
            problems.append(f"{where}: order {order_id} canceled without a known reason")
        if order["status"] == "paid" and order["paid_at"] is None:
            problems.append(f"{where}: order {order_id} paid without paid_at")
        if s["status"] == "complete" and order["payment_intent_id"] != s["payment_intent"]:
            problems.append(f"{where}: order {order_id} lacks payment intent {s['payment_intent']}")
    for order_id, count in sessions_of_order.items():
        if count > 1:
            problems.append(f"order {order_id} has {count} Stripe sessions (one attempt, one key)")
    for link_id, count in open_sessions_of_link.items():
        if count > 1:
            problems.append(f"link {link_id} has {count} open sessions: it could be paid twice")
    orders_of_link: defaultdict[str, list[Obj]] = defaultdict(list)
    for o in orders:
        orders_of_link[o["link_id"]].append(o)
        session_id = o["stripe_session_id"]
        if session_id and session_id not in session_ids:
            problems.append(f"order {o['id']} ({o['status']}) names unknown session {session_id}")
        if not session_id:
            if o["id"] in sessions_of_order:
                continue  # reported above: Stripe has its session, the database lost it
            if o["status"] not in ("pending", "canceled"):
                problems.append(f"order {o['id']} is {o['status']} without any session")
    for link_id, its in orders_of_link.items():
        pending = [o["id"] for o in its if o["status"] == "pending"]
        if len(pending) > 1:
            problems.append(f"link {link_id} has {len(pending)} pending orders: {pending}")
        payments = [o for o in its if o["status"] in PAYMENT_STATUSES]
        originals = [o["id"] for o in payments if not o["duplicate_of"]]
        if len(originals) > 1:
            problems.append(f"link {link_id} paid by {originals}, none flagged as duplicate")
        for o in payments:
            if o["duplicate_of"] and o["duplicate_of"] not in originals:
                problems.append(
                    f"order {o['id']} is a duplicate of {o['duplicate_of']}, which is not the "
                    f"link's payment {originals}"
                )
    return problems


def assert_agrees(
    orders: Sequence[Obj], emulator_sessions: Sequence[Obj], intent_statuses: Mapping[str, str]
) -> None:
    """The database and Stripe tell the same story, exactly:

    - every session maps to one order (``client_reference_id``) that stores that session;
    - complete + paid ↔ the order is paid (the link's payment, or flagged ``duplicate_of`` it);
    - complete + unpaid ↔ processing while the payment intent is processing, failed once it
      failed; expired ↔ expired (by Stripe) or canceled with a reason (by the gateway);
      open ↔ pending;
    - no order names a session Stripe does not have; an order without a session is pending or
      canceled (nothing happened at Stripe);
    - per link: at most one pending order, at most one open session, one payment at most that
      is not flagged as a duplicate.
    """
    problems = agreement_problems(orders, emulator_sessions, intent_statuses)
    assert not problems, "database and Stripe disagree:\n  " + "\n  ".join(problems)
