"""The crawler list compiled into cheap matchers (``gateway.visitors.crawlers``) gives the same
verdict as crawlerdetect's own regular expression, which costs ~3 µs per character."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from crawlerdetect.crawlerdetect import get_compiled_crawler_regex, get_compiled_exclusions_regex
from crawlerdetect.providers.crawlers import data as crawler_patterns

from gateway.visitors.crawlers import CRAWLERS, _alternatives, _literal, factored, trie_pattern

CORPUS = Path(__file__).resolve().parent.parent / "data" / "user_agents" / "corpus.csv"
WRAPPERS = ("{x}", "Mozilla/5.0 (compatible; {x}/1.0)", "x{x} Safari/537.36")
PHONE = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 {x}"


def crawlerdetect_says(ua: str) -> bool:
    agent = get_compiled_exclusions_regex().sub("", ua)
    return bool(agent.strip()) and get_compiled_crawler_regex().search(agent) is not None


def corpus_sample() -> list[str]:
    """One bot or in-app row in three and one person's row in sixteen: the reference costs ~0.5
    ms a string (tests/visitors/test_corpus.py scores the classifier on every row)."""
    with CORPUS.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        r["user_agent"] for i, r in enumerate(rows) if i % (16 if r["label"] == "human" else 3) == 0
    ]


def from_patterns() -> list[str]:
    """A string made from each alternative of each pattern, in a few surroundings and cases."""
    out = []
    for pattern in crawler_patterns:
        for alt in _alternatives(pattern):
            body = alt.removeprefix("^").removesuffix("$")
            text = _literal(body)
            if text is None:  # a rough example: drop classes, repeats and groups' marks
                text = re.sub(r"\\(.)", r"\1", re.sub(r"\[[^\]]*\]\*?|\.\*|[()?*+]", "", body))
            out += [wrapper.format(x=text) for wrapper in WRAPPERS]
            out += [text.upper(), PHONE.format(x=text)]
    return out


@pytest.mark.parametrize("source", ["corpus", "patterns"])
def test_same_verdict_as_crawlerdetect(source: str) -> None:
    strings = corpus_sample() if source == "corpus" else from_patterns()
    different = [ua for ua in strings if CRAWLERS.matches(ua.lower()) != crawlerdetect_says(ua)]
    assert different == []
    assert sum(map(crawlerdetect_says, strings)) > len(strings) // 4  # not vacuous


def test_every_pattern_lands_in_a_cheap_matcher() -> None:
    """Most patterns are words in one trie; the few regexes left begin with a plain character
    (so the factored alternation tests one branch per first character), and none has the
    ``.*`` that made a search quadratic: "word.*rest" runs as find + search."""
    assert len(CRAWLERS.words) > 1000
    assert {word for word, _ in CRAWLERS.then} == {"java", "newsblur "}
    for regex in CRAWLERS.regexes:
        assert ".*" not in regex
        assert regex[0].isalnum(), regex
    # The catch-all "[a-z0-9\-_]*(bot|crawl|...)" became plain words.
    assert {"bot", "crawl", "spider"} <= set(CRAWLERS.words)


def test_trie_matches_the_longest_word_at_the_leftmost_position() -> None:
    regex = re.compile(trie_pattern(["ab", "abc", "abd", "x", "xyz"]))
    assert [m.group() for m in regex.finditer("zab abc abdz xy xyz")] == [
        "ab",
        "abc",
        "abd",
        "x",
        "xyz",
    ]


def test_factoring_keeps_the_first_alternative_that_matches() -> None:
    alternatives = ["ab", "a", "(x)?b", "abc", "b"]
    regex = re.compile(factored(alternatives))
    plain = re.compile("|".join(alternatives))
    for text in ("abc", "ab", "xb", "b", "a", "zz"):
        assert regex.sub("-", text) == plain.sub("-", text)
