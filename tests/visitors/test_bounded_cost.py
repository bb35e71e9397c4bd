"""Classifying any user agent has a bounded cost (issue 10, item 6; docs/design.md §8): the work is
bounded by structure, not by a timing assertion (bench/classify.py measures the time).

- a user agent longer than ``MAX_LENGTH`` is answered without reading it, and not cached;
- every matcher is given at most ``MAX_LENGTH`` characters, whatever the input;
- the matchers that were quadratic are linear now (the Android template's fields).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import gateway.visitors.classifier as classifier_module
from gateway.visitors import Classifier
from gateway.visitors.classifier import MAX_LENGTH
from gateway.visitors.names import OVER_LONG

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)


def hostile(n: int) -> Iterator[str]:
    rng = random.Random(n)
    units = ("compatible; ", "bot", "(iPhone", "; wv)", "FBAN/", "http://", "Mozilla/5.0 (", "o")
    for unit in units:
        yield (unit * (n // len(unit) + 1))[:n]
    yield (IPHONE + " " + "A" * n)[:n]
    yield "".join(chr(rng.randrange(32, 127)) for _ in range(n))
    yield bytes(rng.randrange(256) for _ in range(n)).decode("utf-8", "surrogateescape")
    yield "İ" * n  # lower-cases to twice as many characters


class Spy:
    """Wraps a matcher and keeps the length of the longest string it was given."""

    def __init__(self, target: Any, method: str | None = None) -> None:
        self.target, self.method, self.longest, self.calls = target, method, 0, 0

    def _note(self, args: tuple[Any, ...]) -> None:
        self.calls += 1
        self.longest = max([self.longest, *(len(a) for a in args if isinstance(a, str))])

    def __call__(self, *args: Any) -> Any:
        self._note(args)
        return self.target(*args)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        inner = getattr(self.target, name)

        def call(*args: Any) -> Any:
            self._note(args)
            return inner(*args)

        return call


MATCHERS = (
    "BROWSER_TEMPLATE",
    "_SIGNATURES",
    "_IN_APPS",
    "_BROWSER_SHAPE",
    "_IOS_WEBVIEW",
    "_HUMAN_WORDS",
    "CRAWLERS",
    "is_template_bot",
    "_has_bot_marks",
    "_mozilla_only",
    "tool_name",
    "crawler_name",
    "browser_facts",
    "_cheap_facts",
)


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> dict[str, Spy]:
    out = {}
    for name in MATCHERS:
        spy = Spy(getattr(classifier_module, name))
        monkeypatch.setattr(classifier_module, name, spy)
        out[name] = spy
    return out


@pytest.mark.parametrize("n", [64, MAX_LENGTH - 1, MAX_LENGTH, MAX_LENGTH + 1, 1024, 8192])
def test_no_matcher_reads_more_than_the_length_cap(spies: dict[str, Spy], n: int) -> None:
    classifier = Classifier(cache_size=0, extra_patterns=["zorblat"])
    for ua in hostile(n):
        calls = sum(spy.calls for spy in spies.values())
        classifier.classify(ua, {"Accept-Language": "en"})
        read = sum(spy.calls for spy in spies.values()) > calls
        assert read is (len(ua.strip()) <= MAX_LENGTH)  # a longer one is answered unread
    for name, spy in spies.items():
        assert spy.longest <= MAX_LENGTH, name


def test_an_over_long_user_agent_is_a_tool_answered_without_caching() -> None:
    classifier = Classifier()
    long_phone = IPHONE + " " + "A" * (MAX_LENGTH - len(IPHONE))
    assert len(long_phone) == MAX_LENGTH + 1
    visitor = classifier.classify(long_phone)
    assert (visitor.is_bot, visitor.kind, visitor.name, visitor.listed) == (
        True,
        "tool",
        OVER_LONG,
        False,  # a person with such a string may still press Pay from the confirm view
    )
    assert classifier.classify("x" * 8192).name == OVER_LONG
    assert classifier._cached.cache_info().currsize == 0  # the cache's keys stay short


def test_spaces_around_do_not_count_towards_the_cap() -> None:
    padded = " " * 600 + IPHONE + " " * 600
    visitor = Classifier().classify(padded)
    assert (visitor.is_bot, visitor.browser) == (False, "Mobile Safari")


def test_the_longest_real_user_agents_are_under_the_cap() -> None:
    """The corpus's longest (419 characters: an Android WebView with an app's tokens) is read."""
    ua = (
        "Mozilla/5.0 (Linux; Android 16; SM-A576W Build/BP4A.251205.006; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/151.0.7922.199 Mobile Safari/537.36 "
    ) + "hexinFont/normal hexinTheme/1 " * 9
    assert len(ua) < MAX_LENGTH
    assert Classifier().classify(ua).is_bot is False


def test_android_fields_with_a_versioned_bot_token_are_not_the_template() -> None:
    """The check that used to be a lookahead in each field (quadratic in a field's length) runs
    after the match: Google's shopping and Duplex fetchers still are not people."""
    for token in ("Storebot-Google/1.0", "DuplexWeb-Google/1.0", "Zorgbot/2"):
        ua = (
            f"Mozilla/5.0 (Linux; Android 8.0; Pixel 2; {token}) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/79.0.3945.79 Mobile Safari/537.36"
        )
        assert Classifier().classify(ua).is_bot is True, token
    person = (
        "Mozilla/5.0 (Linux; Android 11; Bot 5 Pro Build/RP1A) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/118.0.0.0 Mobile Safari/537.36"
    )
    assert Classifier().classify(person).is_bot is False


def test_no_corpus_string_reaches_the_cap() -> None:
    """The cap loses no real user agent: every corpus string (15,478 from public sources) is read."""
    corpus = Path(__file__).resolve().parent.parent / "data" / "user_agents" / "corpus.csv"
    with corpus.open(encoding="utf-8", newline="") as handle:
        longest = max(len(row["user_agent"].strip()) for row in csv.DictReader(handle))
    assert longest < MAX_LENGTH * 0.85
