"""The control API under ``/_emulator/``: JSON endpoints for tests and benchmarks that drive
the emulator as a separate process. No authentication: it only ever listens on a test box."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.dev.emulator.errors import StripeError
from gateway.dev.emulator.keys import EMULATOR_KEY

Obj = dict[str, Any]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _error(status: int, message: str) -> web.Response:
    return _json({"error": {"message": message}}, status=status)


async def _body(request: web.Request) -> Obj:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": {"message": "body must be a JSON object"}}),
            content_type="application/json",
        ) from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": {"message": "body must be a JSON object"}}),
            content_type="application/json",
        )
    return data


@web.middleware
async def control_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Domain errors from the emulator become JSON in Stripe's shape, with Stripe's status."""
    try:
        response: web.StreamResponse = await handler(request)
    except StripeError as error:
        return _json(error.body(), status=error.status)
    return response


async def state(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    emulator.expire_due_sessions()
    return _json(emulator.summary())


async def sessions(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    emulator.expire_due_sessions()
    return _json({"data": list(emulator.sessions.values())})


async def set_faults(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    try:
        emulator.faults.update(await _body(request))
    except ValueError as exc:
        return _error(400, str(exc))
    return _json(emulator.faults.as_dict())


async def advance_clock(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    advance = getattr(emulator.clock, "advance", None)
    if advance is None:
        return _error(409, "the emulator runs on a real clock; start it with a fake clock")
    seconds = (await _body(request)).get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return _error(400, "seconds must be a non-negative number")
    advance(seconds)
    expired = emulator.expire_due_sessions()
    return _json({"now": emulator.clock.now(), "expired": expired})


async def pay(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    outcome = (await _body(request)).get("outcome", "paid")
    if outcome not in ("paid", "async", "declined"):
        return _error(400, "outcome must be one of paid, async, declined")
    session_id = request.match_info["id"]
    emulator.pay(session_id, outcome)
    return _json(emulator.sessions[session_id])


async def settle(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    succeed = (await _body(request)).get("succeed", True)
    if not isinstance(succeed, bool):
        return _error(400, "succeed must be a boolean")
    emulator.settle_async(request.match_info["id"], succeed)
    # Accepts a session id too, like settle_async; answer with the payment intent either way.
    pi_id = request.match_info["id"]
    if pi_id.startswith("cs_"):
        pi_id = emulator.sessions[pi_id]["payment_intent"]
    return _json(emulator.payment_intents[pi_id])


async def refund(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    amount = (await _body(request)).get("amount")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
        return _error(400, "amount must be an integer")
    return _json(emulator.refund_from_dashboard(request.match_info["id"], amount))


async def dispute(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    return _json(emulator.dispute(request.match_info["id"]))


async def deliver_webhooks(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    await emulator.deliver_webhooks()
    return _json({"pending": emulator.webhooks.pending})


async def webhook_attempts(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    return _json(
        {
            "attempts": [a.__dict__ for a in emulator.webhooks.attempts],
            "lost": emulator.webhooks.lost,
            "given_up": emulator.webhooks.given_up,
        }
    )


async def release_held(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    return _json({"released": emulator.held.release()})


async def expire_due(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    return _json({"expired": emulator.expire_due_sessions()})


def create_control_app() -> web.Application:
    app = web.Application(middlewares=[control_errors])
    app.router.add_get("/state", state)
    app.router.add_get("/sessions", sessions)
    app.router.add_post("/faults", set_faults)
    app.router.add_post("/clock/advance", advance_clock)
    app.router.add_post("/sessions/{id}/pay", pay)
    app.router.add_post("/payment_intents/{id}/settle", settle)
    app.router.add_post("/payment_intents/{id}/refund", refund)
    app.router.add_post("/payment_intents/{id}/dispute", dispute)
    app.router.add_post("/webhooks/deliver", deliver_webhooks)
    app.router.add_get("/webhooks", webhook_attempts)
    app.router.add_post("/expire_due", expire_due)
    app.router.add_post("/held/release", release_held)
    return app
