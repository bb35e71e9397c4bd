"""The hot-path tallies must expose exactly what prometheus_client's own Counter and Histogram
would for the same observations: same names, types, labels, buckets, counts and sums."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from gateway.metrics import LATENCY_BUCKETS, MAX_LABEL, Metrics


def _without_created(text: bytes) -> list[str]:
    # prometheus_client adds *_created timestamps; the tallies do not (they are optional).
    return [line for line in text.decode().splitlines() if "_created" not in line]


def test_request_counters_and_latency_match_prometheus_client() -> None:
    observations = [
        ("pay", "GET", 200, 0.0004),
        ("pay", "GET", 200, 0.001),  # exactly on a bucket bound: counted in it (le)
        ("pay", "HEAD", 200, 0.003),
        ("confirm", "POST", 303, 0.02),
        ("confirm", "POST", 503, 1.7),
        ("confirm", "POST", 503, 42.0),  # beyond the last bound: +Inf only
        ("x" * 100, "GET", 404, 0.002),  # label cut to MAX_LABEL
    ]
    metrics = Metrics()
    registry = CollectorRegistry()
    requests = Counter(
        "gateway_http_requests",
        "HTTP responses by route name, method and status.",
        ["route", "method", "status"],
        registry=registry,
    )
    latency = Histogram(
        "gateway_http_request_duration_seconds",
        "Time to answer a request, by route name.",
        ["route"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    for route, method, status, seconds in observations:
        metrics.record_request(route, method, status, seconds)
        requests.labels(route[:MAX_LABEL], method, str(status)).inc()
        latency.labels(route[:MAX_LABEL]).observe(seconds)

    ours = [line for line in _without_created(metrics.render()) if "gateway_http_request" in line]
    theirs = _without_created(generate_latest(registry))
    assert sorted(ours) == sorted(theirs)


def test_pages_and_bot_previews_count_per_label() -> None:
    metrics = Metrics()
    for _ in range(3):
        metrics.record_page("confirm", 200)
    metrics.record_page("paid", 409)
    metrics.record_bot_preview("Slackbot")
    metrics.record_bot_preview("Slackbot")
    text = metrics.render().decode()
    assert 'gateway_pages_total{kind="confirm",status="200"} 3.0' in text
    assert 'gateway_pages_total{kind="paid",status="409"} 1.0' in text
    assert 'gateway_bot_previews_total{bot="Slackbot"} 2.0' in text
    assert any(
        line.startswith("# TYPE gateway_bot_previews") and line.endswith(" counter")
        for line in text.splitlines()
    )
