"""Cost of one visitor classification, cold (no cache hit) and cached.

Run by hand: ``.venv/bin/python bench/classify.py``. Not a test: timings depend on the machine.

The mix is drawn from the labelled corpus (tests/data/user_agents/corpus.csv) to look like a
payment link's visitors: mostly people on phones (recent mobile Safari / Chrome / Samsung
strings), many of them in in-app browsers, and some bots (previews, mail scanners, crawlers).
Cold calls use each distinct string once on a fresh classifier (so every call misses the
cache); cached calls repeat strings already classified.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import statistics
import time
from pathlib import Path

from gateway.visitors import Classifier

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "user_agents" / "corpus.csv"
RECENT_PHONE = re.compile(
    r"(?:iPhone OS 1[5-9]_|Android 1[0-5]; ).*(?:Version/1[5-9][\d.]* Mobile/\w+ Safari|"
    r"Chrome/1[0-4]\d\.[\d.]+ Mobile Safari)"
)
HEADERS = {"Accept-Language": "en-GB,en;q=0.9", "Sec-Fetch-Mode": "navigate"}


def build_mix(size: int, seed: int) -> list[str]:
    with CORPUS.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    phones = [
        r["user_agent"]
        for r in rows
        if r["label"] == "human" and RECENT_PHONE.search(r["user_agent"])
    ]
    in_app = [r["user_agent"] for r in rows if r["label"] == "in_app"]
    bots = [
        r["user_agent"] for r in rows if r["label"] in ("preview", "scanner", "crawler", "tool")
    ]
    rng = random.Random(seed)
    # 60 % phone browsers, 30 % in-app browsers, 10 % bots.
    mix = rng.sample(phones, min(len(phones), size * 6 // 10))
    mix += rng.sample(in_app, min(len(in_app), size * 3 // 10))
    mix += rng.sample(bots, min(len(bots), size // 10))
    rng.shuffle(mix)
    return mix


def timings(classifier: Classifier, uas: list[str]) -> list[float]:
    out: list[float] = []
    clock = time.perf_counter_ns
    for ua in uas:
        start = clock()
        classifier.classify(ua, HEADERS)
        out.append((clock() - start) / 1000)
    return out


def report(label: str, values: list[float]) -> None:
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    print(
        f"{label:8} n={len(values):6}  median {statistics.median(values):8.2f} µs"
        f"  p99 {p99:9.2f} µs  mean {statistics.fmean(values):8.2f} µs"
    )


def measure(size: int = 2000, seed: int = 1) -> dict[str, dict[str, float]]:
    """Median and p99 µs per call, cold and cached, on the mix (for bench/run.py's table)."""
    mix = build_mix(size, seed)
    warm = Classifier(cache_size=0)
    warm.classify("warm-up: compile the regexes")
    warm.classify("Mozilla/5.0 (X11; U; Linux i686) Gecko/20071127 Firefox/2.0.0.11 Foo")
    classifier = Classifier(cache_size=len(mix) + 1)
    out: dict[str, dict[str, float]] = {}
    for label in ("cold", "cached"):  # the second pass repeats every string: every call hits
        values = sorted(timings(classifier, mix))
        out[label] = {
            "n": len(values),
            "median_us": statistics.median(values),
            "p99_us": values[min(len(values) - 1, int(len(values) * 0.99))],
            "mean_us": statistics.fmean(values),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    mix = build_mix(args.size, args.seed)
    shares = {
        "phones": sum(1 for ua in mix if RECENT_PHONE.search(ua)),
        "total": len(mix),
    }
    print(f"mix: {shares}")

    warm = Classifier(cache_size=0)
    warm.classify("warm-up: compile the regexes")  # first call pays for lazy compiles
    warm.classify("Mozilla/5.0 (X11; U; Linux i686) Gecko/20071127 Firefox/2.0.0.11 Foo")

    cold = Classifier(cache_size=len(mix) + 1)
    report("cold", timings(cold, mix))  # every string is new to this classifier
    report("cached", timings(cold, mix))  # the same strings again: every call hits

    by_kind: dict[str, list[float]] = {}
    fresh = Classifier(cache_size=0)
    for ua in mix:
        start = time.perf_counter_ns()
        visitor = fresh.classify(ua, HEADERS)
        key = "in-app" if visitor.in_app else visitor.kind
        by_kind.setdefault(key, []).append((time.perf_counter_ns() - start) / 1000)
    for kind, values in sorted(by_kind.items()):
        report(f"  {kind}", values)


if __name__ == "__main__":
    main()
