"""The names bot previews are counted under: a bounded set, never text a visitor chose.

Bot previews are counted by bot name twice: as a Prometheus label
(``gateway_bot_previews_total{bot=...}``) and as a row per link and name (``link_previews``).
Both grow with every distinct name, so a user agent must not be able to choose one: 20,000 GETs
with made-up bot names would otherwise make 20,000 series and 20,000 rows. The set is:

- a signature's name (``signatures.SIGNATURES``: the link-preview fetchers and mail scanners);
- a tool's name from :data:`TOOLS` (curl, python-requests, Go-http-client...);
- a well-known crawler's name from :data:`KNOWN_CRAWLERS` (Googlebot, Bing, Yandex...), found by
  lower-case substrings in the user agent;
- :data:`EMPTY`, :data:`OVER_LONG` (see ``classifier.MAX_LENGTH``);
- ``config: <pattern>`` for a pattern of the config's ``bots`` list (the operator's, so bounded
  by the config);
- :data:`OTHER` for every other bot: an unknown crawler, a made-up name, a tool we do not name.

The classifier only gives bots names from this set, and the counters
(``Metrics.record_bot_preview``, ``OpenRecorder.bot_preview``) pass any name through
:func:`bot_label` again, so no caller can widen it.
"""

from __future__ import annotations

import re
from typing import Final

from .crawlers import trie_pattern
from .signatures import SIGNATURES

OTHER: Final = "other"
EMPTY: Final = "empty user agent"
OVER_LONG: Final = "over-long user agent"
CONFIG_PREFIX: Final = "config: "

# Tools: (token, name), the token lower-case, optionally anchored at the start (``^``) or at a
# word boundary (``\b``). The leftmost token in the user agent names the tool (first in this
# order at one position), as the alternation of these patterns would (see tool_name).
TOOLS: Final[tuple[tuple[str, str], ...]] = (
    (r"^curl/", "curl"),
    (r"^wget/", "Wget"),
    (r"python-requests/", "python-requests"),
    (r"^go-http-client/", "Go-http-client"),
    (r"\bokhttp/", "OkHttp"),
    (r"aiohttp/", "aiohttp"),
    (r"python-httpx/", "httpx"),
    (r"python-urllib/", "urllib"),
    (r"^axios/", "axios"),
    (r"node-fetch", "node-fetch"),
    (r"^undici", "undici"),
    (r"^java/", "Java"),
    (r"apache-httpclient/", "Apache HttpClient"),
    (r"libwww-perl/", "libwww-perl"),
    (r"^postmanruntime/", "Postman"),
    (r"^httpie/", "HTTPie"),
    (r"^dalvik/", "Android app"),
    (r"cfnetwork/", "Apple app"),
    (r"headlesschrome/", "HeadlessChrome"),
)

