"""Two gateway processes on one PostgreSQL database (docs/design.md §8, scale-out).

Round-robin is done by the load generator, not a proxy: two wrk processes run at the same time,
each against one gateway with half the connections (``-t1 -c32`` each for ``-c64``), and their
requests/s are summed. p50/p99 are the worse of the two processes' percentiles (latency
distributions cannot be merged from two summaries). RSS is sampled for each process.

The correctness check, :func:`confirm_race`, opens 200 connections (alternating between the two
processes), then writes ``POST /pay/{token}`` of one fresh link on every connection at once and
reads every answer: the emulator must hold exactly one new Checkout Session for that link, no
answer may be a 5xx, and every 303 must point at that one session.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

PG_ADMIN = ["psql", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", "test", "-qAt"]


class PgDatabase:
    """A database of its own for one benchmark run, dropped afterwards."""

    def __init__(self, host: str = "127.0.0.1", port: int = 5432) -> None:
        self.name = "bench_" + secrets.token_hex(4)
        self.url = f"postgresql+asyncpg://postgres@{host}:{port}/{self.name}"

    def _psql(self, sql: str) -> None:
        result = subprocess.run(
            [*PG_ADMIN, "-c", sql], capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {result.stderr.strip()}")

    def create(self) -> None:
        self._psql(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        self._psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@dataclass
class RaceResult:
    confirms: int
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # connection-level, by kind
    locations: Counter[str] = field(default_factory=Counter)
    link_sessions: list[str] = field(default_factory=list)  # the emulator's, for this link
    per_process: list[Counter[int]] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def ok(self) -> bool:
        return (
            len(self.link_sessions) == 1
            and self.server_errors == 0
            and not self.failures
            and sum(self.statuses.values()) == self.confirms
            and len(self.locations) == 1
            and next(iter(self.locations)).rstrip("/").endswith(self.link_sessions[0])
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "confirms": self.confirms,
            "statuses": dict(self.statuses),
            "per_process": [dict(c) for c in self.per_process],
            "failures": dict(self.failures),
            "distinct_locations": len(self.locations),
            "emulator_sessions_for_link": self.link_sessions,
            "ok": self.ok,
        }


def _confirm_request(host: str, port: int, token: str) -> bytes:
    return (
        f"POST /pay/{token} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "User-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) "
        "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1\r\n"
        "Accept-Language: en-US,en;q=0.9\r\nOrigin: null\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[int, str]:
    """Read one response to the end (``Connection: close``): its status and Location."""
    try:
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 60)
    finally:
        writer.close()
    lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    location = next(
        (ln.split(":", 1)[1].strip() for ln in lines[1:] if ln.lower().startswith("location:")),
        "",
    )
    return status, location


async def confirm_race(
    ports: list[int], token: str, link_id: str, emulator: str, confirms: int = 200
) -> RaceResult:
    """``confirms`` simultaneous confirms of one link, alternating between ``ports``.

    Every connection is opened first; then the request is written on all of them in one pass of
    the event loop (no awaits in between), then every answer is read."""
    host = "127.0.0.1"
    targets = [ports[i % len(ports)] for i in range(confirms)]
    opened = await asyncio.gather(
        *(asyncio.open_connection(host, port) for port in targets), return_exceptions=True
    )
    readers = []
    for port, conn in zip(targets, opened, strict=True):
        if isinstance(conn, BaseException):
            readers.append(None)
            continue
        conn[1].write(_confirm_request(host, port, token))
        readers.append(conn)
    outcomes: list[tuple[int, str] | BaseException] = list(
        await asyncio.gather(
            *(_answer(*conn) for conn in readers if conn is not None), return_exceptions=True
        )
    )
    it = iter(outcomes)
    answers = [(opened[i] if readers[i] is None else next(it)) for i in range(confirms)]
    result = RaceResult(confirms, per_process=[Counter() for _ in ports])
    for i, outcome in enumerate(answers):
        if isinstance(outcome, BaseException):
            result.failures[type(outcome).__name__] += 1
            continue
        status, location = outcome
        result.statuses[status] += 1
        result.per_process[i % len(ports)][status] += 1
        if status == 303:
            result.locations[location] += 1
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{emulator}/_emulator/sessions") as resp,
    ):
        sessions = (await resp.json())["data"]
    result.link_sessions = [
        s["id"] for s in sessions if (s.get("metadata") or {}).get("link_id") == link_id
    ]
    return result
