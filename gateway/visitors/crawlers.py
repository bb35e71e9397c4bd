r"""The broad crawler list (crawlerdetect's patterns) as matchers whose cost is bounded.

crawlerdetect ships ~1,460 case-insensitive patterns and joins them into one regular expression.
Python's ``re`` has no multi-pattern search: it tries every alternative at every position, so
one search costs ~3 µs per character (~450 µs for a phone's string, ~100 ms for a 1 KB one), and
its catch-all ``[a-z0-9\-_]*(bot|crawl|...)`` is quadratic in the length of a word. Here the same
patterns are sorted once, at import, and run on the lower-cased string:

- plain words (``Googlebot``, ``Asana/``: ~1,400 of them): one regular expression built as a
  trie, so each position costs a few character tests, not ~1,400 alternatives;
- words anchored at the start or the end (``^Java/``, ``DebugBear$``): ``str.startswith`` and
  ``str.endswith`` on tuples;
- a pattern that begins with a repeated class (``[a-z0-9\-_]*(bot|crawl|...)``) matches exactly
  where the rest of it matches, so the repeat is dropped (the rest is plain words again);
- the ~25 real regular expressions left (``Daum(oa)?[ \/][0-9]``, ``Java.*outbrain``): each
  runs only when every literal run it requires (``daum``; ``java`` and ``outbrain``) is in the
  string, which bounds their cost on strings built to make them work.

The exclusions crawlerdetect removes first (browser words such as ``Safari/604.1``, ``cubot``,
``; M bot``) run as one regular expression on the lower-cased string (lower-casing the string
once is ~4x cheaper than ``re.IGNORECASE``). Only the verdict is kept, not the matched text: a
crawler's name comes from ``names.KNOWN_CRAWLERS``. tests/visitors/test_crawlers.py checks that
the verdict is crawlerdetect's own on the corpus and on strings made from every pattern.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Final, TypeAlias

from crawlerdetect.providers.crawlers import data as _crawler_patterns
from crawlerdetect.providers.exclusions import data as _exclusion_patterns

_META: Final = frozenset(".^$*+?{}[]()|")
# "word.*rest", whose search is quadratic when "word" repeats: run as find + search.
_WORD_THEN: Final = re.compile(r"^((?:[^.^$*+?{}\[\]()|\\]|\\[^A-Za-z0-9])+)\.\*(.+)$")
# A class, any character or a class escape, repeated zero or more times, at the start.
_LEADING_REPEAT: Final = re.compile(r"^(?:\[(?:\\.|[^\]\\])*\]|\.|\\[A-Za-z])\*")


def lower_pattern(pattern: str) -> str:
    """``pattern`` for lower-cased text: literal letters lowered, escapes (``\\D``) kept."""
    out: list[str] = []
    escaped = False
    for char in pattern:
        out.append(char if escaped else char.lower())
        escaped = not escaped and char == "\\"
    return "".join(out)


def _structure(pattern: str) -> Iterator[tuple[int, str, int]]:
    """(index, character, group depth after it) for each character of ``pattern`` that is
    regex syntax: not escaped and not inside a character class."""
    depth, escaped, in_class = 0, False, False
    for i, char in enumerate(pattern):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        else:
            depth += (char == "(") - (char == ")")
            yield i, char, depth


def _alternatives(pattern: str) -> list[str]:
    """``pattern`` split at its top-level ``|``."""
    parts: list[str] = []
    start = 0
    for i, char, depth in _structure(pattern):
        if char == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
    parts.append(pattern[start:])
    return parts


def _literal(pattern: str) -> str | None:
    """The lower-cased text ``pattern`` matches, if it is plain text (escapes allowed)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if i + 1 == len(pattern) or pattern[i + 1].isalnum():
                return None  # \d, \b, \w...
            out.append(pattern[i + 1])
            i += 2
            continue
        if char in _META:
            return None
        out.append(char)
        i += 1
    return "".join(out).lower()


def factored(alternatives: Iterable[str]) -> str:
    """``alternatives`` joined with ``|``, with those that begin with the same plain character
    grouped under it (``s(?:afari...|uper...)``), so the engine tests ~20 first characters at
    each position instead of every alternative. An alternative that does not begin with a plain
    character ends a group, so the first alternative to match at a position is the same one."""
    out: list[str] = []
    groups: dict[str, list[str]] = {}

    def close() -> None:
        for char, rests in groups.items():
            body = rests[0] if len(rests) == 1 else "(?:" + "|".join(rests) + ")"
            out.append(re.escape(char) + body)
        groups.clear()

    for alt in alternatives:
        first, rest = _first_char(alt)
        if first is None:
            close()
            out.append(alt)
        else:
            groups.setdefault(first, []).append(rest)
    close()
    return "|".join(out)


