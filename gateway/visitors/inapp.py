"""Tokens that in-app browsers add to a browser's user agent.

A person who taps a link inside Facebook, Instagram, the Google app or TikTok sees the page in
the app's own WebView, whose user agent is a normal browser's plus the app's token. Those
tokens contain words (Facebook, Line, Snapchat...) that broad crawler lists also use, so the
classifier checks these first and never calls such a visitor a bot. The gateway also uses
``in_app`` to suggest opening the page in the phone's browser for Apple Pay / Google Pay.

Patterns are case-sensitive (apps spell their tokens one way) and tried in row order: put the
more specific row (Messenger) before the more general one (Facebook). As for the signatures,
each row names case-sensitive *needles*, substrings one of which every string it matches
contains; the classifier runs a row's regex only when a needle is present.
"""

from __future__ import annotations

from typing import Final, NamedTuple


class InApp(NamedTuple):
    pattern: str
    app: str
    needles: tuple[str, ...]


IN_APP: Final[tuple[InApp, ...]] = (
    InApp(r"FBAN/Messenger|FB_IAB/MESSENGER", "Messenger", ("FBAN/Messenger", "FB_IAB/MESSENGER")),
    InApp(
        r"FBAN/|FBAV/|FB_IAB/|\bFB4A\b|FBIOS|MetaIAB Facebook",
        "Facebook",
        ("FBAN/", "FBAV/", "FB_IAB/", "FB4A", "FBIOS", "MetaIAB Facebook"),
    ),
    InApp(r"\bInstagram \d", "Instagram", ("Instagram ",)),
    InApp(r"\bBarcelona \d", "Threads", ("Barcelona ",)),
    InApp(r"\bGSA/\d|GoogleApp/\d", "Google app", ("GSA/", "GoogleApp/")),
    InApp(r"LinkedInApp", "LinkedIn", ("LinkedInApp",)),
    InApp(
        r"musical_ly|BytedanceWebview|\btrill_\d|\bTikTok \d",
        "TikTok",
        ("musical_ly", "BytedanceWebview", "trill_", "TikTok "),
    ),
    InApp(r"MicroMessenger/", "WeChat", ("MicroMessenger/",)),
    InApp(r"\bLine/\d", "LINE", ("Line/",)),
    InApp(r"KAKAOTALK", "KakaoTalk", ("KAKAOTALK",)),
    InApp(r"Snapchat/?\d", "Snapchat", ("Snapchat",)),
    InApp(r"\[Pinterest/", "Pinterest", ("[Pinterest/",)),
    InApp(r"Twitter for iP|TwitterAndroid", "Twitter", ("Twitter",)),
    InApp(r"NAVER\(inapp", "Naver", ("NAVER(inapp",)),
    InApp(r"\bViber/\d", "Viber", ("Viber/",)),
    InApp(r"\bBingWeb/", "Bing", ("BingWeb/",)),
    InApp(r"baiduboxapp", "Baidu", ("baiduboxapp",)),
    InApp(r"\bGNews ", "Google News", ("GNews ",)),
    InApp(r"\bGmail(?:App)?/\d", "Gmail", ("Gmail",)),
    InApp(r"\bQQ/\d", "QQ", ("QQ/",)),
    InApp(r"Weibo", "Weibo", ("Weibo",)),
    InApp(r"YaApp_|YaSearchBrowser", "Yandex", ("YaApp_", "YaSearchBrowser")),
    # Android's WebView marks itself with "; wv)" after the build: some app's in-app browser.
    InApp(r"; wv\)", "Android WebView", ("; wv)",)),
)
