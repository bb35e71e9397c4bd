"""``GET /metrics`` and the counting the edge middleware does for it.

Counting happens at the edge, from what handlers and services return, so the services stay free
of the web and of Prometheus. Labels come from route *names* and template names, never from the
path: a path carries a token, and one series per token would be both a leak and a memory leak.
"""

from __future__ import annotations

import json
import re
from collections.abc import Hashable
from typing import Any

from aiohttp import web

from gateway.domain.errors import (
    ConflictRetryExhausted,
    PaymentProviderRejected,
    PaymentProviderUnavailable,
)
from gateway.metrics import Metrics
from gateway.web.keys import METRICS
from gateway.web.pages import render

routes = web.RouteTableDef()

PAGE_KIND = web.RequestKey("page_kind", str)
_PAY_ROUTES = frozenset({"pay", "confirm", "pay_return", "pay_renew"})
_EVENT_TYPE = re.compile(r"^[a-z_.]{1,100}$")


@routes.get("/metrics", name="metrics")
async def metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    response = web.Response(body=m.render())
    response.content_type = "text/plain"
    response.headers["Content-Type"] = m.content_type
    return response


def render_page(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    cache_key: Hashable | None = None,
) -> web.Response:
    """:func:`gateway.web.pages.render`, remembering which page was served for the counters."""
    request[PAGE_KIND] = template.removesuffix(".html")
    return render(request, template, context, status=status, headers=headers, cache_key=cache_key)


def _route_name(request: web.Request) -> str:
    route = request.match_info.route
    name = route.name
    if name:
        return name
    if route.resource is None:
        return "unmatched"
    canonical = route.resource.canonical
    return "static" if canonical.startswith("/static") else "other"


def _fallback_kind(status: int) -> str:
    if status >= 500:
        return "error"
    if status == 404:
        return "invalid"
    if status in (301, 302, 303, 307, 308):
        return "redirect"
    return "bad_request"


async def count_response(
    metrics: Metrics,
    request: web.Request,
    status: int,
    seconds: float,
    response: web.StreamResponse | None,
) -> None:
    """Latency and status of every request, and the payer pages by kind (called by the edge)."""
    route = _route_name(request)
    metrics.record_request(route, request.method, status, seconds)
    if route in _PAY_ROUTES:
        metrics.record_page(str(request.get(PAGE_KIND) or _fallback_kind(status)), status)
    if route == "stripe_webhook" and status != 500:
        await _count_webhook(metrics, request, status, response)


async def _count_webhook(
    metrics: Metrics, request: web.Request, status: int, response: web.StreamResponse | None
) -> None:
    """Webhooks by type and outcome, read from the handler's JSON answer.

    The event type is taken from the body only when the signature was accepted (2xx, or a 503
    asking Stripe to retry): an unsigned body could put any string in a label.
    """
    outcome, event_type = "unknown", "unverified"
    body: Any = None
    if isinstance(response, web.Response) and isinstance(response.body, bytes):
        try:
            body = json.loads(response.body)
        except ValueError:
            body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            outcome = str(error.get("code") or "error")
        else:
            outcome = str(body.get("outcome") or "received")
    if status < 300 or status == 503:
        try:
            raw = json.loads(await request.read())
            candidate = raw.get("type") if isinstance(raw, dict) else None
        except (ValueError, UnicodeDecodeError):
            candidate = None
        if isinstance(candidate, str) and _EVENT_TYPE.match(candidate):
            event_type = candidate
    metrics.record_webhook(event_type, outcome)


_STRIPE_ERROR_KINDS: tuple[tuple[type[Exception], str], ...] = (
    (PaymentProviderUnavailable, "unavailable"),
    (PaymentProviderRejected, "rejected"),
    (ConflictRetryExhausted, "contention"),
)


def count_stripe_error(metrics: Metrics, request: web.Request, exc: Exception) -> None:
    """Stripe trouble that reached the edge, by kind (and as a confirm outcome on Pay)."""
    kind = next((k for cls, k in _STRIPE_ERROR_KINDS if isinstance(exc, cls)), "unavailable")
    metrics.record_stripe_error(kind)
    if _route_name(request) == "confirm":
        metrics.confirms.labels("stripe_error").inc()


def setup_metrics(app: web.Application) -> Metrics:
    """The app's metrics and ``GET /metrics``; the edge middleware does the counting."""
    metrics = app[METRICS] = Metrics()
    app.router.add_routes(routes)

    async def watch_opens(app: web.Application) -> None:
        from gateway.web.keys import OPENS

        # Read at scrape time: a count that stays high means flushes are failing.
        app[METRICS].opens_pending.set_function(lambda: app[OPENS].pending)

    app.on_startup.append(watch_opens)
    return metrics
