"""Webhook deliveries for the benchmark: real events, replayed with distinct ids, signed fresh.

The gateway's own links are pressed once (so each has a Checkout Session the gateway created),
then paid, settled, refunded or expired in the Stripe emulator, which logs the events Stripe would
send (``checkout.session.completed``, ``...async_payment_succeeded/failed``, ``...expired``,
``charge.refunded``). Those events are the templates. :func:`prime` delivers each one once, in
the order it happened (these first copies apply the transitions); then each wrk run POSTs copies
of them to
``/stripe/webhook``, each copy with an event id of its own and a ``Stripe-Signature`` made right
before the run (HMAC-SHA256 over ``"{t}.{body}"`` with the webhook secret, as Stripe signs), so
the 5-minute tolerance holds. Each wrk thread walks its own share of the events, so no id is sent
twice unless a thread runs out (counted, and reported as fewer distinct events).

After the runs the inbox (``webhook_events``) is read from the SQLite file: for each run it must
hold exactly one row per distinct event id that was answered, each done (applied, unchanged or
ignored), and no id that was never sent.

The first-delivery row (:func:`make_first_batch`, :func:`write_first_deliveries`,
:func:`check_first`) moves fresh sessions on the same way but delivers none of their events
beforehand: each real event is sent once, in the timed run, a session's events in the order they
happened, so every one applies a transition. Its check reads the inbox and the orders.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from _support import WRK_MARKER, WrkResult

HANDLED_TYPES = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "charge.refunded",
)
DONE = ("applied", "unchanged", "ignored")
PLACEHOLDER = "evt_BENCH_PLACEHOLDER"


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """``Stripe-Signature``: ``t=...,v1=hex(HMAC-SHA256(secret, "{t}." + body))``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


# --- templates ----------------------------------------------------------------------------------

BROWSER = {"Origin": "null", "User-Agent": "Mozilla/5.0 (iPhone) Mobile/15E148 Safari/604.1"}
# The order status each session should end in, from the emulator's own objects afterwards.
EXPECTED_STATES = ("paid", "refunded", "processing", "failed", "expired", "pending")


