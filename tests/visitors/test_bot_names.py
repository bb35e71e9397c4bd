"""Bot previews are named from a bounded set (issue 10, item 7): a user agent cannot choose a
metric label or a stored row."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from gateway.visitors import Classifier
from gateway.visitors.names import BOT_NAMES, OTHER, bot_label, crawler_name

CORPUS = Path(__file__).resolve().parent.parent / "data" / "user_agents" / "corpus.csv"

MADE_UP = [
    "Zorg{i}bot/1.0 (+https://zorg{i}.example/bot)",
    "Mozilla/5.0 (compatible; Quux{i}Crawler/2.1; +http://quux{i}.example)",
    "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Safari/537.36"
    " Fetch{i}Spider/0.{i}",
    "made-up-client-{i}/3.{i}",
    "Mozilla/5.0 (Frobnicator{i})",
]


@pytest.mark.parametrize("template", MADE_UP)
def test_made_up_bot_names_are_all_other(template: str) -> None:
    classifier = Classifier(cache_size=0)
    names = set()
    for i in range(200):
        visitor = classifier.classify(template.format(i=i))
        assert visitor.is_bot
        names.add(visitor.name)
    assert names == {OTHER}


def test_every_bot_name_the_corpus_produces_is_in_the_bounded_set() -> None:
    classifier = Classifier(cache_size=0)
    with CORPUS.open(encoding="utf-8", newline="") as handle:
        visitors = [classifier.classify(row["user_agent"]) for row in csv.DictReader(handle)]
    names = {v.name for v in visitors if v.is_bot}
    assert names <= BOT_NAMES
    # Known crawlers keep their names for the admin: not everything collapses into "other".
    assert {"Googlebot", "Bing", "Yandex", "Slackbot", "WhatsApp", "curl"} <= names


def test_well_known_crawlers_keep_a_name() -> None:
    classifier = Classifier()
    bing = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
    assert classifier.classify(bing).name == "Bing"
    gpt = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2)"
    assert classifier.classify(gpt).name == "OpenAI"
    assert crawler_name("yandexbot/3.0") == "Yandex"
    assert crawler_name("zorgbot/1.0") == OTHER


def test_config_patterns_name_their_bots() -> None:
    visitor = Classifier(extra_patterns=[r"zorblat/\d"]).classify("Zorblat/2.0")
    assert visitor.name == r"config: zorblat/\d"
    assert bot_label(visitor.name) == visitor.name


def test_bot_label_maps_any_other_name_to_other() -> None:
    for name in BOT_NAMES:
        assert bot_label(name) == name
    assert bot_label("Zorg1bot") == OTHER
    assert bot_label("\udcff\udcfe") == OTHER
    assert bot_label("") == OTHER
    assert len(BOT_NAMES) < 200
