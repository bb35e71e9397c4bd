"""Fast path: exact shapes of the common browsers' user agents.

Most visitors are phones running Safari, Chrome or Samsung Internet, whose user agents follow a
handful of fixed templates. A string that matches one of these templates *in full* cannot carry
a bot's token (Googlebot's smartphone string, for instance, appends "(compatible; Googlebot…)"
and so fails the match), so it is a person, and the slow steps (a crawler list of ~1,400
patterns, and the ``user-agents`` parse at ~100 µs–1 ms) are skipped. The device model inside
an Android string may say anything ("CUBOT", "Bot", "Line"): it is a person's phone either way.

Android WebView strings ("; wv)") are excluded here so that the in-app check names them, and
so is an Android string with a versioned bot token in its fields (Google's "Storebot-Google/1.0"
or "DuplexWeb-Google/1.0"): :func:`is_template_bot` checks that after the match, in one linear
pass (as a lookahead inside each field it was quadratic in a long field's length).

:func:`browser_facts` gives the same kind of facts for browser strings that match no template
(old, rare or exotic browsers), from substring checks too: a full user-agent parser costs
~100 µs-1 ms per string and several ms on strings built against its patterns.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

_V = r"\d+(?:\.\d+)*"  # a dotted version
# Locale, model and build, in any words ("CUBOT MAX", "Bot"); but not the WebView mark.
_ANDROID_FIELDS = r"(?:; (?!wv\))[^;()]*)*"

_TEMPLATES: Final[dict[str, str]] = {
    "ios": (
        r"Mozilla/5\.0 \((?:iPhone|iPad|iPod(?: touch)?); CPU (?:iPhone )?OS \d+(?:_\d+)* like Mac"
        rf" OS X\) AppleWebKit/{_V}\+? \(KHTML, like Gecko\)(?: Version/{_V})?"
        rf"(?: (?:CriOS|FxiOS|EdgiOS|OPiOS)/{_V})? Mobile/\w+ Safari/{_V}"
    ),
    "android": (
        rf"Mozilla/5\.0 \(Linux; (?:U; )?Android {_V}{_ANDROID_FIELDS}\) AppleWebKit/{_V}"
        rf" \(KHTML, like Gecko\)(?: SamsungBrowser/{_V})? Chrome/{_V} (?:Mobile )?Safari/{_V}"
        rf"(?: (?:EdgA|OPR)/{_V})?"
    ),
    "desktop": (
        rf"Mozilla/5\.0 \((?:Windows NT {_V}(?:; Win64; x64|; WOW64)?|Macintosh; Intel Mac OS X"
        rf" [\d_.]+|X11; (?:Ubuntu; )?Linux (?:x86_64|i686)|X11; CrOS \w+ {_V})\)"
        rf" AppleWebKit/537\.36 \(KHTML, like Gecko\) Chrome/{_V} Safari/537\.36"
        rf"(?: (?:Edg|OPR)/{_V})?"
    ),
    "safari": (
        rf"Mozilla/5\.0 \(Macintosh; Intel Mac OS X [\d_]+\) AppleWebKit/{_V}"
        rf" \(KHTML, like Gecko\) Version/{_V} Safari/{_V}"
    ),
    "firefox": (
        rf"Mozilla/5\.0 \((?:Windows NT {_V}; (?:Win64; x64; |WOW64; )?|Macintosh; Intel Mac OS X"
        rf" [\d.]+; |X11; (?:Ubuntu; )?Linux (?:x86_64|i686); |Android {_V}; (?:Mobile|Tablet); )"
        rf"rv:{_V}\) Gecko/{_V} Firefox/{_V}"
    ),
}

BROWSER_TEMPLATE: Final[re.Pattern[str]] = re.compile(
    "|".join(f"(?P<{name}>{body})" for name, body in _TEMPLATES.items())
)


# A word with a bot's or Google's name followed by a version ("Storebot-Google/1.0"): checked
# from each word's start only, so each character is read a bounded number of times.
_VERSIONED_BOT: Final = re.compile(r"(?<![\w.-])(?=[\w.-]*?(?i:bot|google))[\w.-]*+/")


def is_template_bot(template: str, user_agent: str) -> bool:
    """Whether a string that matched ``template`` still carries a versioned bot token (only
    Android's fields may hold free text; the other templates are fixed words)."""
    return template == "android" and _VERSIONED_BOT.search(user_agent) is not None


class BrowserFacts(NamedTuple):
    os: str | None
    browser: str | None
    is_mobile: bool


def template_facts(template: str, user_agent: str) -> BrowserFacts:
    """Device facts for a string that matched ``template``, from cheap substring checks."""
    if template == "ios":
        if "CriOS/" in user_agent:
            browser = "Chrome Mobile iOS"
        elif "FxiOS/" in user_agent:
            browser = "Firefox iOS"
        elif "EdgiOS/" in user_agent:
            browser = "Edge Mobile"
        elif "OPiOS/" in user_agent:
            browser = "Opera Mini"
        else:
            browser = "Mobile Safari"
        return BrowserFacts("iOS", browser, True)
    if template == "android":
        if "SamsungBrowser/" in user_agent:
            browser = "Samsung Internet"
        elif "EdgA/" in user_agent:
            browser = "Edge Mobile"
        elif "OPR/" in user_agent:
            browser = "Opera Mobile"
        else:
            browser = "Chrome Mobile"
        return BrowserFacts("Android", browser, " Mobile " in user_agent)
    if template == "safari":
        return BrowserFacts("Mac OS X", "Safari", False)
    if template == "firefox":
        mobile = "Android" in user_agent
        return BrowserFacts(
            desktop_os(user_agent), "Firefox Mobile" if mobile else "Firefox", mobile
        )
    browser = "Edge" if " Edg/" in user_agent else "Opera" if " OPR/" in user_agent else "Chrome"
    return BrowserFacts(desktop_os(user_agent), browser, False)


def desktop_os(user_agent: str) -> str | None:
    if "Android" in user_agent:
        return "Android"
    if "iPhone" in user_agent or "iPad" in user_agent:
        return "iOS"
    if "Windows" in user_agent:
        return "Windows"
    if "Mac OS X" in user_agent:
        return "Mac OS X"
    if "CrOS" in user_agent:
        return "Chrome OS"
    if "Linux" in user_agent:
        return "Linux"
    return None


# Browser families by token, first hit wins (more specific tokens first).
_FAMILIES: Final[tuple[tuple[str, str], ...]] = (
    ("HbbTV", "HbbTV"),
    ("Electron/", "Electron"),
    ("IEMobile", "IE Mobile"),
    ("UP.Browser", "UP.Browser"),
    ("MiuiBrowser/", "MiuiBrowser"),
    ("HuaweiBrowser/", "Huawei Browser"),
    ("HeyTapBrowser/", "HeyTap Browser"),
    ("MQQBrowser/", "QQ Browser Mobile"),
    ("Silk/", "Amazon Silk"),
    ("Puffin/", "Puffin"),
    ("EdgA/", "Edge Mobile"),
    ("EdgiOS/", "Edge Mobile"),
    ("Edg/", "Edge"),
    ("Edge/", "Edge"),
    ("OPR/", "Opera"),
    ("Opera Mini", "Opera Mini"),
    ("Opera", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("UCBrowser", "UC Browser"),
    ("UCWEB", "UC Browser"),
    ("YaBrowser/", "Yandex Browser"),
    ("Vivaldi/", "Vivaldi"),
    ("CriOS/", "Chrome Mobile iOS"),
    ("FxiOS/", "Firefox iOS"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("MSIE ", "IE"),
    ("Trident/", "IE"),
    ("Safari/", "Safari"),
    ("NetFront", "NetFront"),
)
_MOBILE_FAMILIES: Final = {
    "Chrome": "Chrome Mobile",
    "Safari": "Mobile Safari",
    "Firefox": "Firefox Mobile",
}
_MOBILE_TOKENS: Final = (
    "Mobile",
    "Android",
    "iPhone",
    "iPad",
    "iPod",
    "Tablet",
    "Opera Mini",
    "MIDP",
    "Windows Phone",
    "BlackBerry",
    "BB10",
    "KaiOS",
    "Symbian",
    "UP.Browser",
    "Nokia",
    "Series40",
    "Series60",
)
# Systems desktop_os does not know, checked first ("Windows Phone ...; Android ..." is Windows').
_OTHER_OS: Final = (
    ("Windows Phone", "Windows Phone"),
    ("KaiOS", "KaiOS"),
    ("KAIOS", "KaiOS"),
    ("BlackBerry", "BlackBerry OS"),
    ("BB10", "BlackBerry OS"),
    ("Symbian", "Symbian OS"),
    ("SymbOS", "Symbian OS"),
    ("Tizen", "Tizen"),
    ("PlayStation", "PlayStation"),
    ("Web0S", "webOS"),
    ("webOS", "webOS"),
)


def browser_facts(user_agent: str) -> BrowserFacts:
    """Device facts for a browser string that matched no template: a few dozen substring tests."""
    os = next((name for token, name in _OTHER_OS if token in user_agent), None)
    mobile = any(token in user_agent for token in _MOBILE_TOKENS)
    browser = next((name for token, name in _FAMILIES if token in user_agent), None)
    if browser == "Safari" and "Android" in user_agent:
        browser = "Android"  # the stock browser before Chrome: "Version/4.0 Mobile Safari/534.30"
    elif mobile and browser in _MOBILE_FAMILIES:
        browser = _MOBILE_FAMILIES[browser]
    return BrowserFacts(os or desktop_os(user_agent), browser, mobile)