async def _gather_limited(concurrency: int, jobs: Sequence[Any]) -> list[Any]:
    """Await the coroutines with at most ``concurrency`` running at once; results in order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Any) -> Any:
        async with gate:
            return await job

    return list(await asyncio.gather(*(one(job) for job in jobs)))


class _Emulator:
    """The few calls the benchmark makes to the Stripe emulator."""

    def __init__(self, http: aiohttp.ClientSession, url: str, api_key: str) -> None:
        self.http = http
        self.url = url
        self.auth = {"Authorization": f"Bearer {api_key}"}

    async def control(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        # The control API takes JSON; the Stripe API (/v1) takes a form, as Stripe does.
        payload: dict[str, Any] = {"data": {}} if path.startswith("/v1/") else {"json": body or {}}
        async with self.http.post(f"{self.url}{path}", headers=self.auth, **payload) as resp:
            data: dict[str, Any] = await resp.json()
            if resp.status != 200:
                raise RuntimeError(f"emulator {path}: {resp.status} {data}")
            return data

    async def get(self, path: str, params: Any = None) -> dict[str, Any]:
        async with self.http.get(f"{self.url}{path}", params=params, headers=self.auth) as resp:
            data: dict[str, Any] = await resp.json()
            if resp.status != 200:
                raise RuntimeError(f"emulator {path}: {resp.status} {data}")
            return data

    async def move(self, i: int, session_id: str) -> None:
        """Move one session on as Stripe would, by its position: of every 20, 8 paid, 2 paid
        then refunded, 3 paid later and settled, 1 paid later and failed, 6 expired."""
        kind = i % 20
        if kind < 10:
            paid = await self.control(f"/_emulator/sessions/{session_id}/pay")
            if kind < 2:
                await self.control(f"/_emulator/payment_intents/{paid['payment_intent']}/refund")
        elif kind < 14:
            await self.control(f"/_emulator/sessions/{session_id}/pay", {"outcome": "async"})
            succeed = kind < 13
            await self.control(
                f"/_emulator/payment_intents/{session_id}/settle", {"succeed": succeed}
            )
        else:
            await self.control(f"/v1/checkout/sessions/{session_id}/expire")

    async def sessions(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        data = (await self.get("/_emulator/sessions"))["data"]
        return {s["id"]: s for s in data if s["id"] in ids}

    async def events(self, sessions: set[str], payment_intents: set[str]) -> list[dict[str, Any]]:
        """The handled events about these sessions (or their payments), oldest first."""
        events: list[dict[str, Any]] = []
        after: str | None = None
        types = [(f"types[{i}]", t) for i, t in enumerate(HANDLED_TYPES)]
        while True:
            params = [("limit", "100"), *types, *([("starting_after", after)] if after else [])]
            page = await self.get("/v1/events", params)
            for event in page["data"]:
                obj = event["data"]["object"]
                if obj.get("object") == "checkout.session":
                    ours = obj.get("id") in sessions
                else:
                    ours = obj.get("payment_intent") in payment_intents
                if ours:
                    events.append(event)
            if not page.get("has_more") or not page["data"]:
                break
            after = page["data"][-1]["id"]
        # The list comes newest first, as Stripe lists; return them in the order they happened,
        # so that (say) a session's async_payment_succeeded never comes before its completed.
        events.reverse()
        return events

    async def expected_state(self, session: dict[str, Any]) -> str:
        """The order status the emulator's objects imply for this session."""
        if session["status"] == "expired":
            return "expired"
        if session["status"] != "complete" or not session.get("payment_intent"):
            return "pending"
        intent = await self.get(f"/v1/payment_intents/{session['payment_intent']}")
        if intent["status"] == "processing":
            return "processing"
        if intent["status"] != "succeeded":
            return "failed"
        charge = await self.get(f"/v1/charges/{intent['latest_charge']}")
        return "refunded" if charge.get("refunded") else "paid"


async def _press(
    http: aiohttp.ClientSession, base: str, tokens: Sequence[str], concurrency: int
) -> list[str]:
    """Press Pay once on each link; the Checkout Session ids, in link order."""

    async def press(token: str) -> str:
        async with http.post(f"{base}/pay/{token}", headers=BROWSER, allow_redirects=False) as r:
            if r.status != 303:
                raise RuntimeError(f"webhook links: POST /pay answered {r.status}")
            return str(r.headers["Location"]).rstrip("/").rsplit("/", 1)[-1]

    return await _gather_limited(concurrency, [press(t) for t in tokens])


