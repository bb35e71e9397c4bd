"""Table-driven cases for the visitor classifier."""

from __future__ import annotations

import re

import pytest

from gateway.visitors import Classifier, Visitor, classify
from gateway.visitors.inapp import IN_APP
from gateway.visitors.signatures import SIGNATURES

IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)
ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Mobile Safari/537.36"
)
FULL_HEADERS = {"Accept-Language": "en-GB", "Sec-Fetch-Mode": "navigate"}

PEOPLE = [
    pytest.param(IPHONE_SAFARI, "iOS", "Mobile Safari", id="iphone-safari"),
    pytest.param(ANDROID_CHROME, "Android", "Chrome Mobile", id="android-chrome"),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 9; SAMSUNG SM-G960U) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/10.2 Chrome/71.0.3578.99 Mobile Safari/537.36",
        "Android",
        "Samsung Internet",
        id="samsung-internet",
    ),
    pytest.param(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36",
        "Windows",
        "Chrome",
        id="desktop-chrome",
    ),
    pytest.param(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:100.0) Gecko/20100101 Firefox/100.0",
        "Windows",
        "Firefox",
        id="desktop-firefox",
    ),
]


@pytest.mark.parametrize(("ua", "os", "browser"), PEOPLE)
def test_common_browsers_are_people_with_device_facts(ua: str, os: str, browser: str) -> None:
    visitor = Classifier().classify(ua, FULL_HEADERS)
    assert visitor.is_bot is False
    assert visitor.kind == "human"
    assert visitor.in_app is None
    assert visitor.listed is False
    assert (visitor.os, visitor.browser) == (os, browser)
    assert visitor.confidence >= 0.9


IN_APP_BROWSERS = [
    pytest.param(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 13_3_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBDV/iPhone11,8;FBMD/iPhone;FBSN/iOS;"
        "FBSV/13.3.1;FBSS/2;FBID/phone;FBLC/en_US;FBOP/5;FBCR/]",
        "Facebook",
        id="facebook-ios",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 9; SM-G950U Build/PPR1.180610.011; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/80.0.3987.149 Mobile Safari/537.36 "
        "[FB_IAB/FB4A;FBAV/263.0.0.46.121;]",
        "Facebook",
        id="facebook-android",
    ),
    pytest.param(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 10_3_3 like Mac OS X) AppleWebKit/603.3.8 "
        "(KHTML, like Gecko) Mobile/14G60 [FBAN/MessengerForiOS;FBAV/132.0.0.41.90;"
        "FBBV/69171754;FBDV/iPhone8,4;FBMD/iPhone;FBSN/iOS;FBSV/10.3.3]",
        "Messenger",
        id="messenger",
    ),
    pytest.param(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 13_3 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 Instagram 123.1.0.26.115 (iPhone11,8; iOS 13_3; "
        "en_US; en-US; scale=2.00; 828x1792; 190542906)",
        "Instagram",
        id="instagram",
    ),
    pytest.param(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 13_3 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) GSA/102.0.304944559 Mobile/15E148 Safari/604.1",
        "Google app",
        id="google-app",
    ),
    pytest.param(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 12_4_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 [LinkedInApp]",
        "LinkedIn",
        id="linkedin",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 10; SM-G973F Build/QQ3A.200805.001; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/85.0.4183.101 Mobile Safari/537.36 "
        "trill_2021806060 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/musical_ly "
        "app_version/18.6.6 ByteLocale/fr ByteFullLocale/fr Region/FR",
        "TikTok",
        id="tiktok",
    ),
    pytest.param(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 10_3_3 like Mac OS X) AppleWebKit/603.3.8 "
        "(KHTML, like Gecko) Mobile/14G60 wxwork/2.1.5 MicroMessenger/6.3.22",
        "WeChat",
        id="wechat",
    ),
    pytest.param(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 14_6 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/14.1.1 Mobile/15E148 Snapchat/11.36.0.36 (like Safari/604.1)",
        "Snapchat",
        id="snapchat",
    ),
    pytest.param(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 Safari Line/12.19.0",
        "LINE",
        id="line",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 9; Pixel Build/PQ3A.190801.002; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/77.0.3865.73 Mobile Safari/537.36 "
        "WebViewApp ExampleApp/1",
        "Android WebView",
        id="android-webview",
    ),
]


