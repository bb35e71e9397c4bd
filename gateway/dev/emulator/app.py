"""``create_emulator_app``: the API, the hosted page and the control API in one aiohttp app,
plus the webhook sender's lifetime (its HTTP session and, in auto mode, its task)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from gateway.dev.emulator import hosted
from gateway.dev.emulator.api import Handler, create_api_app
from gateway.dev.emulator.control import create_control_app
from gateway.dev.emulator.emulator import StripeEmulator
from gateway.dev.emulator.keys import EMULATOR_KEY, REQUEST_ID_KEY, STOPPING_KEY


@web.middleware
async def request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every response carries a ``Request-Id``, as Stripe's do. An idempotent replay keeps the
    id of the request it replays, so the header is only set when absent."""
    request_id = request.config_dict[EMULATOR_KEY].ids.request_id()
    request[REQUEST_ID_KEY] = request_id
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.setdefault("Request-Id", request_id)
        raise
    response.headers.setdefault("Request-Id", request_id)
    return response


async def _webhook_sender(app: web.Application) -> AsyncIterator[None]:
    sender = app[EMULATOR_KEY].webhooks
    async with aiohttp.ClientSession() as session:
        sender.session = session
        task = asyncio.create_task(sender.run()) if sender.mode == "auto" else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            sender.session = None


async def _signal_stopping(app: web.Application) -> None:
    app[STOPPING_KEY].set()
    app[EMULATOR_KEY].held.release()


def create_emulator_app(emulator: StripeEmulator) -> web.Application:
    app = web.Application(middlewares=[request_id])
    app[EMULATOR_KEY] = emulator
    app[STOPPING_KEY] = asyncio.Event()
    app.add_subapp("/v1", create_api_app())
    app.add_subapp("/_emulator", create_control_app())
    hosted.add_routes(app)
    app.on_shutdown.append(_signal_stopping)
    app.cleanup_ctx.append(_webhook_sender)
    return app
