"""``POST /stripe/webhook``: verify the signature over the raw bytes, then apply the event."""

from __future__ import annotations

import json
import logging

import stripe
from aiohttp import web

from gateway.services.payments import NotYetApplicable
from gateway.services.webhooks import MalformedEvent
from gateway.web.keys import SETTINGS, WEBHOOKS
from gateway.web.metrics import note_webhook

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_WEBHOOK_BYTES = 512 * 1024


def _error(
    request: web.Request, status: int, code: str, message: str, event_type: object = None
) -> web.Response:
    note_webhook(request, code, event_type)
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@routes.post("/stripe/webhook", name="stripe_webhook")
async def stripe_webhook(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS].stripe
    if request.content_length is not None and request.content_length > MAX_WEBHOOK_BYTES:
        return _error(request, 413, "too_large", "webhook body too large")
    payload = await request.read()
    if len(payload) > MAX_WEBHOOK_BYTES:
        return _error(request, 413, "too_large", "webhook body too large")
    header = request.headers.get("Stripe-Signature")
    if not header:
        return _error(request, 400, "signature_missing", "Stripe-Signature header missing")
    try:
        text = payload.decode("utf-8")
        stripe.WebhookSignature.verify_header(
            text, header, settings.webhook_secret, int(settings.webhook_tolerance)
        )
    except (UnicodeDecodeError, stripe.SignatureVerificationError, ValueError):
        return _error(request, 400, "signature_invalid", "signature verification failed")
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        return _error(request, 400, "malformed_event", str(exc)[:200])
    event_type = event.get("type") if isinstance(event, dict) else None
    try:
        result = await request.app[WEBHOOKS].handle(event)
    except MalformedEvent as exc:
        return _error(request, 400, "malformed_event", str(exc)[:200], event_type)
    except NotYetApplicable as exc:
        # Stripe retries non-2xx answers; by then the event it depends on will have arrived.
        log.info("webhook deferred", extra={"reason": str(exc)})
        return _error(
            request,
            503,
            "not_yet_applicable",
            "event cannot be applied yet; retry later",
            event_type,
        )
    note_webhook(request, result.outcome, event_type)
    return web.json_response({"received": True, "outcome": result.outcome})
