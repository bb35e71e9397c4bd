"""The gateway's Prometheus metrics: one registry per app, never the global default.

A registry per :class:`Metrics` keeps two apps in one process (tests, the demo) from colliding
and keeps library defaults out of what the operator alerts on. Label values are always from small,
fixed sets (page kinds, route names, Stripe event types, bot names from the classifier's tables):
never a token, an id or anything a visitor can choose freely, which would explode the series.

Every metric is written through a ``record_*`` method of :class:`Metrics` (never through its
attributes), by the one caller named below. Services do not count: they know nothing of
Prometheus, and the web layer counts from what they return.

How each kind is kept (one mechanism per kind):

- **Per-request counters, on the payer's hot GET path** (``gateway_http_requests_total``,
  ``gateway_http_request_duration_seconds``, ``gateway_pages_total``,
  ``gateway_bot_previews_total``): plain dict tallies (:class:`_CounterTally`,
  :class:`_HistogramTally`) turned into Prometheus text at scrape time. A prometheus_client
  ``labels().inc()`` takes a lock and a label lookup, a noticeable share of a GET answered from
  memory; a dict increment does not.
- **Everything else** (Pay presses, sessions, Stripe errors, webhooks, renewals, emails, admin
  requests, links issued, reconciler runs): prometheus_client ``Counter`` objects. They are
  counted at most once per POST, webhook, admin call or reconciler run, never per GET.
- **Values read at scrape time** (``gateway_open_counts_unflushed``): a ``Gauge`` with a
  function (``setup_metrics``); nothing counts it.

Where each is counted (one place each):

- requests, latency, payer pages: the edge middleware (``web.middleware.edge`` through
  ``web.metrics.count_response``), after the answer; the page kind is the one the handler
  rendered (``web.metrics.render_page`` or ``PAGE_KIND``), else one read from the status.
- webhooks: the edge too, from the typed :class:`~gateway.web.metrics.WebhookAnswer` the
  webhook handler set on the request (``note_webhook``), or, for an answer the handler did not
  make (a body over the server's limit, Stripe trouble), the error code the edge wrote. A
  response body is never read back.
- Stripe errors by kind: the edge, where the exception becomes a 503.
- bot previews: the payer's GET handler (``web.pay._count_open``), next to the open count.
- Pay presses (with their sessions and 409 blocks): the Pay handler (``web.pay.confirm``),
  ``stripe_error`` included (counted as the exception passes on to the edge).
- renewals and renewal emails: the "email me a new link" handler (``web.pay.renew``).
- admin requests by outcome: the admin API's middleware (``web.admin.admin_middleware``).
- links issued and link emails: the admin API handlers that issue or send them.
- reconciler runs: wherever ``Reconciler.run()`` returns (the app's periodic task and
  ``POST /admin/api/reconcile``), through :meth:`Metrics.record_reconcile`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from typing import Literal, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from gateway.visitors.names import bot_label

# Page latencies are milliseconds on the hot path and seconds when Stripe is slow.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MAX_LABEL = 64
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# A tally's key: its label values as the caller has them (a status stays an int until a scrape).
_Key = tuple[str | int, ...]

ConfirmOutcome = Literal["redirect", "paid_block", "refused", "forbidden", "stripe_error"]
AdminOutcome = Literal["ok", "unauthorized", "throttled", "client_error"]
IssueChannel = Literal["api", "bulk", "cli", "console", "renewal"]
EmailPurpose = Literal["link", "renewal"]
OutboxOutcome = Literal[
    "sent", "retry", "failed", "skipped", "deferred", "lost", "abandoned", "resent_after_crash"
]
# Message kinds (gateway.domain.outbox.Kind) as metric labels; a row of any other kind counts
# as "other" (the label set stays bounded whatever a row says).
_MESSAGE_KINDS = frozenset(
    {"link", "renewal", "receipt", "payment_failed", "paid_twice", "refunded", "reminder",
     "alert_digest"}
)  # fmt: skip
StripeErrorKind = Literal["unavailable", "rejected", "contention"]


class _Report(Protocol):
    """What :meth:`Metrics.record_reconcile` reads from ``ReconcileReport``."""

    @property
    def ran(self) -> bool: ...
    @property
    def errors(self) -> Sequence[str]: ...
    @property
    def failures(self) -> Sequence[Mapping[str, str]]: ...
    @property
    def events_applied(self) -> Sequence[str]: ...
    @property
    def orders_settled(self) -> Sequence[str]: ...
    @property
    def sessions_recovered(self) -> Sequence[str]: ...
    @property
    def attempts_retired(self) -> Sequence[str]: ...
    @property
    def refunds(self) -> Sequence[str]: ...
    @property
    def duplicates(self) -> Sequence[str]: ...


def _label(value: str | None) -> str:
    return (value or "unknown")[:MAX_LABEL]


class _CounterTally(Collector):
    """A labelled counter kept in a plain dict and turned into Prometheus text at scrape time.

    prometheus_client takes a lock and a label lookup per increment; on the paths counted for
    every request that is a noticeable share of the request (docs/design.md §8). Everything runs
    on the event loop's one thread, scrapes included, so a dict needs no lock. Label values are
    stringified and cut to :data:`MAX_LABEL` when a key is first seen.
    """

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = labels
        self._counts: dict[_Key, int] = {}

    def inc(self, key: _Key) -> None:
        counts = self._counts
        counts[key] = counts.get(key, 0) + 1

    def value(self, *labels: str | int) -> int:
        return self._counts.get(tuple(labels), 0)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for key, count in _by_label(self._counts).items():
            family.add_metric(key, count)
        yield family


class _HistogramTally(Collector):
    """A labelled histogram in plain lists: one bisect (in C) and two additions per observation."""

    def __init__(
        self, name: str, documentation: str, labels: tuple[str, ...], buckets: tuple[float, ...]
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = labels
        self._bounds = buckets
        # Per key: a count per bucket (the last one is +Inf), then the sum of observations.
        self._series: dict[_Key, list[float]] = {}

    def observe(self, key: _Key, value: float) -> None:
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = [0.0] * (len(self._bounds) + 2)
        series[bisect_left(self._bounds, value)] += 1
        series[-1] += value

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        bounds = [
            *(repr(float(b)) for b in self._bounds),
            "+Inf",
        ]  # as prometheus_client writes them
        merged: dict[tuple[str, ...], list[float]] = {}
        for key, series in self._series.items():
            label = _label_key(key)
            into = merged.setdefault(label, [0.0] * len(series))
            for i, v in enumerate(series):
                into[i] += v
        for label, series in merged.items():
            cumulative, running = [], 0.0
            for bound, count in zip(bounds, series[:-1], strict=True):
                running += count
                cumulative.append((bound, running))
            family.add_metric(list(label), cumulative, sum_value=series[-1])
        yield family


def _label_key(key: _Key) -> tuple[str, ...]:
    return tuple(_label(str(v)) for v in key)


def _by_label(counts: dict[_Key, int]) -> dict[tuple[str, ...], int]:
    """Keys as label values (several raw keys may cut to the same label)."""
    out: dict[tuple[str, ...], int] = {}
    for key, count in counts.items():
        label = _label_key(key)
        out[label] = out.get(label, 0) + count
    return out


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # The four counted on every page view are tallied in plain dicts (see the module's notes).
        self.http_requests = _CounterTally(
            "gateway_http_requests",
            "HTTP responses by route name, method and status.",
            ("route", "method", "status"),
        )
        self.http_latency = _HistogramTally(
            "gateway_http_request_duration_seconds",
            "Time to answer a request, by route name.",
            ("route",),
            LATENCY_BUCKETS,
        )
        self.pages = _CounterTally(
            "gateway_pages",
            "Payer-facing pages served, by kind (confirm, preview, paid, expired...) and status.",
            ("kind", "status"),
        )
        self.bot_previews = _CounterTally(
            "gateway_bot_previews",
            "Harmless preview pages served to link-preview bots and scanners, by bot name.",
            ("bot",),
        )
        for tally in (self.http_requests, self.http_latency, self.pages, self.bot_previews):
            r.register(tally)
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
        self.reconcile_failures = Counter(
            "gateway_reconcile_failures",
            "Items a reconciler run reported and skipped, by step (replay, settle, recover, "
            "retire, refund).",
            ["step"],
            registry=r,
        )
        self.emails = Counter(
            "gateway_emails",
            "Link emails, by purpose (link, renewal) and outcome (sent, failed).",
            ["purpose", "outcome"],
            registry=r,
        )
        self.outbox = Counter(
            "gateway_outbox_messages",
            "Outbox sends by message kind and outcome (sent, retry, failed, skipped, deferred, "
            "lost: claimed by another sender, abandoned: its sender died twice mid-send, "
            "resent_after_crash: sent again after a sender died mid-send).",
            ["kind", "outcome"],
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
            "Links issued, by channel (api, bulk, cli, console, renewal).",
            ["channel"],
            registry=r,
        )
        self.opens_pending = Gauge(
            "gateway_open_counts_unflushed",
            "Link opens and previews counted in memory and not yet written.",
            registry=r,
        )

    # --- the one way to count (see the module's notes for who calls each) -------------------

    def record_request(self, route: str, method: str, status: int, seconds: float) -> None:
        if method not in _METHODS:
            method = "other"  # any token is a valid method; labels stay a small set
        self.http_requests.inc((route, method, status))
        self.http_latency.observe((route,), seconds)

    def record_page(self, kind: str, status: int) -> None:
        self.pages.inc((kind, status))

    def record_bot_preview(self, bot: str) -> None:
        # One series per name in a bounded set (visitors.names): "other" for any other name,
        # which also keeps a header's bytes that are not text out of every later scrape.
        self.bot_previews.inc((bot_label(bot),))

    def record_session(self, kind: str) -> None:
        self.sessions.labels(_label(kind)).inc()

    def record_confirm(self, outcome: ConfirmOutcome) -> None:
        self.confirms.labels(outcome).inc()

    def record_paid_block(self, state: str) -> None:
        self.paid_blocks.labels(state).inc()

    def record_stripe_error(self, kind: StripeErrorKind) -> None:
        self.stripe_errors.labels(_label(kind)).inc()

    def record_webhook(self, event_type: str, outcome: str) -> None:
        self.webhooks.labels(_label(event_type), _label(outcome)).inc()

    def record_renewal(self, outcome: str) -> None:
        self.renewals.labels(outcome).inc()

    def record_email(self, purpose: EmailPurpose, ok: bool) -> None:
        self.emails.labels(purpose, "sent" if ok else "failed").inc()

    def record_outbox(self, kind: str, outcome: OutboxOutcome, resent_after_crash: bool) -> None:
        """One outbox send (the app's sender task, from each :class:`Delivery`)."""
        label = kind if kind in _MESSAGE_KINDS else "other"
        self.outbox.labels(label, outcome).inc()
        if resent_after_crash:
            self.outbox.labels(label, "resent_after_crash").inc()

    def record_admin_request(self, outcome: AdminOutcome) -> None:
        self.admin_requests.labels(outcome).inc()

    def record_links_issued(self, channel: IssueChannel, count: int = 1) -> None:
        self.links_issued.labels(channel).inc(count)

    def record_reconcile(self, report: _Report) -> None:
        """Count one reconciler run from its report (call it wherever ``run()`` returns)."""
        if not report.ran:
            self.reconcile_runs.labels("skipped").inc()
            return
        failures = report.failures
        self.reconcile_runs.labels("errors" if report.errors or failures else "ran").inc()
        for failure in failures:
            self.reconcile_failures.labels(_label(str(failure.get("step")))).inc()
        for kind, found in (
            ("events_applied", report.events_applied),
            ("orders_settled", report.orders_settled),
            ("sessions_recovered", report.sessions_recovered),
            ("attempts_retired", report.attempts_retired),
            ("refunds", report.refunds),
            ("duplicates", report.duplicates),
        ):
            if found:
                self.reconcile_fixes.labels(kind).inc(len(found))

    def render(self) -> bytes:
        return generate_latest(self.registry)
