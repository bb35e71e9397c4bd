"""Typed keys shared by the emulator's HTTP layers."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from gateway.dev.emulator.emulator import StripeEmulator
from gateway.dev.emulator.store import RequestContext

EMULATOR_KEY = web.AppKey("stripe_emulator", StripeEmulator)
# Set when the server starts shutting down, so that injected latency stops waiting.
STOPPING_KEY = web.AppKey("emulator_stopping", asyncio.Event)

REQUEST_ID_KEY = web.RequestKey("stripe_request_id", str)
PARAMS_KEY = web.RequestKey("stripe_params", dict[str, Any])
CONTEXT_KEY = web.RequestKey("stripe_context", RequestContext)
