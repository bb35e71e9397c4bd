"""``GET /metrics`` and the counting the edge middleware does for it.

Which metric is counted where, and by which mechanism, is written down once, in
:mod:`gateway.metrics`. What is here: the edge's counting (every response, payer pages, webhook
outcomes, Stripe errors) and the typed values handlers leave on the request for it. Labels come
from route *names* and template names, never from the path: a path carries a token, and one
series per token would be both a leak and a memory leak.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.config import Settings
from gateway.domain.errors import (
    ConflictRetryExhausted,
    PaymentProviderRejected,
    PaymentProviderUnavailable,
)
from gateway.metrics import Metrics, StripeErrorKind
from gateway.web.clients import ClientResolver, in_networks, parse_networks
from gateway.web.keys import METRICS, SETTINGS
from gateway.web.pages import PAGES

routes = web.RouteTableDef()


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    """What the webhook handler decided, as counted: ``event_type`` is ``"unverified"`` unless
    the signature was accepted (an unsigned body could put any string in a label)."""

    outcome: str
    event_type: str = "unverified"


# Left on the request for the edge's counting: the payer page the handler served, the webhook
# handler's decision, and the code of a JSON error answer the edge itself wrote.
PAGE_KIND = web.RequestKey("page_kind", str)
WEBHOOK_ANSWER = web.RequestKey("webhook_answer", WebhookAnswer)
ERROR_CODE = web.RequestKey("error_code", str)
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
    context: dict[str, Any],  # a template's context, as Pages.render takes it
    *,
    locale: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    cache_key: Hashable | None = None,
) -> web.Response:
    """:meth:`Pages.render`, remembering which page was served for the counters."""
    request[PAGE_KIND] = template.removesuffix(".html")
    return request.app[PAGES].render(
        template, context, locale=locale, status=status, headers=headers, cache_key=cache_key
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


def count_response(metrics: Metrics, request: web.Request, status: int, seconds: float) -> None:
    """Latency and status of every request, the payer pages by kind and the webhooks by outcome
    (called by the edge, once per request, after the answer)."""
    route = _route_name(request)
    metrics.record_request(route, request.method, status, seconds)
    if route in _PAY_ROUTES:
        metrics.record_page(str(request.get(PAGE_KIND) or _fallback_kind(status)), status)
    if route == "stripe_webhook" and status != 500:
        _count_webhook(metrics, request)


def _count_webhook(metrics: Metrics, request: web.Request) -> None:
    """Webhooks by type and outcome, as the handler decided them. An answer the handler did not
    make (a body too large for the server, Stripe trouble) counts the code the edge wrote."""
    answer = request.get(WEBHOOK_ANSWER)
    if answer is None:
        code = request.get(ERROR_CODE)
        answer = WebhookAnswer("unknown" if code is None else code or "error")
    metrics.record_webhook(answer.event_type, answer.outcome)


def note_webhook(request: web.Request, outcome: str, event_type: object = None) -> None:
    """What the webhook handler decided, for the counters (``event_type``: verified only)."""
    if isinstance(event_type, str) and _EVENT_TYPE.match(event_type):
        request[WEBHOOK_ANSWER] = WebhookAnswer(outcome, event_type)
    else:
        request[WEBHOOK_ANSWER] = WebhookAnswer(outcome)


def note_error_code(request: web.Request, code: str) -> None:
    """The code of a JSON error answer the edge wrote (what a webhook it answered counts)."""
    request[ERROR_CODE] = code


# What the edge answers with a 503 (and counts by kind); the Pay handler counts it as an outcome.
PROVIDER_TROUBLE = (PaymentProviderUnavailable, PaymentProviderRejected, ConflictRetryExhausted)
_STRIPE_ERROR_KINDS: tuple[tuple[type[Exception], StripeErrorKind], ...] = (
    (PaymentProviderUnavailable, "unavailable"),
    (PaymentProviderRejected, "rejected"),
    (ConflictRetryExhausted, "contention"),
)


def count_stripe_error(metrics: Metrics, exc: Exception) -> None:
    """Stripe trouble that reached the edge, by kind."""
    kind: StripeErrorKind = next(
        (k for cls, k in _STRIPE_ERROR_KINDS if isinstance(exc, cls)), "unavailable"
    )
    metrics.record_stripe_error(kind)


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
