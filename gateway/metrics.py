"""The gateway's Prometheus metrics: one registry per app, never the global default.

A registry per :class:`Metrics` keeps two apps in one process (tests, the demo) from colliding
and keeps library defaults out of what the operator alerts on. Label values are always from small,
fixed sets (page kinds, route names, Stripe event types, bot names from the classifier's tables):
never a token, an id or anything a visitor can choose freely, which would explode the series.

Services that do not know about the web layer get this object passed in and call the ``record_*``
methods; the web layer counts what it can see from the results services return.
"""

from __future__ import annotations

from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Page latencies are milliseconds on the hot path and seconds when Stripe is slow.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MAX_LABEL = 64
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _Report(Protocol):
    """What :meth:`Metrics.record_reconcile` reads from ``ReconcileReport``."""

    def as_dict(self) -> dict[str, Any]: ...


def _label(value: str | None) -> str:
    return (value or "unknown")[:MAX_LABEL]


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "gateway_http_requests",
            "HTTP responses by route name, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "gateway_http_request_duration_seconds",
            "Time to answer a request, by route name.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.pages = Counter(
            "gateway_pages",
            "Payer-facing pages served, by kind (confirm, preview, paid, expired...) and status.",
            ["kind", "status"],
            registry=r,
        )
        self.bot_previews = Counter(
            "gateway_bot_previews",
            "Harmless preview pages served to link-preview bots and scanners, by bot name.",
            ["bot"],
            registry=r,
        )
        self.confirms = Counter(
            "gateway_confirms",
            "Pay button presses, by outcome (redirect, paid_block, processing_block, refused,"
            " forbidden, stripe_error).",
            ["outcome"],
            registry=r,
        )
        self.sessions = Counter(
            "gateway_checkout_sessions",
            "Checkout sessions handed to payers, by kind (created, reused, resumed, replaced).",
            ["kind"],
            registry=r,
        )
        self.paid_blocks = Counter(
            "gateway_paid_blocks",
            "409 answers to Pay because the link is paid or its payment is processing.",
            ["state"],
            registry=r,
        )
        self.stripe_errors = Counter(
            "gateway_stripe_errors",
            "Stripe calls that failed, by kind (unavailable, rejected, contention).",
            ["kind"],
            registry=r,
        )
        self.webhooks = Counter(
            "gateway_webhooks",
            "Stripe webhook deliveries, by event type and outcome.",
            ["type", "outcome"],
            registry=r,
        )
        self.reconcile_runs = Counter(
            "gateway_reconcile_runs",
            "Reconciler runs, by result (ran, skipped, errors).",
            ["result"],
            registry=r,
        )
        self.reconcile_fixes = Counter(
            "gateway_reconcile_fixes",
            "Corrections the reconciler made, by kind (events_applied, orders_settled...).",
            ["kind"],
            registry=r,
        )
        self.emails = Counter(
            "gateway_emails",
            "Link emails, by purpose (link, renewal) and outcome (sent, failed).",
            ["purpose", "outcome"],
            registry=r,
        )
        self.renewals = Counter(
            "gateway_link_renewals",
            "Fresh-link requests from expired pages, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.admin_requests = Counter(
            "gateway_admin_requests",
            "Admin API requests, by outcome (ok, unauthorized, client_error, error).",
            ["outcome"],
            registry=r,
        )
        self.links_issued = Counter(
            "gateway_links_issued",
            "Links issued, by channel (api, bulk, cli, renewal).",
            ["channel"],
            registry=r,
        )
        self.opens_pending = Gauge(
            "gateway_open_counts_unflushed",
            "Link opens and previews counted in memory and not yet written.",
            registry=r,
        )

        # Label lookups cost microseconds; the GET hot path keeps the children it has seen.
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._page_children: dict[tuple[str, int], Any] = {}

    # --- for services and the web layer ---------------------------------------------------

    def record_request(self, route: str, method: str, status: int, seconds: float) -> None:
        if method not in _METHODS:
            method = "other"  # any token is a valid method; labels stay a small set
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.http_requests.labels(_label(route), _label(method), str(status)),
                self.http_latency.labels(_label(route)),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def record_page(self, kind: str, status: int) -> None:
        key = (kind, status)
        child = self._page_children.get(key)
        if child is None:
            child = self._page_children[key] = self.pages.labels(_label(kind), str(status))
        child.inc()

    def record_bot_preview(self, bot: str) -> None:
        self.bot_previews.labels(_label(bot)).inc()

    def record_session(self, kind: str) -> None:
        self.sessions.labels(_label(kind)).inc()

    def record_stripe_error(self, kind: str) -> None:
        self.stripe_errors.labels(_label(kind)).inc()

    def record_webhook(self, event_type: str, outcome: str) -> None:
        self.webhooks.labels(_label(event_type), _label(outcome)).inc()

    def record_email(self, purpose: str, ok: bool) -> None:
        self.emails.labels(purpose, "sent" if ok else "failed").inc()

    def record_reconcile(self, report: _Report) -> None:
        """Count one reconciler run from its report (call it wherever ``run()`` returns)."""
        data = report.as_dict()
        if not data.get("ran", True):
            self.reconcile_runs.labels("skipped").inc()
            return
        self.reconcile_runs.labels("errors" if data.get("errors") else "ran").inc()
        for kind in (
            "events_applied",
            "orders_settled",
            "sessions_recovered",
            "attempts_retired",
            "refunds",
            "duplicates",
        ):
            found = data.get(kind) or []
            if found:
                self.reconcile_fixes.labels(kind).inc(len(found))

    def render(self) -> bytes:
        return generate_latest(self.registry)
