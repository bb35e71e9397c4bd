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
"""

from __future__ import annotations

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


async def make_templates(
    base: str, emulator: str, api_key: str, tokens: Sequence[str]
) -> list[dict[str, Any]]:
    """Press Pay on each link, then move each session on in the emulator; return its events."""
    auth = {"Authorization": f"Bearer {api_key}"}
    headers = {"Origin": "null", "User-Agent": "Mozilla/5.0 (iPhone) Mobile/15E148 Safari/604.1"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        sessions: list[str] = []
        for token in tokens:
            async with http.post(
                f"{base}/pay/{token}", headers=headers, allow_redirects=False
            ) as resp:
                if resp.status != 303:
                    raise RuntimeError(f"webhook links: POST /pay answered {resp.status}")
                sessions.append(resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1])

        async def control(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
            # The control API takes JSON; the Stripe API (/v1) takes a form, as Stripe does.
            payload: dict[str, Any] = (
                {"data": {}} if path.startswith("/v1/") else {"json": body or {}}
            )
            async with http.post(f"{emulator}{path}", headers=auth, **payload) as resp:
                data: dict[str, Any] = await resp.json()
                if resp.status != 200:
                    raise RuntimeError(f"emulator {path}: {resp.status} {data}")
                return data

        # 40 % paid, 10 % paid then refunded, 20 % paid later (15 % settled, 5 % failed),
        # 25 % left to expire.
        for i, session_id in enumerate(sessions):
            kind = i % 20
            if kind < 10:
                paid = await control(f"/_emulator/sessions/{session_id}/pay")
                if kind < 2:
                    await control(f"/_emulator/payment_intents/{paid['payment_intent']}/refund")
            elif kind < 14:
                await control(f"/_emulator/sessions/{session_id}/pay", {"outcome": "async"})
                succeed = kind < 13
                await control(
                    f"/_emulator/payment_intents/{session_id}/settle", {"succeed": succeed}
                )
            else:
                await control(f"/v1/checkout/sessions/{session_id}/expire")
        ours = set(sessions)
        events: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params = {"limit": "100", **({"starting_after": after} if after else {})}
            async with http.get(f"{emulator}/v1/events", params=params, headers=auth) as resp:
                page = await resp.json()
            for event in page["data"]:
                obj = event["data"]["object"]
                related = obj.get("id") if obj.get("object") == "checkout.session" else None
                if event["type"] in HANDLED_TYPES and (related is None or related in ours):
                    events.append(event)
            if not page.get("has_more") or not page["data"]:
                break
            after = page["data"][-1]["id"]
    if not events:
        raise RuntimeError("the emulator logged no events for the webhook links")
    # The list comes newest first, as Stripe lists; deliver in the order they happened, so that
    # (say) a session's async_payment_succeeded never comes before its completed.
    events.reverse()
    events.sort(key=lambda e: e["created"])
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
