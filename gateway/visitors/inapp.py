"""Tokens that in-app browsers add to a browser's user agent.

A person who taps a link inside Facebook, Instagram, the Google app or TikTok sees the page in
the app's own WebView, whose user agent is a normal browser's plus the app's token. Those
tokens contain words (Facebook, Line, Snapchat...) that broad crawler lists also use, so the
classifier checks these first and never calls such a visitor a bot. The gateway also uses
``in_app`` to suggest opening the page in the phone's browser for Apple Pay / Google Pay.

Patterns are case-sensitive (apps spell their tokens one way), use only non-capturing groups,
and are tried in order at each position: put the more specific row (Messenger) before the
more general one (Facebook).
"""

from __future__ import annotations

from typing import Final

IN_APP: Final[tuple[tuple[str, str], ...]] = (
    (r"FBAN/Messenger|FB_IAB/MESSENGER|FBAN/MessengerLite", "Messenger"),
    (r"FBAN/|FBAV/|FB_IAB/|\bFB4A\b|FBIOS|MetaIAB Facebook", "Facebook"),
    (r"\bInstagram \d", "Instagram"),
    (r"\bBarcelona \d", "Threads"),
    (r"\bGSA/\d|GoogleApp/\d", "Google app"),
    (r"LinkedInApp", "LinkedIn"),
    (r"musical_ly|BytedanceWebview|\btrill_\d|\bTikTok \d", "TikTok"),
    (r"MicroMessenger/", "WeChat"),
    (r"\bLine/\d", "LINE"),
    (r"KAKAOTALK", "KakaoTalk"),
    (r"Snapchat/?\d", "Snapchat"),
    (r"\[Pinterest/", "Pinterest"),
    (r"Twitter for iP|TwitterAndroid", "Twitter"),
    (r"NAVER\(inapp", "Naver"),
    (r"\bViber/\d", "Viber"),
    (r"\bBingWeb/", "Bing"),
    (r"baiduboxapp", "Baidu"),
    (r"\bGNews ", "Google News"),
    (r"\bGmail(?:App)?/\d", "Gmail"),
    (r"\bQQ/\d", "QQ"),
    (r"Weibo", "Weibo"),
    (r"YaApp_|YaSearchBrowser", "Yandex"),
    # Android's WebView marks itself with "; wv)" after the build: some app's in-app browser.
    (r"; wv\)", "Android WebView"),
)
