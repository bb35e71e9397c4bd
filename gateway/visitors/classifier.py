"""Tell people apart from link-preview bots, mail scanners, crawlers and tools.

The gateway asks this for every ``GET /pay/{token}``: a bot gets a harmless preview page, a
person the confirm page. A person misjudged as a bot is not stuck (the preview page links to the
confirm view), but the figures below keep that rare. The steps, in order:

1. empty user agent -> tool; longer than :data:`MAX_LENGTH` -> tool (see below); extra patterns
   from config (``bots``) -> crawler.
2. **fast path**: a string that is exactly a common browser's template -> person, with device
   facts from cheap substring checks (see ``browsers``). This is most traffic.
3. **explicit list** (``signatures``) of link-preview fetchers and mail scanners -> bot,
   ``listed`` (the gateway refuses their POSTs).
4. **in-app overrides** (``inapp``): a browser-shaped string carrying an in-app token (FBAN,
   Instagram, GSA, musical_ly, ``; wv)``...) -> person with ``in_app`` set, unless it also
   carries a bot's marks (a URL, "compatible; ...bot"). These override the broad list below,
   whose words (Facebook, Line, Spider) also occur in phone and app names.
5. **broad crawler list**: ``crawlerdetect``'s ~1,460 patterns, compiled by ``crawlers`` into
   cheap matchers -> crawler (or tool when the string names an HTTP library).
6. **shape rule**: a string that is not a browser engine's (curl, python-requests,
   Go-http-client, an app's HTTP client) -> tool.
7. otherwise an unusual browser: a person, with device facts from substring checks
   (``browsers.browser_facts``).

Request signals (HEAD, no ``Accept-Language``, no ``Sec-Fetch-*``) only lower ``confidence``;
they never turn a recognised browser into a bot, because privacy tools and old browsers omit
them too.

A bot's ``name`` is never text taken from its user agent: it is one of ``names.BOT_NAMES`` (a
signature's, a tool's, a well-known crawler's, or "other") or ``config: <pattern>``, because it
becomes a metric label and a stored row per link (see ``names``).

**Bounded cost.** A visitor chooses the string, so every step must cost little whatever it is.

- *Length cap.* A user agent longer than :data:`MAX_LENGTH` (512 characters, after stripping
  spaces) is not read at all: it is a bot (kind "tool", name "over-long user agent", not
  listed), answered with a constant that is not cached. Real user agents are far shorter: the
  longest of the corpus's 15,478 is 419 characters (an Android WebView with an app's tokens),
  and browsers keep theirs near 100-250. A longer one is a tool, a fuzzer or an attempt to make
  the matchers slow; if it is a person after all, the preview page's link still leads to the
  confirm view, and their Pay is allowed (over-long strings are not ``listed``). So every
  regular expression below reads at most 512 characters, and the cache's keys are at most 512
  characters long.
- *Linear matchers.* The crawler list runs as a trie of words plus a few factored regexes
  (``crawlers``); the template's Android fields, the shape, tool and "Mozilla only" rules and
  the names are linear (substring tests, or one pass on the lower-cased string, which is cut
  to 512 characters too, since a few characters lower-case to two); the ``user-agents`` parse
  (~100 µs-1 ms per string, several ms on crafted ones) is no longer used: an unusual browser's
  device facts come from substring tests (``browsers.browser_facts``).
- bench/classify.py measures both the realistic mix (median, docs/design.md §8) and adversarial
  inputs up to 8 KB (long, repeated tokens, random bytes; max and p99, target at most 1 ms per
  call).

Crawler library, chosen by measurement on this repo's corpus (tests/data/user_agents), scoring
each library on strings from a source that is not its own (device-detector's bot fixtures,
943 strings), plus people (11,126) and in-app browsers (1,187):

=====================  ==============  =================  ===========  ==================
library                device-detector  other's fixtures   people FP    in-app browsers FP
=====================  ==============  =================  ===========  ==================
crawlerdetect 0.4.2    0.736            0.857 (cua, 2069)  0.22 %       0.17 %
crawler-user-agents    0.403            0.899 (CD, 69)     0.26 %       1.35 %
=====================  ==============  =================  ===========  ==================

Both cost ~450 µs per string as one Python regex; ``crawlers`` gives crawlerdetect's verdict
in ~10-60 µs (~150 µs at 512 characters), and only off the fast path.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from .browsers import (
    BROWSER_TEMPLATE,
    BrowserFacts,
    browser_facts,
    desktop_os,
    is_template_bot,
    template_facts,
)
from .crawlers import CRAWLERS
from .headers import clean_header
from .inapp import IN_APP
from .names import CONFIG_PREFIX, EMPTY, OVER_LONG, crawler_name, tool_name
from .signatures import SIGNATURES

VisitorKind = Literal["human", "preview", "scanner", "crawler", "tool"]


@dataclass(frozen=True, slots=True)
class Visitor:
    """What the gateway needs to know about who is asking."""

    is_bot: bool
    kind: VisitorKind
    name: str  # "Mobile Safari", "Slackbot", "curl"... (a bot's: from names.BOT_NAMES)
    in_app: str | None = None  # the app, when a person is in an in-app browser
    listed: bool = False  # matched the explicit preview/scanner list: refuse its POSTs
    confidence: float = 1.0  # 0..1; lowered by missing request signals
    is_mobile: bool = False
    os: str | None = None
    browser: str | None = None


# Longer user agents are not read (see the module's docstring): real ones are under 420.
MAX_LENGTH: Final = 512
_OVER_LONG: Final = Visitor(True, "tool", OVER_LONG, confidence=0.6)


class _NeedleTable:
    """Rows of regexes, each tried only when one of its literal needles is in the string.

    Python's ``re`` has no multi-pattern search: one alternation of 40 patterns costs ~40-200
    µs on a phone's user agent, while 60 substring tests cost a few µs. Needles rarely hit on a
    person's string, so the regexes themselves seldom run. Needles that share a substring
    (``bot`` in slackbot, discordbot, twitterbot...) are tested only when that *gate* is in the
    string: the same hits for about half the substring tests.
    """

    def __init__(self, rows: Sequence[tuple[str, Sequence[str]]], flags: int, lower: bool) -> None:
        self._regexes = tuple(re.compile(pattern, flags) for pattern, _ in rows)
        needles = [(needle, index) for index, (_, row) in enumerate(rows) for needle in row]
        self._gated, self._ungated = _gates(needles)
        self._lower = lower

    def find(self, ua: str, lowered: str) -> int | None:
        """Index of the first row (in row order) whose regex matches ``ua``."""
        text = lowered if self._lower else ua
        hits = [index for needle, index in self._ungated if needle in text]
        for gate, group in self._gated:
            if gate in text:
                hits += [index for needle, index in group if needle in text]
        for index in sorted(set(hits)):
            if self._regexes[index].search(ua):
                return index
        return None


_Needles = tuple[tuple[str, int], ...]


def _gates(needles: list[tuple[str, int]]) -> tuple[tuple[tuple[str, _Needles], ...], _Needles]:
    """Group needles under shared substrings (3 to 6 characters, each shared by 3 needles or
    more, the most shared first); a needle contains its gate, so a hit is never missed."""
    left = list(needles)
    gated: list[tuple[str, _Needles]] = []
    while True:
        shared: dict[str, int] = {}
        for needle, _ in left:
            subs = {needle[i : i + n] for n in range(3, 7) for i in range(len(needle) - n + 1)}
            for sub in subs:
                shared[sub] = shared.get(sub, 0) + 1
        best = max(shared.items(), key=lambda item: (item[1], len(item[0]), item[0]), default=None)
        if best is None or best[1] < 3:
            return tuple(gated), tuple(left)
        gated.append((best[0], tuple(pair for pair in left if best[0] in pair[0])))
        left = [pair for pair in left if best[0] not in pair[0]]


_SIGNATURES: Final = _NeedleTable(
    [(row.pattern, row.needles) for row in SIGNATURES], re.IGNORECASE, lower=True
)
_IN_APPS: Final = _NeedleTable([(row.pattern, row.needles) for row in IN_APP], 0, lower=False)

# Strings a browser engine sends, including TVs' and feature phones' browsers. The rules below
# run on the lower-cased string, without re.IGNORECASE (which costs ~4x per character).
_BROWSER_SHAPE: Final = re.compile(
    r"mozilla|applewebkit|gecko/|presto/|trident/|msie|iemobile|chrome/|safari/|opera|hbbtv|"
    r"browser/|cronet/|opr/|profile/midp|midp-?2|up\.browser|ucweb|netfront|wap[ _-]?browser|maui|"
    r"teleca|obigo|^docomo/"
)
# A "Mozilla" string that names no engine and no platform is a bot dressed as a browser
# ("Mozilla/5.0 (compatible; Attracta)", "Mozilla/5.0 (Google-PhysicalWeb)"): a version, a
# space, then none of these words (substring tests: as one lookahead, ~40 alternatives at each
# position of the string).
_MOZILLA_VERSION: Final = re.compile(r"mozilla/[\d.]+ ")
_PLATFORM_WORDS: Final = (
    "applewebkit",
    "gecko",
    "trident",
    "presto",
    "msie",
    "khtml",
    "opera",
    "windows",
    "linux",
    "android",
    "iphone",
    "ipad",
    "ipod",
    "macintosh",
    "mac os",
    "x11",
    "blackberry",
    "bb10",
    "symbian",
    "nintendo",
    "playstation",
    "xbox",
    "smarttv",
    "tizen",
    "web0s",
    "kaios",
    "mobile",
    "tablet",
    "midp",
    "amigaos",
    "beos",
    "haiku",
    "os/2",
    "sunos",
    "freebsd",
    "openbsd",
    "netbsd",
    "risc os",
    "netfront",
    "browser",
)
_SERIES: Final = re.compile(r"series ?\d")


def _mozilla_only(lowered: str) -> bool:
    version = _MOZILLA_VERSION.match(lowered)
    if version is None:
        return False
    rest = lowered[version.end() :]
    if any(word in rest for word in _PLATFORM_WORDS):
        return False
    return "series" not in rest or _SERIES.search(rest) is None


# Words the broad crawler list misreads in people's strings, removed before it runs (as
# crawlerdetect itself does for "cubot" or "; M bot"): Chromium's network stack on TVs, a TV
# maker, a phone model, a bank's IE branding, a download helper.
_HUMAN_WORDS: Final = re.compile(r"cronet/[\d.]+|botech|speedy \d|banca caboto|qqdownload \d+")
# Marks real in-app browsers never carry, but bots that copy a phone's string do: a URL, or
# "compatible; ...bot" (checked only when the cheap "compatible;" test hits).
_BOT_COMPATIBLE: Final = re.compile(r"\bcompatible; [^;)]*(?:bot|crawl|spider|preview)")


def _has_bot_marks(lowered: str) -> bool:
    if "http://" in lowered or "https://" in lowered:
        return True
    return "compatible;" in lowered and _BOT_COMPATIBLE.search(lowered) is not None


# iOS WKWebView with no app token: "... (KHTML, like Gecko) Mobile/15E148" and no Safari.
_IOS_WEBVIEW: Final = re.compile(
    r"\((?:iPhone|iPad|iPod)[^)]*+\) AppleWebKit/[\d.]+ \(KHTML, like Gecko\) Mobile/\w+$"
)

# Confidence for a person, minus what missing request signals take away.
_HUMAN_CONFIDENCE: Final = 0.95
_PENALTY_HEAD: Final = 0.15
_PENALTY_NO_LANGUAGE: Final = 0.15
_PENALTY_NO_SEC_FETCH: Final = 0.05

# Bits of the cache key's flags.
_HEAD: Final = 1
_HEADERS_GIVEN: Final = 2
_NO_LANGUAGE: Final = 4
_NO_SEC_FETCH: Final = 8


class Classifier:
    """Classifies user agents; results are cached in a bounded LRU per instance.

    ``extra_patterns`` are regular expressions (matched case-insensitively) from the config's
    ``bots`` section: a user agent matching one is a crawler whatever else it looks like. An
    invalid one raises ``ValueError`` naming it.
    """

    def __init__(self, extra_patterns: Sequence[str] = (), cache_size: int = 4096) -> None:
        compiled: list[str] = []
        for pattern in extra_patterns:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as exc:
                raise ValueError(f"invalid bot pattern {pattern!r}: {exc}") from exc
            compiled.append(f"({pattern})")
        self._extra_patterns = tuple(extra_patterns)
        self._extra: re.Pattern[str] | None = (
            re.compile("|".join(compiled), re.IGNORECASE) if compiled else None
        )
        self._cached = functools.lru_cache(maxsize=cache_size)(self._classify)

    def classify(
        self,
        user_agent: str | None,
        headers: Mapping[str, str] | None = None,
        method: str = "GET",
    ) -> Visitor:
        flags = _HEAD if method == "HEAD" else 0
        if headers is not None:
            flags |= _HEADERS_GIVEN
            if not (headers.get("Accept-Language") or headers.get("accept-language")):
                flags |= _NO_LANGUAGE
            if not (
                headers.get("Sec-Fetch-Mode")
                or headers.get("sec-fetch-mode")
                or headers.get("Sec-Fetch-Dest")
                or headers.get("sec-fetch-dest")
            ):
                flags |= _NO_SEC_FETCH
        ua = user_agent or ""
        if len(ua) > MAX_LENGTH and len(ua.strip()) > MAX_LENGTH:
            return _OVER_LONG  # a constant, not cached: the cache's keys stay short
        return self._cached(ua, flags)

    def cache_clear(self) -> None:
        self._cached.cache_clear()

    def _classify(self, user_agent: str, flags: int) -> Visitor:
        # At most MAX_LENGTH characters (classify() answered longer ones). Bytes that are not
        # UTF-8 arrive as lone surrogates: cleaned before anything reads them.
        ua = clean_header(user_agent.strip())
        if not ua:
            return Visitor(True, "tool", EMPTY, confidence=0.9)

        if self._extra is not None and (match := self._extra.search(ua)):
            pattern = self._extra_patterns[(match.lastindex or 1) - 1]
            return Visitor(True, "crawler", f"{CONFIG_PREFIX}{pattern}"[:100], confidence=0.95)

        if (match := BROWSER_TEMPLATE.fullmatch(ua)) and not is_template_bot(
            template := match.lastgroup or "", ua
        ):
            facts = template_facts(template, ua)
            return _human(facts.browser or "browser", None, facts, flags)

        lowered = ua.lower()[:MAX_LENGTH]  # a few characters lower-case to two ("İ")
        if (index := _SIGNATURES.find(ua, lowered)) is not None:
            signature = SIGNATURES[index]
            return Visitor(True, signature.kind, signature.name, listed=True, confidence=0.99)

        browser_shaped = _BROWSER_SHAPE.search(lowered) is not None
        bot_marks = _has_bot_marks(lowered)
        if browser_shaped and not bot_marks:
            app: str | None = None
            if (index := _IN_APPS.find(ua, lowered)) is not None:
                app = IN_APP[index].app
            elif _IOS_WEBVIEW.search(ua):
                app = "iOS WebView"
            if app is not None:
                facts = _cheap_facts(ua, app)
                return _human(f"{app} in-app", app, facts, flags)

        if CRAWLERS.matches(_HUMAN_WORDS.sub("", lowered)):
            if tool := tool_name(lowered):
                return Visitor(True, "tool", tool, confidence=0.9)
            return Visitor(True, "crawler", crawler_name(lowered), confidence=0.9)

        if bot_marks or _mozilla_only(lowered):
            # A URL or "compatible; ...bot" in a browser-like string: a bot the lists miss.
            return Visitor(True, "crawler", crawler_name(lowered), confidence=0.8)

        if not browser_shaped:
            if tool := tool_name(lowered):
                return Visitor(True, "tool", tool, confidence=0.9)
            return Visitor(True, "tool", crawler_name(lowered), confidence=0.8)

        return _unusual_browser(ua, flags)


def _human(name: str, in_app: str | None, facts: BrowserFacts, flags: int) -> Visitor:
    confidence = _HUMAN_CONFIDENCE
    if flags & _HEAD:
        confidence -= _PENALTY_HEAD
    if flags & _NO_LANGUAGE:
        confidence -= _PENALTY_NO_LANGUAGE
    if flags & _NO_SEC_FETCH:
        confidence -= _PENALTY_NO_SEC_FETCH
    return Visitor(
        False,
        "human",
        name,
        in_app=in_app,
        confidence=round(confidence, 2),
        is_mobile=facts.is_mobile,
        os=facts.os,
        browser=facts.browser,
    )


def _cheap_facts(ua: str, app: str) -> BrowserFacts:
    os = desktop_os(ua)
    mobile = os in ("iOS", "Android") or "Mobile" in ua
    return BrowserFacts(os, app, mobile)


def _unusual_browser(ua: str, flags: int) -> Visitor:
    """A browser string that matched no template nor any bot rule: a person, less certainly."""
    facts = browser_facts(ua)
    visitor = _human(facts.browser or "browser", None, facts, flags)
    return Visitor(
        visitor.is_bot,
        visitor.kind,
        visitor.name,
        confidence=round(visitor.confidence - 0.15, 2),
        is_mobile=visitor.is_mobile,
        os=visitor.os,
        browser=visitor.browser,
    )


_default: Classifier | None = None


def default_classifier() -> Classifier:
    global _default  # one lazily built instance for the module-level helper
    if _default is None:
        _default = Classifier()
    return _default


def classify(
    user_agent: str | None,
    headers: Mapping[str, str] | None = None,
    method: str = "GET",
) -> Visitor:
    """Classify with the default classifier (no extra patterns)."""
    return default_classifier().classify(user_agent, headers, method)