async def _sessions_and_events(
    base: str, emulator: str, api_key: str, tokens: Sequence[str], concurrency: int
) -> tuple[list[str], dict[str, dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        stripe = _Emulator(http, emulator, api_key)
        sessions = await _press(http, base, tokens, concurrency)
        await _gather_limited(concurrency, [stripe.move(i, s) for i, s in enumerate(sessions)])
        state = await stripe.sessions(set(sessions))
        intents = {s["payment_intent"] for s in state.values() if s.get("payment_intent")}
        events = await stripe.events(set(sessions), intents)
        expected = await _gather_limited(
            concurrency, [stripe.expected_state(state[s]) for s in sessions]
        )
    if not events:
        raise RuntimeError("the emulator logged no events for the webhook links")
    return sessions, state, events, dict(zip(sessions, expected, strict=True))


async def make_templates(
    base: str, emulator: str, api_key: str, tokens: Sequence[str], concurrency: int = 16
) -> list[dict[str, Any]]:
    """Press Pay on each link, then move each session on in the emulator; return its events."""
    _, _, events, _ = await _sessions_and_events(base, emulator, api_key, tokens, concurrency)
    events.sort(key=lambda e: e["created"])  # stable: the same second keeps the log's order
    return events


async def prime(
    base: str, templates: Sequence[dict[str, Any]], *, prefix: str, secret: str
) -> dict[str, Any]:
    """Deliver each template once, in order, one at a time: these first copies are the ones that
    apply a transition (later copies change nothing). Returns the statuses, the outcomes the
    gateway reported and the mean time per event."""
    statuses: Counter[int] = Counter()
    outcomes: Counter[str] = Counter()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    started = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        for n, template in enumerate(templates):
            body = json.dumps(dict(template, id=f"{prefix}{n:07d}"), indent=2).encode()
            headers["Stripe-Signature"] = sign(body, secret, int(time.time()))
            async with http.post(f"{base}/stripe/webhook", data=body, headers=headers) as resp:
                statuses[resp.status] += 1
                if resp.status == 200:
                    outcomes[(await resp.json()).get("outcome", "?")] += 1
    elapsed = time.perf_counter() - started
    return {
        "events": len(templates),
        "statuses": dict(statuses),
        "outcomes": dict(outcomes),
        "mean_ms": elapsed * 1000 / max(1, len(templates)),
    }


# --- the signed deliveries ----------------------------------------------------------------------


@dataclass
class Deliveries:
    """One wrk run's events: the Lua script, the id prefix, how many."""

    prefix: str
    count: int
    script: Path
    types: Counter[str] = field(default_factory=Counter)


def write_deliveries(
    path: Path,
    templates: Sequence[dict[str, Any]],
    *,
    prefix: str,
    count: int,
    secret: str,
    threads: int,
) -> Deliveries:
    """Sign ``count`` copies of the templates (ids ``{prefix}{n}``) now, into a wrk Lua script."""
    # Serialise each template once (pretty-printed, as Stripe sends), then only swap the id in.
    bodies = []
    for template in templates:
        event = dict(template, id=PLACEHOLDER)
        bodies.append(json.dumps(event, indent=2))
    now = int(time.time())
    types: Counter[str] = Counter()
    data = path.with_suffix(".events")
    # Too many events for Lua constants: a data file, each event as a line "signature<TAB>n"
    # followed by the n bytes of its body; every wrk thread reads it and keeps its share.
    with data.open("wb") as out:
        for n in range(count):
            k = n % len(bodies)
            body = bodies[k].replace(PLACEHOLDER, f"{prefix}{n:07d}", 1).encode()
            types[templates[k]["type"]] += 1
            out.write(f"{sign(body, secret, now)}\t{len(body)}\n".encode() + body)
    path.write_text(
        _LUA.replace("%EVENTS%", json.dumps(str(data))).replace("%THREADS%", str(threads))
    )
    return Deliveries(prefix, count, path, types)


_LUA = (
    """-- generated by bench/webhooks.py: signed Stripe events, each thread its own share
local events_file = %EVENTS%
local nthreads = %THREADS%
local reqs = {}
local n = 0
local idx = 0
local threads = {}
local created = 0
statuses = {}
sent = 0
wrapped = 0
share = 0

function setup(thread)
  created = created + 1
  thread:set("tid", created)
  table.insert(threads, thread)
end

function init(args)
  local h = {
    ["Content-Type"] = "application/json; charset=utf-8",
    ["User-Agent"] = "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
  }
  local f = assert(io.open(events_file, "rb"))
  local i = 0
  while true do
    local head = f:read("*l")
    if not head then break end
    local sig, len = head:match("^([^\t]+)\t(%d+)$")
    len = tonumber(len)
    if i % nthreads == tid - 1 then
      h["Stripe-Signature"] = sig
      n = n + 1
      reqs[n] = wrk.format("POST", "/stripe/webhook", h, f:read(len))
    else
      f:seek("cur", len)
    end
    i = i + 1
  end
  f:close()
  share = n
end

function request()
  idx = idx + 1
  if idx > n then idx = 1; wrapped = wrapped + 1 end
  sent = sent + 1
  return reqs[idx]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  local per = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    local answered = 0
    for code, count in pairs(s) do
      counts[code] = (counts[code] or 0) + count
      answered = answered + count
    end
    table.insert(per, string.format('[%d, %d, %d]', thread:get("share"), thread:get("sent"),
      answered))
  end
  local parts = {}
  for code, count in pairs(counts) do
    table.insert(parts, string.format('"%d": %d', code, count))
  end
  local e = summary.errors
  io.write(string.format(
    '"""
    + WRK_MARKER
    + """{"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "statuses": {%s}, '
      .. '"threads": [%s]}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(parts, ", "), table.concat(per, ", ")))
end
"""
)


# --- first deliveries: every event changes something ------------------------------------------

FIRST_TYPES = ("checkout.session.completed", "checkout.session.expired")
APPLIED = ("applied", "ignored")


@dataclass
class FirstBatch:
    """One timed run's first deliveries: sessions moved on in the emulator, none of their events
    delivered yet. ``chains`` holds each session's events in the order they happened."""

    label: str
    sessions: list[str]
    chains: list[list[dict[str, Any]]]
    expected: dict[str, str]  # session id -> the order status the emulator's objects imply

    @property
    def events(self) -> int:
        return sum(len(chain) for chain in self.chains)

    def types(self) -> dict[str, int]:
        return dict(Counter(e["type"] for chain in self.chains for e in chain))

    def event_ids(self) -> list[str]:
        return [e["id"] for chain in self.chains for e in chain]


async def make_first_batch(
    base: str,
    emulator: str,
    api_key: str,
    tokens: Sequence[str],
    label: str,
    concurrency: int = 16,
) -> FirstBatch:
    """Press Pay on each link and move its session on in the emulator, exactly as for the
    templates; keep each session's events (real ids, as logged) without delivering any."""
    sessions, state, events, expected = await _sessions_and_events(
        base, emulator, api_key, tokens, concurrency
    )
    by_intent = {s["payment_intent"]: k for k, s in state.items() if s.get("payment_intent")}
    chains: dict[str, list[dict[str, Any]]] = {s: [] for s in sessions}
    for event in events:
        obj = event["data"]["object"]
        if obj.get("object") == "checkout.session":
            chains[obj["id"]].append(event)
        else:
            chains[by_intent[obj["payment_intent"]]].append(event)
    for session_id, chain in chains.items():
        if not chain or chain[0]["type"] not in FIRST_TYPES:
            raise RuntimeError(
                f"webhook first deliveries: session {session_id} has events "
                f"{[e['type'] for e in chain]}"
            )
    return FirstBatch(label, sessions, [chains[s] for s in sessions], expected)


@dataclass
class FirstRun:
    """The files of one timed run of first deliveries."""

    batch: FirstBatch
    script: Path
    data: list[Path]
    per_thread: list[int]


def write_first_deliveries(path: Path, batch: FirstBatch, *, secret: str, threads: int) -> FirstRun:
    """Sign every event of the batch now (its own id, as the emulator logged it) into one data
    file per wrk thread, and write the Lua script that sends them.

    A session's events all go to one thread (session ``k`` to thread ``k % threads``). In its
    file, the first event of every session comes first (sessions with a second event before the
    others, so the second events are released early), then the later events, each line naming its
    successor. The script starts with the first events only and queues an event when the answer
    to its predecessor came back 200: ``X-Request-Id`` is echoed by the gateway, so the thread
    knows which of its requests was answered. No event is sent before the one it follows has been
    applied, whatever the connections do, so no ``not_yet_applicable`` can come from the order.
    """
    stem = path.with_suffix("")
    per_thread: list[list[list[dict[str, Any]]]] = [[] for _ in range(threads)]
    for k, chain in enumerate(batch.chains):
        per_thread[k % threads].append(chain)
    now = int(time.time())
    files = []
    counts = []
    for t, chains in enumerate(per_thread, start=1):
        chains = sorted(chains, key=lambda c: len(c) == 1)  # stable: longer chains first
        heads = [c[0] for c in chains]
        later: list[dict[str, Any]] = []
        successor: dict[int, int] = {}  # position -> position of the next event of its session
        for h, chain in enumerate(chains, start=1):
            at = h
            for event in chain[1:]:
                later.append(event)
                successor[at] = at = len(heads) + len(later)
        data = Path(f"{stem}.t{t}.events")
        with data.open("wb") as out:
            for n, event in enumerate(heads + later, start=1):
                body = json.dumps(event, indent=2).encode()
                head = f"{sign(body, secret, now)}\t{len(body)}\t{successor.get(n, 0)}"
                out.write(f"{head}\t{int(n <= len(heads))}\n".encode() + body)
        files.append(data)
        counts.append(len(heads) + len(later))
    path.write_text(
        _FIRST_LUA.replace("%STEM%", json.dumps(str(stem)))
        .replace("%THREADS%", str(threads))
        .replace("%MARKER%", WRK_MARKER)
    )
    return FirstRun(batch, path, files, counts)


_FIRST_LUA = r"""-- generated by bench/webhooks.py: first deliveries, a session's events in order
-- Each thread reads <stem>.t<tid>.events: lines "signature<TAB>length<TAB>next<TAB>head" and
-- the body. It sends the heads first; the next event of a session is queued when the answer to
-- its predecessor (recognised by the echoed X-Request-Id) came back 200. With nothing to send, a
-- connection gets an empty request and stays idle. When all of a thread's events are answered
-- it stops; the last thread to stop interrupts wrk's main thread (SIGINT), so the run ends when
-- the events run out instead of at -d. The rate uses the span from the first request written to
-- the last answer read (CLOCK_MONOTONIC), so idle time cannot dilute it either way.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec_t;
int clock_gettime(int clk_id, bench_timespec_t *tp);
int getpid(void);
long syscall(long number, ...);
]]
local stem = %STEM%
local nthreads = %THREADS%
local ts = ffi.new("bench_timespec_t")
local function now_us()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end
local TGKILL = ({x64 = 234, arm64 = 131})[ffi.arch]

local reqs, nexts = {}, {}
local queue, qhead, qtail = {}, 1, 0
local threads = {}
local created = 0
local verified = false
local finished = false
statuses = {}
outcomes = {}
share, sent, answered, skipped, waiting, unknown = 0, 0, 0, 0, 0, 0
t_first, t_last = 0, 0

function setup(thread)
  created = created + 1
  thread:set("tid", created)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(stem .. ".t" .. tid .. ".events", "rb"))
  local h = {
    ["Content-Type"] = "application/json; charset=utf-8",
    ["User-Agent"] = "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
  }
  while true do
    local line = f:read("*l")
    if not line then break end
    local sig, len, nx, head = line:match("^([^\t]+)\t(%d+)\t(%d+)\t(%d)$")
    share = share + 1
    h["Stripe-Signature"] = sig
    h["X-Request-Id"] = "bench" .. share
    reqs[share] = wrk.format("POST", "/stripe/webhook", h, f:read(tonumber(len)))
    nexts[share] = tonumber(nx)
    if head == "1" then qtail = qtail + 1; queue[qtail] = share end
  end
  f:close()
  -- wrk calls request() once on the first thread's state to check the script, before it
  -- runs: that call must not use up an event.
  verified = tid ~= 1
end

local function finish()
  if finished then return end
  finished = true
  wrk.thread:stop()
  local mark = assert(io.open(stem .. ".t" .. tid .. ".done", "w"))
  mark:close()
  for k = 1, nthreads do
    local other = io.open(stem .. ".t" .. k .. ".done", "r")
    if not other then return end
    other:close()
  end
  if TGKILL then
    local pid = ffi.C.getpid()  -- the main thread's id is the process id
    ffi.C.syscall(TGKILL, ffi.cast("long", pid), ffi.cast("long", pid), ffi.cast("long", 2))
  end
end

function request()
  if not verified then
    verified = true
    return reqs[queue[qhead]] or wrk.format("GET", "/healthz")
  end
  if qhead > qtail then
    if sent + skipped < share then waiting = waiting + 1 end
    if answered + skipped >= share then finish() end
    return ""
  end
  local i = queue[qhead]
  queue[qhead] = nil
  qhead = qhead + 1
  if sent == 0 then t_first = now_us() end
  sent = sent + 1
  return reqs[i]
end

function response(status, headers, body)
  t_last = now_us()
  answered = answered + 1
  statuses[status] = (statuses[status] or 0) + 1
  local o = body:match('"outcome": ?"([%w_]+)"') or body:match('"code": ?"([%w_]+)"')
  o = o or ("http " .. status)
  outcomes[o] = (outcomes[o] or 0) + 1
  local id = headers["X-Request-Id"]
  local i = id and tonumber(id:match("^bench(%d+)$"))
  if i and reqs[i] then
    local nx = nexts[i]
    if nx > 0 then
      if status == 200 then
        qhead = qhead - 1
        queue[qhead] = nx  -- next in line: a session's later event goes first
      else
        while nx > 0 do skipped = skipped + 1; nx = nexts[nx] end
      end
    end
  else
    unknown = unknown + 1
  end
  if answered + skipped >= share then finish() end
end

function done(summary, latency, requests)
  local counts, outs, per = {}, {}, {}
  local first, last = nil, 0
  for _, thread in ipairs(threads) do
    for code, count in pairs(thread:get("statuses")) do
      counts[code] = (counts[code] or 0) + count
    end
    for o, count in pairs(thread:get("outcomes")) do outs[o] = (outs[o] or 0) + count end
    local tf, tl = thread:get("t_first"), thread:get("t_last")
    if thread:get("sent") > 0 and (first == nil or tf < first) then first = tf end
    if tl > last then last = tl end
    table.insert(per, string.format("[%d, %d, %d, %d, %d, %d]", thread:get("share"),
      thread:get("sent"), thread:get("answered"), thread:get("skipped"), thread:get("waiting"),
      thread:get("unknown")))
  end
  local parts, oparts = {}, {}
  for code, count in pairs(counts) do
    table.insert(parts, string.format('"%d": %d', code, count))
  end
  for o, count in pairs(outs) do table.insert(oparts, string.format('"%s": %d', o, count)) end
  local e = summary.errors
  io.write(string.format(
    '%MARKER%{"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "statuses": {%s}, '
      .. '"outcomes": {%s}, "span_us": %d, "threads": [%s]}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(parts, ", "), table.concat(oparts, ", "),
    first and (last - first) or 0, table.concat(per, ", ")))
end
"""


@dataclass
class FirstCheck:
    """What the inbox and the orders say after one run of first deliveries."""

    label: str
    events: int
    answered: int
    inbox_rows: int
    inbox_outcomes: dict[str, int]
    redelivered: int  # inbox rows with more than one attempt
    expected_orders: dict[str, int]
    orders: dict[str, int]
    mismatched_orders: int

    @property
    def ok(self) -> bool:
        """Every event answered once, in the inbox once as applied (or ignored), and every order
        in the state the emulator's objects imply."""
        return (
            self.answered == self.events
            and self.inbox_rows == self.events
            and self.redelivered == 0
            and sum(n for o, n in self.inbox_outcomes.items() if o in APPLIED) == self.events
            and self.mismatched_orders == 0
        )


def _chunks(items: Sequence[str], size: int = 500) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def check_first(db_path: Path, run: FirstRun, result: WrkResult) -> FirstCheck:
    """Read the batch's events from the inbox and its sessions' orders, straight from SQLite."""
    batch = run.batch
    ids = batch.event_ids()
    outcomes: Counter[str] = Counter()
    rows = redelivered = 0
    actual: dict[str, str] = {}
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30) as db:
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            query = f"SELECT outcome, attempts FROM webhook_events WHERE event_id IN ({marks})"  # noqa: S608
            for outcome, attempts in db.execute(query, list(chunk)):
                rows += 1
                outcomes[outcome] += 1
                redelivered += attempts != 1
        for chunk in _chunks(batch.sessions):
            marks = ",".join("?" * len(chunk))
            query = (
                f"SELECT stripe_session_id, status FROM orders WHERE stripe_session_id IN ({marks})"  # noqa: S608
            )
            actual.update(db.execute(query, list(chunk)).fetchall())
    mismatched = sum(actual.get(s) != want for s, want in batch.expected.items())
    return FirstCheck(
        label=batch.label,
        events=batch.events,
        answered=result.requests,
        inbox_rows=rows,
        inbox_outcomes=dict(outcomes),
        redelivered=redelivered,
        expected_orders=dict(Counter(batch.expected.values())),
        orders=dict(Counter(actual.values())),
        mismatched_orders=mismatched,
    )


# --- the inbox ----------------------------------------------------------------------------------


@dataclass
class InboxCheck:
    """What one run left in the inbox, against what it sent."""

    prefix: str
    sent_distinct: int  # ids a thread handed to wrk (upper bound of what can be in the inbox)
    answered_distinct: int  # ids whose response came back (lower bound)
    rows: int
    distinct_rows: int
    outcomes: dict[str, int]
    wrapped: bool

    @property
    def not_done(self) -> int:
        return sum(n for outcome, n in self.outcomes.items() if outcome not in DONE)

    @property
    def ok(self) -> bool:
        """One row per distinct id, every answered id present, nothing beyond what was sent;
        only a request still in flight when wrk stopped (sent, never answered) may have been
        left unfinished (e.g. ``received``) by the client going away."""
        return (
            self.rows == self.distinct_rows
            and self.answered_distinct <= self.rows <= self.sent_distinct
            and self.not_done <= self.sent_distinct - self.answered_distinct
        )


def check_inbox(db_path: Path, deliveries: Deliveries, result: WrkResult) -> InboxCheck:
    """Count the inbox rows of one run's ids, straight from the SQLite file."""
    sent = answered = 0
    wrapped = False
    for share, sent_n, answered_n in result.extra.get("threads", []):
        sent += min(share, sent_n)
        answered += min(share, answered_n)
        wrapped = wrapped or sent_n > share
    like = deliveries.prefix.replace("_", r"\_") + "%"
    # Requests in flight when wrk stopped may still be finishing: poll (up to 5 s) until every
    # row of this run is done, then count.
    deadline = time.monotonic() + 5.0
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30) as db:
        while time.monotonic() < deadline:
            (pending,) = db.execute(
                r"SELECT count(*) FROM webhook_events WHERE event_id LIKE ? ESCAPE '\' "
                r"AND outcome NOT IN ('applied', 'unchanged', 'ignored')",
                (like,),
            ).fetchone()
            if pending == 0:
                break
            time.sleep(0.05)
        rows, distinct = db.execute(
            r"SELECT count(*), count(DISTINCT event_id) FROM webhook_events "
            r"WHERE event_id LIKE ? ESCAPE '\'",
            (like,),
        ).fetchone()
        outcomes = dict(
            db.execute(
                r"SELECT outcome, count(*) FROM webhook_events WHERE event_id LIKE ? ESCAPE '\' "
                r"GROUP BY outcome",
                (like,),
            ).fetchall()
        )
    return InboxCheck(deliveries.prefix, sent, answered, rows, distinct, outcomes, wrapped)
