"""Liveness and readiness.

``/healthz`` answers while the process runs. ``/readyz`` says whether this replica can serve a
payer now: the database answers and Stripe answers (a cheap, read-only list call). Each check is
bounded, so a hung dependency makes readiness fail quickly instead of hanging the probe.

``/readyz`` is public, and every Stripe call spends the account's rate limit that payers' Pay
presses share, so the Stripe half is cached (:data:`STRIPE_FRESH_FOR` after a success,
:data:`STRIPE_RETRY_AFTER` after a failure) and single-flight: however many probes arrive at
once, one Stripe call is in flight. The answer says how old the Stripe result is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from aiohttp import web

from gateway.clock import Clock
from gateway.web.keys import CLOCK, DATABASE, PAYMENTS

routes = web.RouteTableDef()

CHECK_TIMEOUT = 3.0
STRIPE_FRESH_FOR = 30.0
STRIPE_RETRY_AFTER = 5.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    status: str  # "ok" or "error: <exception type>"
    checked_at: float  # clock time the answer came back


class SharedCheck:
    """A check whose result is reused while fresh, and run by one caller at a time: the others
    wait for that run's answer (single flight). A caller that goes away does not cancel it."""

    def __init__(
        self,
        probe: Callable[[], Awaitable[object]],
        clock: Clock,
        fresh_for: float = STRIPE_FRESH_FOR,
        retry_after: float = STRIPE_RETRY_AFTER,
    ) -> None:
        self._probe = probe
        self._clock = clock
        self._fresh_for = fresh_for
        self._retry_after = retry_after
        self._last: CheckResult | None = None
        self._running: asyncio.Task[CheckResult] | None = None
        self.runs = 0

    async def result(self) -> CheckResult:
        last = self._last
        if last is not None:
            age = self._clock.now() - last.checked_at
            if 0 <= age < (self._fresh_for if last.status == "ok" else self._retry_after):
                return last
        if self._running is None:
            self._running = asyncio.create_task(self._run(), name="readiness-check")
        return await asyncio.shield(self._running)

    async def _run(self) -> CheckResult:
        try:
            self.runs += 1
            status = await _check(self._probe)
            self._last = CheckResult(status, self._clock.now())
            return self._last
        finally:
            self._running = None

    async def close(self) -> None:
        task = self._running
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


STRIPE_CHECK = web.AppKey("stripe_check", SharedCheck)


@routes.get("/healthz", name="healthz")
async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _check(probe: Callable[[], Awaitable[object]]) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await probe()
    except Exception as exc:  # any failure means "not ready"; the type goes in the body
        return f"error: {type(exc).__name__}"
    return "ok"


@routes.get("/readyz", name="readyz")
async def readyz(request: web.Request) -> web.Response:
    app = request.app

    async def database() -> None:
        async with app[DATABASE].read() as session:
            await session.execute(sa.text("SELECT 1"))

    db_status, stripe = await asyncio.gather(_check(database), app[STRIPE_CHECK].result())
    checks = {"database": db_status, "stripe": stripe.status}
    ready = all(v == "ok" for v in checks.values())
    body = {
        "ready": ready,
        "checks": checks,
        "stripe_checked": {
            "at": datetime.fromtimestamp(stripe.checked_at, UTC).isoformat(timespec="seconds"),
            "age_seconds": round(max(0.0, app[CLOCK].now() - stripe.checked_at), 1),
        },
    }
    return web.json_response(body, status=200 if ready else 503)


def setup_health(app: web.Application) -> None:
    """The routes, and the shared Stripe check (its probe reads the app's Stripe client, which
    exists once the app has started)."""

    async def stripe() -> None:
        # Sessions created in this very second: almost always an empty page, and read-only.
        now = int(app[CLOCK].now())
        await app[PAYMENTS].list_sessions(created_from=now, created_to=now)

    check = app[STRIPE_CHECK] = SharedCheck(stripe, app[CLOCK])

    async def close(_: web.Application) -> None:
        await check.close()

    app.on_cleanup.append(close)
    app.router.add_routes(routes)
