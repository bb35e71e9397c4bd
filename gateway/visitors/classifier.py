"""Tell people apart from link-preview bots, mail scanners, crawlers and tools.

The gateway asks this for every ``GET /pay/{token}``: a bot gets a harmless preview page, a
person the confirm page. A person misjudged as a bot is not stuck (the preview page links to the
confirm view), but the figures below keep that rare. The steps, in order:

1. empty user agent -> tool; extra patterns from config (``bots``) -> crawler.
2. **fast path**: a string that is exactly a common browser's template -> person, with device
   facts from cheap substring checks (see ``browsers``). This is most traffic.
3. **explicit list** (``signatures``) of link-preview fetchers and mail scanners -> bot,
   ``listed`` (the gateway refuses their POSTs).
4. **in-app overrides** (``inapp``): a browser-shaped string carrying an in-app token (FBAN,
   Instagram, GSA, musical_ly, ``; wv)``...) -> person with ``in_app`` set, unless it also
   carries a bot's marks (a URL, "compatible; ...bot"). These override the broad list below,
   whose words (Facebook, Line, Spider) also occur in phone and app names.
5. **broad crawler list**: ``crawlerdetect``'s ~1,400 patterns -> crawler (or tool when the
   match is an HTTP library).
6. **shape rule**: a string that is not a browser engine's (curl, python-requests,
   Go-http-client, an app's HTTP client) -> tool.
7. otherwise the ``user-agents`` parse supplies device facts (and its own spider check).

Request signals (HEAD, no ``Accept-Language``, no ``Sec-Fetch-*``) only lower ``confidence``;
they never turn a recognised browser into a bot, because privacy tools and old browsers omit
them too.

A bot's ``name`` is never text taken from its user agent: it is one of ``names.BOT_NAMES`` (a
signature's, a tool's, a well-known crawler's, or "other") or ``config: <pattern>``, because it
becomes a metric label and a stored row per link (see ``names``).

Crawler library, chosen by measurement on this repo's corpus (tests/data/user_agents), scoring
each library on strings from a source that is not its own (device-detector's bot fixtures,
943 strings), plus people (11,126) and in-app browsers (1,187):

=====================  ==============  =================  ===========  ==================
library                device-detector  other's fixtures   people FP    in-app browsers FP
=====================  ==============  =================  ===========  ==================
crawlerdetect 0.4.2    0.736            0.857 (cua, 2069)  0.22 %       0.17 %
crawler-user-agents    0.403            0.899 (CD, 69)     0.26 %       1.35 %
=====================  ==============  =================  ===========  ==================

Both cost ~450 µs per string as one Python regex, which is why they run only off the fast path.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from crawlerdetect.crawlerdetect import (
    get_compiled_crawler_regex,
    get_compiled_exclusions_regex,
)

from .browsers import BROWSER_TEMPLATE, BrowserFacts, desktop_os, template_facts
from .headers import clean_header
from .inapp import IN_APP
from .names import CONFIG_PREFIX, EMPTY, TOOLS, crawler_name
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


# Longer strings are cut before matching: real user agents stay well under this, and it bounds
# the regex cost of a hostile multi-kilobyte header.
MAX_LENGTH: Final = 1024


class _NeedleTable:
    """Rows of regexes, each tried only when one of its literal needles is in the string.

    Python's ``re`` has no multi-pattern search: one alternation of 40 patterns costs ~40-200
    µs on a phone's user agent, while 60 substring tests cost a few µs. Needles rarely hit on a
    person's string, so the regexes themselves seldom run.
    """

    def __init__(self, rows: Sequence[tuple[str, Sequence[str]]], flags: int, lower: bool) -> None:
        self._regexes = tuple(re.compile(pattern, flags) for pattern, _ in rows)
        self._needles = tuple(
            (needle, index) for index, (_, needles) in enumerate(rows) for needle in needles
        )
        self._lower = lower

    def find(self, ua: str, lowered: str) -> int | None:
        """Index of the first row (in row order) whose regex matches ``ua``."""
        text = lowered if self._lower else ua
        hits = [index for needle, index in self._needles if needle in text]
        for index in sorted(set(hits)):
            if self._regexes[index].search(ua):
                return index
        return None


_SIGNATURES: Final = _NeedleTable(
    [(row.pattern, row.needles) for row in SIGNATURES], re.IGNORECASE, lower=True
)
_IN_APPS: Final = _NeedleTable([(row.pattern, row.needles) for row in IN_APP], 0, lower=False)

# Strings a browser engine sends, including TVs' and feature phones' browsers.
_BROWSER_SHAPE: Final = re.compile(
    r"Mozilla|AppleWebKit|Gecko/|Presto/|Trident/|MSIE|IEMobile|Chrome/|Safari/|Opera|HbbTV|"
    r"Browser/|Cronet/|OPR/|Profile/MIDP|MIDP-?2|UP\.Browser|UCWEB|NetFront|WAP[ _-]?Browser|MAUI|"
    r"Teleca|Obigo|^DoCoMo/",
    re.IGNORECASE,
)
# A "Mozilla" string that names no engine and no platform is a bot dressed as a browser
# ("Mozilla/5.0 (compatible; Attracta)", "Mozilla/5.0 (Google-PhysicalWeb)").
_MOZILLA_ONLY: Final = re.compile(
    r"^Mozilla/[\d.]+ (?!.*(?:AppleWebKit|Gecko|Trident|Presto|MSIE|KHTML|Opera|Windows|Linux|"
    r"Android|iPhone|iPad|iPod|Macintosh|Mac OS|X11|BlackBerry|BB10|Symbian|Series ?\d|"
    r"Nintendo|PlayStation|Xbox|SmartTV|Tizen|Web0S|KaiOS|Mobile|Tablet|MIDP|AmigaOS|BeOS|"
    r"Haiku|OS/2|SunOS|FreeBSD|OpenBSD|NetBSD|RISC OS|NetFront|Browser))",
    re.IGNORECASE,
)
# Words the broad crawler list misreads in people's strings, removed before it runs (as
# crawlerdetect itself does for "cubot" or "; M bot"): Chromium's network stack on TVs, a TV
# maker, a phone model, a bank's IE branding, a download helper.
_HUMAN_WORDS: Final = re.compile(
    r"Cronet/[\d.]+|BOTECH|Speedy \d|Banca Caboto|QQDownload \d+", re.IGNORECASE
)
# Marks real in-app browsers never carry, but bots that copy a phone's string do: a URL, or
# "compatible; ...bot" (checked only when the cheap "compatible;" test hits).
_BOT_COMPATIBLE: Final = re.compile(
    r"\bcompatible; [^;)]*(?:bot|crawl|spider|preview)", re.IGNORECASE
)


def _has_bot_marks(ua: str, lowered: str) -> bool:
    if "http://" in lowered or "https://" in lowered:
        return True
    return "compatible;" in lowered and _BOT_COMPATIBLE.search(ua) is not None


# iOS WKWebView with no app token: "... (KHTML, like Gecko) Mobile/15E148" and no Safari.
_IOS_WEBVIEW: Final = re.compile(
    r"\((?:iPhone|iPad|iPod)[^)]*\) AppleWebKit/[\d.]+ \(KHTML, like Gecko\) Mobile/\w+$"
)

_TOOL_RE: Final = re.compile("|".join(f"({pattern})" for pattern, _ in TOOLS), re.IGNORECASE)

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
        return self._cached(user_agent or "", flags)

    def cache_clear(self) -> None:
        self._cached.cache_clear()

    def _classify(self, user_agent: str, flags: int) -> Visitor:
        # Bytes that are not UTF-8 arrive as lone surrogates: cleaned before anything reads them.
        ua = clean_header(user_agent.strip()[:MAX_LENGTH])
        if not ua:
            return Visitor(True, "tool", EMPTY, confidence=0.9)

        if self._extra is not None and (match := self._extra.search(ua)):
            pattern = self._extra_patterns[(match.lastindex or 1) - 1]
            return Visitor(True, "crawler", f"{CONFIG_PREFIX}{pattern}"[:100], confidence=0.95)

        if match := BROWSER_TEMPLATE.fullmatch(ua):
            facts = template_facts(match.lastgroup or "", ua)
            return _human(facts.browser or "browser", None, facts, flags)

        lowered = ua.lower()
        if (index := _SIGNATURES.find(ua, lowered)) is not None:
            signature = SIGNATURES[index]
            return Visitor(True, signature.kind, signature.name, listed=True, confidence=0.99)

        browser_shaped = _BROWSER_SHAPE.search(ua) is not None
        bot_marks = _has_bot_marks(ua, lowered)
        if browser_shaped and not bot_marks:
            app: str | None = None
            if (index := _IN_APPS.find(ua, lowered)) is not None:
                app = IN_APP[index].app
            elif _IOS_WEBVIEW.search(ua):
                app = "iOS WebView"
            if app is not None:
                facts = _cheap_facts(ua, app)
                return _human(f"{app} in-app", app, facts, flags)

        if _crawler_match(ua):
            if tool := _TOOL_RE.search(ua):
                return Visitor(True, "tool", TOOLS[(tool.lastindex or 1) - 1][1], confidence=0.9)
            return Visitor(True, "crawler", crawler_name(lowered), confidence=0.9)

        if bot_marks or _MOZILLA_ONLY.search(ua):
            # A URL or "compatible; ...bot" in a browser-like string: a bot the lists miss.
            return Visitor(True, "crawler", crawler_name(lowered), confidence=0.8)

        if not browser_shaped:
            if tool := _TOOL_RE.search(ua):
                return Visitor(True, "tool", TOOLS[(tool.lastindex or 1) - 1][1], confidence=0.9)
            return Visitor(True, "tool", crawler_name(lowered), confidence=0.8)

        return _parsed(ua, lowered, flags)


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


def _crawler_match(ua: str) -> bool:
    """Whether the crawler list matches, after crawlerdetect's own exclusions of browser words."""
    agent: str = get_compiled_exclusions_regex().sub("", _HUMAN_WORDS.sub("", ua))
    if not agent.strip():
        return False
    return get_compiled_crawler_regex().search(agent) is not None


def _parsed(ua: str, lowered: str, flags: int) -> Visitor:
    """Slow path: an unusual browser string. Ask ``user-agents`` for device facts."""
    import user_agents  # imported here: its rule set takes time to load and is rarely needed

    parsed = user_agents.parse(_HUMAN_WORDS.sub("", ua))
    if parsed.is_bot:
        return Visitor(True, "crawler", crawler_name(lowered), confidence=0.7)
    facts = BrowserFacts(
        str(parsed.os.family) if parsed.os.family != "Other" else None,
        str(parsed.browser.family) if parsed.browser.family != "Other" else None,
        bool(parsed.is_mobile or parsed.is_tablet),
    )
    visitor = _human(facts.browser or "browser", None, facts, flags)
    # An unknown shape is less certain than a template match.
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
