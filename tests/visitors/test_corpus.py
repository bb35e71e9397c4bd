"""Score the classifier on the labelled corpus and fail below the product's figures.

The corpus (tests/data/user_agents/corpus.csv, built by scripts/build_ua_corpus.py) holds real
user agents from public, maintained sources with a label and a source per row. Run with ``-s``
to see the report table.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from gateway.visitors import Classifier
from gateway.visitors.classifier import MAX_LENGTH
from gateway.visitors.signatures import SIGNATURES

DATA = Path(__file__).resolve().parent.parent / "data" / "user_agents"
BOT_LABELS = ("preview", "scanner", "crawler", "tool")

# Figures from the issue: bot recall per category, and false positives on people.
MIN_PREVIEW_RECALL = 0.99
MIN_SCANNER_RECALL = 0.97
MIN_BOT_RECALL = 0.95
MAX_HUMAN_FALSE_POSITIVES = 0.001
MAX_IN_APP_FALSE_POSITIVES = 0


def _rows() -> list[dict[str, str]]:
    with (DATA / "corpus.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def scores() -> dict[str, tuple[int, int]]:
    classifier = Classifier(cache_size=0)
    right: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    wrong: dict[str, list[str]] = defaultdict(list)
    for row in _rows():
        label, ua = row["label"], row["user_agent"]
        visitor = classifier.classify(ua)
        correct = visitor.is_bot if label in BOT_LABELS else not visitor.is_bot
        for group in (label, "all bots") if label in BOT_LABELS else (label, "all people"):
            total[group] += 1
            right[group] += correct
        if label in ("preview", "scanner"):
            total[f"{label} kind"] += 1
            right[f"{label} kind"] += visitor.kind == label and visitor.listed
        if label == "in_app":
            total["in_app named"] += 1
            right["in_app named"] += visitor.in_app is not None
        if not correct:
            wrong[label].append(f"{ua[:110]!r} -> {visitor.kind}/{visitor.name} [{row['source']}]")

    print("\nvisitor classifier on the corpus (bots: recall; people: share classified human)")
    print(f"{'category':16} {'right':>7} {'total':>7} {'rate':>8}")
    for group in sorted(total):
        rate = right[group] / total[group]
        print(f"{group:16} {right[group]:7} {total[group]:7} {rate:8.4f}")
    for label, examples in sorted(wrong.items()):
        print(f"misclassified {label} ({len(examples)}), first ones:")
        for example in examples[:5]:
            print(f"  {example}")
    return {group: (right[group], total[group]) for group in total}


def _rate(scores: dict[str, tuple[int, int]], group: str) -> float:
    right, total = scores[group]
    assert total > 0, f"corpus has no {group} rows"
    return right / total


def test_link_preview_recall(scores: dict[str, tuple[int, int]]) -> None:
    assert _rate(scores, "preview") >= MIN_PREVIEW_RECALL


def test_mail_scanner_recall(scores: dict[str, tuple[int, int]]) -> None:
    assert _rate(scores, "scanner") >= MIN_SCANNER_RECALL


def test_all_bots_recall(scores: dict[str, tuple[int, int]]) -> None:
    assert _rate(scores, "all bots") >= MIN_BOT_RECALL


def test_false_positives_on_people(scores: dict[str, tuple[int, int]]) -> None:
    right, total = scores["human"]
    assert (total - right) / total <= MAX_HUMAN_FALSE_POSITIVES


def test_no_false_positive_on_in_app_browsers(scores: dict[str, tuple[int, int]]) -> None:
    right, total = scores["in_app"]
    assert total - right == MAX_IN_APP_FALSE_POSITIVES


def test_corpus_is_rich_in_the_categories_that_matter() -> None:
    counts: dict[str, int] = defaultdict(int)
    for row in _rows():
        counts[row["label"]] += 1
        assert row["source"], f"row without a source: {row['user_agent']!r}"
    assert counts["preview"] >= 100
    assert counts["in_app"] >= 500
    assert counts["human"] >= 5000
    assert counts["scanner"] >= 3


def test_signature_needles_never_hide_a_regex_match() -> None:
    """The needle prefilter must not miss any corpus string a signature's regex matches."""
    import re

    for row in _rows():
        ua = row["user_agent"][:MAX_LENGTH]
        lowered = ua.lower()
        for signature in SIGNATURES:
            if re.search(signature.pattern, ua, re.IGNORECASE):
                assert any(needle in lowered for needle in signature.needles), (
                    signature.name,
                    ua,
                )