@pytest.mark.parametrize(("ua", "app"), IN_APP_BROWSERS)
def test_in_app_browsers_are_people_with_the_app_named(ua: str, app: str) -> None:
    visitor = Classifier().classify(ua)
    assert visitor.is_bot is False
    assert visitor.kind == "human"
    assert visitor.in_app == app
    assert visitor.name == f"{app} in-app"
    assert visitor.is_mobile is True


PREVIEWS = [
    pytest.param(
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Facebook",
        id="facebookexternalhit",
    ),
    pytest.param(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
        "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
        "iMessage",
        id="imessage",
    ),
    pytest.param(
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "Slackbot", id="slack"
    ),
    pytest.param("WhatsApp/2.23.20.0 A", "WhatsApp", id="whatsapp"),
    pytest.param(
        "Mozilla/4.0 (compatible; ms-office; MSOffice 16)", "Microsoft Office", id="ms-office"
    ),
    pytest.param(
        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.4266; Pro)",
        "Microsoft Office",
        id="outlook",
    ),
    pytest.param(
        "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com",
        "Microsoft Teams",
        id="teams",
    ),
    pytest.param("TelegramBot (like TwitterBot)", "Telegram", id="telegram"),
    pytest.param(
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "Discord", id="discord"
    ),
    pytest.param(
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; +http://www.linkedin.com)",
        "LinkedInBot",
        id="linkedin-bot",
    ),
]


@pytest.mark.parametrize(("ua", "name"), PREVIEWS)
def test_link_previews_are_listed_bots(ua: str, name: str) -> None:
    visitor = Classifier().classify(ua)
    assert visitor.is_bot is True
    assert visitor.kind == "preview"
    assert visitor.listed is True
    assert visitor.name == name
    assert visitor.in_app is None


@pytest.mark.parametrize(
    ("ua", "name"),
    [
        ("Barracuda Sentinel (EE)", "Barracuda"),
        (
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com "
            "GoogleImageProxy)",
            "Gmail image proxy",
        ),
        (
            "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
            "Yahoo Mail proxy",
        ),
    ],
)
def test_mail_scanners_are_listed_bots(ua: str, name: str) -> None:
    visitor = Classifier().classify(ua)
    assert (visitor.is_bot, visitor.kind, visitor.listed, visitor.name) == (
        True,
        "scanner",
        True,
        name,
    )


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/41.0.2272.96 Mobile Safari/537.36 (compatible; "
        "Googlebot/2.1; +http://www.google.com/bot.html)",
    ],
    ids=["googlebot", "googlebot-smartphone"],
)
def test_googlebot_is_a_crawler_not_listed(ua: str) -> None:
    visitor = Classifier().classify(ua)
    assert visitor.is_bot is True
    assert visitor.kind == "crawler"
    assert visitor.listed is False
    assert "Googlebot" in visitor.name


@pytest.mark.parametrize(
    ("ua", "name"),
    [
        ("curl/8.4.0", "curl"),
        ("python-requests/2.31.0", "python-requests"),
        ("Go-http-client/1.1", "Go-http-client"),
        ("", "empty user agent"),
        ("   ", "empty user agent"),
        (None, "empty user agent"),
    ],
)
def test_tools_and_empty_user_agents(ua: str | None, name: str) -> None:
    visitor = Classifier().classify(ua)
    assert (visitor.is_bot, visitor.kind, visitor.name) == (True, "tool", name)
    assert visitor.listed is False


@pytest.mark.parametrize(
    "ua",
    [
        # Phone models whose names contain words that broad crawler lists look for.
        "Mozilla/5.0 (Linux; Android 6.0; CUBOT MAX Build/MRA58K) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/51.0.2704.81 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 12; Spider X1 Build/SP1A.210812.016) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 11; Bot 5 Pro) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/118.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 10; Line Plus) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/118.0.0.0 Mobile Safari/537.36",
    ],
    ids=["cubot", "spider", "bot", "line"],
)
def test_bot_like_words_in_a_phone_model_do_not_make_a_bot(ua: str) -> None:
    visitor = Classifier().classify(ua)
    assert visitor.is_bot is False
    assert visitor.kind == "human"
    assert visitor.os == "Android"


