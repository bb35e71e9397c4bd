"""``POST /stripe/webhook``: verify the signature over the raw bytes, then apply the event.

What the sender is answered, and what changes (docs/design.md §5.6, §6). Nothing here ever
answers 500 or changes an order for a body it cannot use:

- **413** ``too_large``: a body over :data:`MAX_WEBHOOK_BYTES`.
- **400** ``signature_missing`` / ``signature_invalid``: no ``Stripe-Signature``, a signature
  that does not match the raw bytes, a body that is not UTF-8, or a signature dated more than
  ``stripe.webhook_tolerance`` before *or after* now (the SDK checks only the age; a future
  date would let a captured delivery be replayed for longer). Nothing is recorded.
- **400** ``malformed_event``: a validly signed body that cannot be parsed — not JSON, nested
  deeper than the parser goes, a number too long to read. Nothing is recorded (there is no
  event id to record it under).
- **200** ``invalid``: a validly signed JSON document the gateway cannot use (not an event
  object; an id or type that is not printable text; a handled event whose object has a wrong
  type, a timestamp that is not a whole number of seconds in range, an amount out of range, a
  string with a lone surrogate or a NUL — see :func:`gateway.services.webhooks.parse_event`).
  Acknowledged so that Stripe stops resending bytes that will never be usable; recorded in the
  inbox as ``invalid`` with the reason when the event id is storable text, and not recorded at
  all when it is not (a lone surrogate is never stored). Orders are never touched.
- **200** ``ignored``: a usable event of a type the gateway does not handle, or about a session
  or charge that is not the gateway's. **200** ``applied`` / ``unchanged`` / ``duplicate``: the
  event was applied, changed nothing, or was already done.
- **503** ``not_yet_applicable``: an event the gateway recognises but cannot apply yet (a refund
  before its payment): Stripe retries it later.
"""

from __future__ import annotations

import json
import logging
import time

import stripe
from aiohttp import web

from gateway.services.payments import NotYetApplicable
from gateway.services.webhooks import HANDLED_TYPES
from gateway.web.keys import SETTINGS, WEBHOOKS
from gateway.web.metrics import note_webhook

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_WEBHOOK_BYTES = 512 * 1024


def log_needed_events(public_url: str) -> None:
    """At start-up, say which events the Stripe webhook endpoint must send. Stripe sends only
    the types the endpoint was set up with, and the gateway cannot ask it (a restricted key
    cannot read the endpoint's settings): a type left out is a payment, refund or dispute that
    only the reconciler would find, later."""
    log.info(
        "the Stripe webhook endpoint %s/stripe/webhook must send these %d event types: %s",
        public_url.rstrip("/"),
        len(HANDLED_TYPES),
        ", ".join(HANDLED_TYPES),
        extra={"event_types": list(HANDLED_TYPES)},
    )


def _error(
    request: web.Request, status: int, code: str, message: str, event_type: object = None
) -> web.Response:
    note_webhook(request, code, event_type)
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def signed_in_the_future(header: str, tolerance: float, now: float) -> bool:
    """Whether the signature's ``t=`` is more than ``tolerance`` seconds after ``now``. The
    header is read as the SDK reads it (the first ``t`` item), after the SDK verified it."""
    for item in header.split(","):
        parts = item.split("=", 2)
        if parts[0] == "t" and len(parts) > 1:
            return int(parts[1]) > now + tolerance
    return True


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
    tolerance = int(settings.webhook_tolerance)
    try:
        text = payload.decode("utf-8")
        stripe.WebhookSignature.verify_header(text, header, settings.webhook_secret, tolerance)
        # Wall-clock time, like the SDK's age check: the signer's clock is not the app's.
        future = signed_in_the_future(header, tolerance, time.time())
    except (UnicodeDecodeError, stripe.SignatureVerificationError, ValueError):
        return _error(request, 400, "signature_invalid", "signature verification failed")
    if future:
        return _error(
            request, 400, "signature_invalid", "signature timestamp is too far in the future"
        )
    try:
        event = json.loads(text)
    except (ValueError, RecursionError):
        # Not JSON, too deeply nested for the parser, or a number too long to convert.
        return _error(request, 400, "malformed_event", "the body is not a readable JSON document")
    event_type = event.get("type") if isinstance(event, dict) else None
    try:
        result = await request.app[WEBHOOKS].handle(event)
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
    if result.outcome == "invalid":
        return web.json_response({"received": True, "outcome": "invalid", "error": result.error})
    return web.json_response({"received": True, "outcome": result.outcome})
