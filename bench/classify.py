"""Cost of one visitor classification: cold (no cache hit) and cached on a realistic mix, and
cold on adversarial inputs up to 8 KB.

Run by hand: ``.venv/bin/python bench/classify.py``. Not a test: timings depend on the machine.

The mix is drawn from the labelled corpus (tests/data/user_agents/corpus.csv) to look like a
payment link's visitors: mostly people on phones (recent mobile Safari / Chrome / Samsung
strings), many of them in in-app browsers, and some bots (previews, mail scanners, crawlers).
Cold calls use each distinct string once on a fresh classifier (so every call misses the
cache); cached calls repeat strings already classified. docs/design.md §8: median under 30 µs
cold and under 2 µs cached.

The adversarial inputs are what a visitor could send to make classification slow (docs/design.md §8:
any user agent up to 8 KB in at most 1 ms): long strings, one token or one character repeated
(every printable ASCII character, and the tokens the matchers look for: "compatible; ", "bot",
"(iPhone", "; wv)", "FBAN/", "http://", browser words...), a real phone's string padded, random
letters, random printable ASCII and random bytes (decoded as aiohttp does, with surrogateescape),
each at 256, 511, 512, 513, 1024, 2048, 4096 and 8192 characters. Every call is cold (a fresh
classifier); each input is timed ``--repeat`` times and its best time kept, so that the figure
is the work the call does and not the scheduler's preemptions on a shared machine. The rows
give the median, p99 and max over inputs, and the slowest input.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

from gateway.visitors import Classifier

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "user_agents" / "corpus.csv"
RECENT_PHONE = re.compile(
    r"(?:iPhone OS 1[5-9]_|Android 1[0-5]; ).*(?:Version/1[5-9][\d.]* Mobile/\w+ Safari|"
    r"Chrome/1[0-4]\d\.[\d.]+ Mobile Safari)"
)
HEADERS = {"Accept-Language": "en-GB,en;q=0.9", "Sec-Fetch-Mode": "navigate"}
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
ANDROID_WEBVIEW = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 "
)
LENGTHS = (256, 511, 512, 513, 1024, 2048, 4096, 8192)
# Tokens the matchers look for, and shapes that once made one of them quadratic.
TOKENS = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 ",
    "compatible; ",
    "Mozilla/4.0 (compatible; MSIE ",
    "(iPhone",
    "bot",
    "xbot",
    "Google",
    "Googlebot/2.1 ",
    "FBAN/",
    "; wv)",
    "http://",
    "Safari/604.1 ",
    "Gecko/",
    "Microsoft Office ",
    "1.",
    "java",
    "go ",
    "newsblur ",
    "Series ",
)
PREFIXES = (
    "",
    "Mozilla/5.0 (",
    "Mozilla/5.0 (Linux; Android 10; ",
    "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/",
    IPHONE + " ",
    ANDROID_WEBVIEW,
)


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


def adversarial(seed: int = 1) -> Iterator[tuple[str, str]]:
    """(name, user agent) pairs built to be slow to classify."""
    rng = random.Random(seed)

    def fill(unit: str, n: int) -> str:
        return (unit * (n // len(unit) + 1))[:n]

    for n in LENGTHS:
        for prefix in PREFIXES:
            for token in TOKENS:
                yield f"{n} {prefix[:14]!r}+{token!r}", (prefix + fill(token, n))[:n]
        for code in range(33, 127):
            yield f"{n} {chr(code)!r}*", chr(code) * n
            yield f"{n} 'Mozilla/5.0 ('+{chr(code)!r}*", ("Mozilla/5.0 (" + chr(code) * n)[:n]
        yield f"{n} iPhone padded", (IPHONE + " " + "A" * n)[:n]
        yield f"{n} letters", "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0-_") for _ in range(n))
        yield f"{n} ascii", "".join(chr(rng.randrange(32, 127)) for _ in range(n))
        raw = bytes(rng.randrange(256) for _ in range(n))
        yield f"{n} bytes", raw.decode("utf-8", "surrogateescape")
        yield f"{n} unicode", "".join(chr(rng.randrange(0xA0, 0x3000)) for _ in range(n))
        yield f"{n} dotted I", "İ" * n  # lower-cases to two characters


def timings(classifier: Classifier, uas: list[str]) -> list[float]:
    out: list[float] = []
    clock = time.perf_counter_ns
    for ua in uas:
        start = clock()
        classifier.classify(ua, HEADERS)
        out.append((clock() - start) / 1000)
    return out


def cold_best(ua: str, repeat: int) -> float:
    """µs for one cold call, the best of ``repeat`` (each on a fresh classifier)."""
    best = float("inf")
    clock = time.perf_counter_ns
    for _ in range(repeat):
        classifier = Classifier(cache_size=0)
        start = clock()
        classifier.classify(ua, HEADERS)
        best = min(best, (clock() - start) / 1000)
    return best


def summary(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {
        "n": len(values),
        "median_us": statistics.median(values),
        "p99_us": values[min(len(values) - 1, int(len(values) * 0.99))],
        "mean_us": statistics.fmean(values),
        "max_us": values[-1],
    }


def report(label: str, values: list[float]) -> None:
    m = summary(values)
    print(
        f"{label:8} n={m['n']:6.0f}  median {m['median_us']:8.2f} µs"
        f"  p99 {m['p99_us']:9.2f} µs  mean {m['mean_us']:8.2f} µs"
    )


def warm_up() -> None:
    warm = Classifier(cache_size=0)
    warm.classify("warm-up: compile the regexes")  # first call pays for lazy compiles
    warm.classify("Mozilla/5.0 (X11; U; Linux i686) Gecko/20071127 Firefox/2.0.0.11 Foo")


def measure_adversarial(repeat: int = 3, seed: int = 1) -> dict[str, dict[str, float | str]]:
    """Median, p99 and max µs per cold call on the adversarial inputs, up to the length cap
    (read by the matchers) and past it (answered without reading)."""
    warm_up()
    groups: dict[str, list[tuple[float, str]]] = {"up to 512": [], "513 to 8192": []}
    for name, ua in adversarial(seed):
        group = "up to 512" if len(ua) <= 512 else "513 to 8192"
        groups[group].append((cold_best(ua, repeat), name))
    out: dict[str, dict[str, float | str]] = {}
    for group, rows in groups.items():
        stats: dict[str, float | str] = dict(summary([t for t, _ in rows]))
        stats["slowest"] = max(rows)[1]
        out[group] = stats
    return out


def measure(size: int = 2000, seed: int = 1) -> dict[str, dict[str, float | str]]:
    """Median and p99 µs per call, cold and cached, on the mix (for bench/run.py's table), and
    the adversarial rows."""
    mix = build_mix(size, seed)
    warm_up()
    classifier = Classifier(cache_size=len(mix) + 1)
    out: dict[str, dict[str, float | str]] = {}
    for label in ("cold", "cached"):  # the second pass repeats every string: every call hits
        out[label] = dict(summary(timings(classifier, mix)))
    for group, stats in measure_adversarial(seed=seed).items():
        out[f"adversarial {group}"] = stats
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="timings per adversarial input")
    args = parser.parse_args()
    mix = build_mix(args.size, args.seed)
    shares = {
        "phones": sum(1 for ua in mix if RECENT_PHONE.search(ua)),
        "total": len(mix),
    }
    print(f"mix: {shares}")
    warm_up()

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

    print(f"adversarial, cold, best of {args.repeat} per input (target: max <= 1000 µs):")
    for group, m in measure_adversarial(args.repeat, args.seed).items():
        print(
            f"  {group:12} n={m['n']:5.0f}  median {m['median_us']:8.2f} µs"
            f"  p99 {m['p99_us']:8.2f} µs  max {m['max_us']:8.2f} µs  (slowest: {m['slowest']})"
        )


if __name__ == "__main__":
    main()
