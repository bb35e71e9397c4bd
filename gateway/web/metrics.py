"""``GET /metrics`` and the counting the edge middleware does for it.

Counting happens at the edge, from what handlers and services return, so the services stay free
of the web and of Prometheus. Labels come from route *names* and template names, never from the
path: a path carries a token, and one series per token would be both a leak and a memory leak.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Hashable
from typing import Any

from aiohttp import web

from gateway.config import Settings
from gateway.domain.errors import (
    ConflictRetryExhausted,
    PaymentProviderRejected,
    PaymentProviderUnavailable,
)
from gateway.metrics import Metrics
from gateway.web.clients import ClientResolver, in_networks, parse_networks
from gateway.web.keys import METRICS, SETTINGS
from gateway.web.pages import PAGES

routes = web.RouteTableDef()

PAGE_KIND = web.RequestKey("page_kind", str)
WEBHOOK_TYPE = web.RequestKey("webhook_type", str)
WEBHOOK_OUTCOME = web.RequestKey("webhook_outcome", str)
_PAY_ROUTES = frozenset({"pay", "confirm", "pay_return", "pay_renew"})
_EVENT_TYPE = re.compile(r"^[a-z_.]{1,100}$")


class MetricsGuard:
    """``metrics.allow`` (client networks) and ``metrics.bearer_token_sha256``: when set, each
    must pass. The client is found as everywhere else (``server.trusted_proxies``)."""

    def __init__(self, settings: Settings) -> None:
        self._allow = parse_networks(settings.metrics.allow)
        digest = settings.metrics.bearer_token_sha256
        self._digest = bytes.fromhex(digest) if digest else None
        self._clients = ClientResolver(settings.server.trusted_proxies)

    def refusal(self, request: web.Request) -> web.Response | None:
        if self._allow:
            address = self._clients.address(request)
            if address is None or not in_networks(address, self._allow):
                return web.Response(status=403, text="forbidden: not an allowed network\n")
        if self._digest is not None:
            scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
            digest = hashlib.sha256(presented.strip().encode("utf-8")).digest()
            if scheme.lower() != "bearer" or not hmac.compare_digest(digest, self._digest):
                return web.Response(
                    status=401,
                    text="unauthorized: a bearer token is required\n",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        return None


METRICS_GUARD = web.AppKey("metrics_guard", MetricsGuard)


@routes.get("/metrics", name="metrics")
async def metrics(request: web.Request) -> web.Response:
    refusal = request.app[METRICS_GUARD].refusal(request)
    if refusal is not None:
        return refusal
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
    """:meth:`Pages.render`, remembering which page was served for the counters."""
    request[PAGE_KIND] = template.removesuffix(".html")
    return request.app[PAGES].render(
        template, context, status=status, headers=headers, cache_key=cache_key
    )


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


def count_response(
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
        _count_webhook(metrics, request, response)


def _count_webhook(
    metrics: Metrics, request: web.Request, response: web.StreamResponse | None
) -> None:
    """Webhooks by type and outcome, as the handler noted them (``WEBHOOK_TYPE`` is set only
    once the signature was accepted: an unsigned body could put any string in a label). An
    answer the handler did not make (a body too large for the server) is read for its code."""
    event_type = request.get(WEBHOOK_TYPE) or "unverified"
    outcome = request.get(WEBHOOK_OUTCOME)
    if outcome is None:
        outcome = "unknown"
        body: Any = None
        if isinstance(response, web.Response) and isinstance(response.body, bytes):
            try:
                body = json.loads(response.body)
            except ValueError:
                body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            outcome = str(body["error"].get("code") or "error")
    metrics.record_webhook(event_type, outcome)


def note_webhook(request: web.Request, outcome: str, event_type: object = None) -> None:
    """What the webhook handler decided, for the counters (``event_type``: verified only)."""
    request[WEBHOOK_OUTCOME] = outcome
    if isinstance(event_type, str) and _EVENT_TYPE.match(event_type):
        request[WEBHOOK_TYPE] = event_type


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
    app[METRICS_GUARD] = MetricsGuard(app[SETTINGS])
    app.router.add_routes(routes)

    async def watch_opens(app: web.Application) -> None:
        from gateway.web.keys import OPENS

        # Read at scrape time: a count that stays high means flushes are failing.
        app[METRICS].opens_pending.set_function(lambda: app[OPENS].pending)

    app.on_startup.append(watch_opens)
    return metrics