# Crawlers worth telling apart in the admin's figures: (name, lower-case needles), first hit
# wins. Anything else the crawler list or the shape rules call a bot is "other".
KNOWN_CRAWLERS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("Googlebot", ("googlebot",)),
    (
        "Google",
        (
            "adsbot-google",
            "mediapartners-google",
            "apis-google",
            "feedfetcher-google",
            "google-inspectiontool",
            "storebot-google",
            "googleother",
            "google-extended",
            "appengine-google",
            "google favicon",
            "google-site-verification",
            "duplexweb-google",
            "google-structured-data",
            "google-adwords",
            "google-ads",
            "google-cloudvertexbot",
        ),
    ),
    ("Bing", ("bingbot", "msnbot", "adidxbot")),
    ("Yandex", ("yandex",)),
    ("Baidu", ("baiduspider", "baidu.com")),
    ("DuckDuckGo", ("duckduckbot", "duckassistbot")),
    ("Applebot", ("applebot",)),
    ("Yahoo", ("slurp", "y!j-")),
    ("Sogou", ("sogou",)),
    ("Bytespider", ("bytespider",)),
    ("360Spider", ("360spider", "haosouspider")),
    ("Seznam", ("seznam",)),
    ("Qwant", ("qwant",)),
    ("Mojeek", ("mojeek",)),
    ("Coc Coc", ("coccoc",)),
    ("Naver", ("yeti/", "naver.me/spd")),
    ("Exabot", ("exabot",)),
    ("PetalBot", ("petalbot", "aspiegelbot")),
    ("Amazonbot", ("amazonbot",)),
    ("AhrefsBot", ("ahrefs",)),
    ("SemrushBot", ("semrush",)),
    ("MJ12bot", ("mj12bot",)),
    ("Moz", ("dotbot", "rogerbot")),
    ("BLEXBot", ("blexbot",)),
    ("DataForSeoBot", ("dataforseo",)),
    ("serpstatbot", ("serpstat",)),
    ("Screaming Frog", ("screaming frog",)),
    ("Sitebulb", ("sitebulb",)),
    ("Lighthouse", ("lighthouse", "pagespeed", "gtmetrix")),
    ("OpenAI", ("gptbot", "chatgpt-user", "oai-searchbot")),
    ("Anthropic", ("claudebot", "claude-", "anthropic-ai")),
    ("Perplexity", ("perplexity",)),
    ("Common Crawl", ("ccbot",)),
    ("Internet Archive", ("ia_archiver", "archive.org_bot", "heritrix", "archive-it")),
    ("UptimeRobot", ("uptimerobot",)),
    ("Pingdom", ("pingdom",)),
    ("StatusCake", ("statuscake",)),
    ("Site24x7", ("site24x7",)),
    ("Datadog", ("datadog",)),
    ("HubSpot", ("hubspot",)),
    ("Feedly", ("feedly",)),
    ("Flipboard", ("flipboard",)),
    ("Nutch", ("nutch",)),
    ("Scrapy", ("scrapy",)),
    (
        "Security scanner",
        (
            "nuclei",
            "masscan",
            "zgrab",
            "nmap",
            "sqlmap",
            "nikto",
            "censys",
            "expanse",
            "l9tcpid",
            "l9explore",
            "leakix",
            "wpscan",
            "acunetix",
        ),
    ),
)

BOT_NAMES: Final[frozenset[str]] = frozenset(
    {row.name for row in SIGNATURES}
    | {name for _, name in TOOLS}
    | {name for name, _ in KNOWN_CRAWLERS}
    | {OTHER, EMPTY, OVER_LONG}
)
_CRAWLER_BY_NEEDLE: Final = {needle: name for name, needles in KNOWN_CRAWLERS for needle in needles}
# One pass for all needles, as a trie (the longest at a position): ~120 substring tests would
# read the string ~120 times, which a string made of the right characters makes slow.
_CRAWLER_NEEDLE: Final = re.compile(trie_pattern(_CRAWLER_BY_NEEDLE))
_TOOL_TOKENS: Final = tuple(
    (pattern.removeprefix("^").removeprefix("\\b"), pattern[:1] == "^", pattern[:2] == "\\b", name)
    for pattern, name in TOOLS
)


def crawler_name(lowered: str) -> str:
    """The known crawler named first (leftmost) in a lower-cased user agent, else :data:`OTHER`."""
    match = _CRAWLER_NEEDLE.search(lowered)
    return OTHER if match is None else _CRAWLER_BY_NEEDLE[match.group()]


def tool_name(lowered: str) -> str | None:
    """The tool whose token comes first (leftmost) in a lower-cased user agent, if any: one
    ``str.find`` per tool (as one regex alternation, ~19 tries at each position)."""
    best: tuple[int, int] | None = None
    for order, (token, anchored, boundary, _) in enumerate(_TOOL_TOKENS):
        if anchored:
            position = 0 if lowered.startswith(token) else -1
        else:
            position = lowered.find(token)
            while boundary and position > 0 and _is_word(lowered[position - 1]):
                position = lowered.find(token, position + 1)
        if position >= 0 and (best is None or position < best[0]):
            best = (position, order)
    return None if best is None else _TOOL_TOKENS[best[1]][3]


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def bot_label(name: str) -> str:
    """``name`` if it is in the bounded set (or names a config pattern), else :data:`OTHER`."""
    if name in BOT_NAMES or name.startswith(CONFIG_PREFIX):
        return name
    return OTHER
