"""Liveness and readiness.

``/healthz`` answers while the process runs. ``/readyz`` says whether this replica can serve a
payer now: the database answers and Stripe answers (a cheap, read-only list call). Each check is
bounded, so a hung dependency makes readiness fail quickly instead of hanging the probe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from aiohttp import web

from gateway.web.keys import CLOCK, DATABASE, PAYMENTS

routes = web.RouteTableDef()

CHECK_TIMEOUT = 3.0


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

    async def stripe() -> None:
        # Sessions created in this very second: almost always an empty page, and read-only.
        now = int(app[CLOCK].now())
        await app[PAYMENTS].list_sessions(created_from=now, created_to=now)

    db_status, stripe_status = await asyncio.gather(_check(database), _check(stripe))
    checks = {"database": db_status, "stripe": stripe_status}
    ready = all(v == "ok" for v in checks.values())
    return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)