@pytest.mark.parametrize("ua", [IPHONE_SAFARI, ANDROID_CHROME, IN_APP_BROWSERS[0].values[0]])
def test_request_signals_lower_confidence_but_never_flip_a_browser(ua: str) -> None:
    classifier = Classifier()
    full = classifier.classify(ua, FULL_HEADERS, "GET")
    bare = classifier.classify(ua, {}, "HEAD")
    no_language = classifier.classify(ua, {"Sec-Fetch-Mode": "navigate"})
    assert full.is_bot is bare.is_bot is no_language.is_bot is False
    assert full.kind == bare.kind == "human"
    assert bare.confidence < no_language.confidence < full.confidence


def test_lower_case_header_names_count_as_present() -> None:
    classifier = Classifier()
    upper = classifier.classify(IPHONE_SAFARI, FULL_HEADERS)
    lower = classifier.classify(
        IPHONE_SAFARI, {"accept-language": "fr", "sec-fetch-mode": "navigate"}
    )
    assert lower.confidence == upper.confidence


def test_extra_pattern_from_config_makes_a_bot() -> None:
    ua = IPHONE_SAFARI + " Zorblat/2.0"
    assert Classifier().classify(ua).is_bot is False
    visitor = Classifier(extra_patterns=[r"zorblat/\d"]).classify(ua)
    assert visitor.is_bot is True
    assert visitor.kind == "crawler"
    assert "zorblat" in visitor.name


def test_extra_pattern_applies_even_to_a_plain_browser_string() -> None:
    visitor = Classifier(extra_patterns=["Pixel 8"]).classify(ANDROID_CHROME)
    assert visitor.is_bot is True


def test_invalid_extra_regex_raises_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match=re.escape("'broken(['")):
        Classifier(extra_patterns=["ok", "broken(["])


def test_results_are_cached_and_cache_is_bounded() -> None:
    classifier = Classifier(cache_size=2)
    first = classifier.classify(IPHONE_SAFARI)
    assert classifier.classify(IPHONE_SAFARI) is first
    classifier.classify(ANDROID_CHROME)
    classifier.classify("curl/8.4.0")  # evicts the iPhone entry
    assert classifier.classify(IPHONE_SAFARI) is not first
    assert classifier.classify(IPHONE_SAFARI) == first
    classifier.cache_clear()
    assert classifier.classify(IPHONE_SAFARI) is not first


def test_header_flags_are_part_of_the_cache_key() -> None:
    classifier = Classifier()
    full = classifier.classify(IPHONE_SAFARI, FULL_HEADERS)
    bare = classifier.classify(IPHONE_SAFARI, {})
    assert full.confidence != bare.confidence


def test_module_level_classify_uses_a_default_instance() -> None:
    visitor = classify("curl/8.4.0")
    assert isinstance(visitor, Visitor)
    assert visitor.kind == "tool"
    assert classify(IPHONE_SAFARI).is_bot is False


def test_visitor_is_immutable() -> None:
    visitor = classify(IPHONE_SAFARI)
    with pytest.raises(AttributeError):
        visitor.is_bot = True  # type: ignore[misc]


def test_huge_user_agent_is_a_bot_without_being_read() -> None:
    visitor = Classifier().classify("curl/8.4.0 " + "x" * 100_000)
    assert visitor.is_bot is True


@pytest.mark.parametrize("index", range(len(SIGNATURES)))
def test_each_signature_regex_compiles_and_has_lower_case_needles(index: int) -> None:
    row = SIGNATURES[index]
    re.compile(row.pattern)
    assert row.needles
    assert all(needle == needle.lower() for needle in row.needles)


@pytest.mark.parametrize("index", range(len(IN_APP)))
def test_each_in_app_regex_compiles_and_has_needles(index: int) -> None:
    row = IN_APP[index]
    re.compile(row.pattern)
    assert row.needles