def _first_char(pattern: str) -> tuple[str | None, str]:
    """The plain character ``pattern`` must begin with, and the rest of it; or (None, pattern)."""
    if pattern[:1] == "\\" and len(pattern) > 1 and not pattern[1].isalnum():
        first, rest = pattern[1], pattern[2:]
    elif pattern[:1] and pattern[0] not in _META and pattern[0] != "\\":
        first, rest = pattern[0], pattern[1:]
    else:
        return None, pattern
    if rest[:1] in ("?", "*", "+", "{"):  # the character is repeated or optional
        return None, pattern
    return first, rest


class CrawlerList:
    """One verdict per (lower-cased) user agent: does crawlerdetect's list match it?"""

    def __init__(self, patterns: Iterable[str], exclusions: Iterable[str]) -> None:
        words: set[str] = set()
        prefixes: set[str] = set()
        suffixes: set[str] = set()
        exact: set[str] = set()
        regexes: list[str] = []
        anchored: list[str] = []
        then: list[tuple[str, str]] = []
        pending = [alt for pattern in patterns for alt in _alternatives(pattern)]
        while pending:
            alt = pending.pop()
            if not alt:
                continue
            # A leading repeat that may match nothing (``[a-z0-9\-_]*``, ``.*``): drop it.
            stripped = _LEADING_REPEAT.sub("", alt)
            if stripped and stripped != alt:
                pending.append(stripped)
                continue
            # A whole-pattern group (``(bot|crawl)``): its alternatives instead.
            if alt.startswith("(") and alt.endswith(")") and _closes_at_end(alt):
                inner = alt[3:-1] if alt.startswith("(?:") else alt[1:-1]
                if not inner.startswith("?"):
                    pending.extend(_alternatives(inner))
                    continue
            anchored_start = alt.startswith("^")
            anchored_end = alt.endswith("$") and not alt.endswith("\\$")
            body = alt[1 if anchored_start else 0 : -1 if anchored_end else None]
            text = _literal(body)
            if text is None or not text:
                if (pair := _WORD_THEN.match(alt)) and (word := _literal(pair[1])):
                    then.append((word, lower_pattern(pair[2])))  # java.*outbrain
                elif anchored_start:
                    anchored.append(lower_pattern(alt[1:]))
                else:
                    regexes.append(lower_pattern(alt))
            elif anchored_start and anchored_end:
                exact.update((text, text + "\n"))  # "$" also matches before a final newline
            elif anchored_start:
                prefixes.add(text)
            elif anchored_end:
                suffixes.update((text, text + "\n"))
            else:
                words.add(text)
        self.words = tuple(sorted(words))
        self.prefixes = tuple(sorted(prefixes))
        self.suffixes = tuple(sorted(suffixes))
        self.exact = frozenset(exact)
        self.regexes = tuple(sorted(regexes))
        self.anchored = tuple(sorted(anchored))
        self.then = tuple((word, re.compile(rest)) for word, rest in sorted(then))
        self._words = _compiled(trie_pattern(self.words))
        self._regexes = _compiled(factored(self.regexes))
        self._anchored = _compiled("|".join(self.anchored))
        alternatives = [alt for p in exclusions for alt in _alternatives(lower_pattern(p))]
        self._exclusions = re.compile(factored(alternatives))

    def matches(self, lowered: str) -> bool:
        """Whether the list matches ``lowered`` (a lower-cased user agent) once the browser
        words are removed, as crawlerdetect decides it."""
        agent = self._exclusions.sub("", lowered)
        if not agent.strip():
            return False
        if agent.startswith(self.prefixes) or agent.endswith(self.suffixes) or agent in self.exact:
            return True
        if self._words.search(agent) or self._anchored.match(agent) or self._regexes.search(agent):
            return True
        for word, rest in self.then:  # "word.*rest": the first word decides, in one pass
            start = agent.find(word)
            if start >= 0 and rest.search(agent, start + len(word)):
                return True
        return False


_NEVER: Final = re.compile(r"(?!)")


def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern) if pattern else _NEVER


def _closes_at_end(pattern: str) -> bool:
    """Whether the group opened by the first character closes at the last one."""
    for i, char, depth in _structure(pattern):
        if char == ")" and depth == 0:
            return i == len(pattern) - 1
    return False


_Node: TypeAlias = dict[str, "_Node"]


def trie_pattern(words: Iterable[str]) -> str:
    """One regular expression matching any of ``words`` (the longest at a position), shaped as
    a trie: at each position the engine follows one branch per character instead of trying
    every word."""
    root: _Node = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: _Node) -> str:
        branches = [re.escape(char) + emit(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:  # a word ends here; a longer one may go on
            return f"(?:{body})?" if len(branches) > 1 or len(body) > 1 else f"{body}?"
        return body

    return emit(root)


CRAWLERS: Final = CrawlerList(_crawler_patterns, _exclusion_patterns)
