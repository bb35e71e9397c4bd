"""Explicit signatures of link-preview fetchers and mail scanners.

A match here always means a bot, and the visitor is *listed*: the gateway answers a POST from
it with 403, because these fetchers are known to follow links (and some press buttons) on a
person's behalf. Every pattern must therefore be specific enough never to match a person's
browser, including in-app browsers: anchor bare product names (``^WhatsApp``, ``^Viber``) and
prefer the fetcher's own token (``Slackbot``) over the company's name (``Slack``).

Patterns are case-insensitive and tried in row order, so a more specific row (iMessage's
Facebook-and-Twitter string) must come before a general one. Each row also names *needles*:
lower-case substrings at least one of which every string it matches contains. The classifier
checks the needles first (plain substring tests cost ~50 ns each, where one combined regex of
all rows costs ~200 µs on a 200-character string) and runs a row's regex only on a hit, so a
row's needles must never miss a string its regex matches (a test checks this on the corpus).
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

SignatureKind = Literal["preview", "scanner"]


class Signature(NamedTuple):
    pattern: str
    name: str  # reported to the admin
    kind: SignatureKind
    needles: tuple[str, ...]


SIGNATURES: Final[tuple[Signature, ...]] = (
    # iMessage fetches previews claiming to be both Facebook's and Twitter's fetchers.
    Signature(
        r"facebookexternalhit/1\.1 Facebot Twitterbot/1\.0",
        "iMessage",
        "preview",
        ("facebookexternalhit/1.1 facebot",),
    ),
    # Messages' own URL fetches on Apple devices (no browser token, just the app and CFNetwork).
    Signature(
        r"^(?:MobileSMS|Messages|com\.apple\.(?:MobileSMS|messages)[\w.-]*)/[\d.]+ CFNetwork/",
        "iMessage",
        "preview",
        ("cfnetwork/",),
    ),
    Signature(
        r"facebookexternalhit|\bFacebot\b|meta-external(?:agent|fetcher|hit)",
        "Facebook",
        "preview",
        ("facebookexternalhit", "facebot", "meta-external"),
    ),
    Signature(r"^WhatsApp(?:/|$)", "WhatsApp", "preview", ("whatsapp",)),
    Signature(r"Slackbot|Slack-ImgProxy", "Slackbot", "preview", ("slackbot", "slack-imgproxy")),
    Signature(r"TelegramBot", "Telegram", "preview", ("telegrambot",)),
    Signature(r"Discordbot", "Discord", "preview", ("discordbot",)),
    Signature(r"LinkedInBot", "LinkedInBot", "preview", ("linkedinbot",)),
    Signature(r"Twitterbot", "Twitterbot", "preview", ("twitterbot",)),
    # Teams and Skype share this fetcher.
    Signature(r"SkypeUriPreview", "Microsoft Teams", "preview", ("skypeuripreview",)),
    Signature(r"MicrosoftPreview/", "Microsoft Preview", "preview", ("microsoftpreview/",)),
    # Outlook and the other Office apps fetch a link themselves before opening the browser.
    Signature(
        r"\bms-office\b|\bMSOffice \d|Microsoft Office|Microsoft Outlook|Outlook-(?:iOS|Android)/",
        "Microsoft Office",
        "preview",
        (
            "ms-office",
            "msoffice ",
            "microsoft office",
            "microsoft outlook",
            "outlook-ios/",
            "outlook-android/",
        ),
    ),
    Signature(r"BingPreview", "BingPreview", "preview", ("bingpreview",)),
    Signature(r"Google-Read-Aloud", "Google Read Aloud", "preview", ("google-read-aloud",)),
    Signature(
        r"Google Web Preview|Google-PageRenderer|developers\.google\.com/\+/web/snippet",
        "Google page preview",
        "preview",
        ("google web preview", "google-pagerenderer", "developers.google.com/+/web/snippet"),
    ),
    Signature(r"Yahoo Link Preview", "Yahoo Link Preview", "preview", ("yahoo link preview",)),
    Signature(
        r"Snap URL Preview|SnapURLPreview",
        "Snapchat",
        "preview",
        ("snap url preview", "snapurlpreview"),
    ),
    Signature(r"line-poker", "LINE", "preview", ("line-poker",)),
    Signature(r"kakaotalk-scrap", "KakaoTalk", "preview", ("kakaotalk-scrap",)),
    Signature(r"^Viber(?:/|$)", "Viber", "preview", ("viber",)),
    # Mastodon servers fetch previews with their HTTP library, naming Mastodon in parentheses.
    Signature(r"\(Mastodon/", "Mastodon", "preview", ("(mastodon/",)),
    Signature(r"\bBluesky(?:PreviewBot)?/|\bcardyb\b", "Bluesky", "preview", ("bluesky", "cardyb")),
    Signature(
        r"Pinterestbot|pinterest\.com/bot",
        "Pinterest",
        "preview",
        ("pinterestbot", "pinterest.com/bot"),
    ),
    Signature(r"\(Zoom\.Mac\b", "Zoom", "preview", ("(zoom.mac",)),
    Signature(r"Mattermost-Bot|^mattermost-", "Mattermost", "preview", ("mattermost",)),
    # Generic names that only link unfurlers use.
    Signature(
        r"link ?preview|linkexpand|unfurl|url ?preview|previewbot|richlinkbot",
        "link preview",
        "preview",
        (
            "linkpreview",
            "link preview",
            "linkexpand",
            "unfurl",
            "urlpreview",
            "url preview",
            "previewbot",
            "richlinkbot",
        ),
    ),
    # Mail providers' proxies and mail security gateways.
    Signature(
        r"GoogleImageProxy|via ggpht\.com",
        "Gmail image proxy",
        "scanner",
        ("googleimageproxy", "via ggpht.com"),
    ),
    Signature(r"Google-Safety", "Gmail link check", "scanner", ("google-safety",)),
    Signature(r"YahooMailProxy", "Yahoo Mail proxy", "scanner", ("yahoomailproxy",)),
    Signature(r"Safe ?Links", "Safe Links", "scanner", ("safelinks", "safe links")),
    Signature(r"Barracuda", "Barracuda", "scanner", ("barracuda",)),
    Signature(r"Kaspersky", "Kaspersky", "scanner", ("kaspersky",)),
    Signature(r"Proofpoint|URLDefense", "Proofpoint", "scanner", ("proofpoint", "urldefense")),
    Signature(r"Mimecast", "Mimecast", "scanner", ("mimecast",)),
    Signature(r"Trend ?Micro", "Trend Micro", "scanner", ("trendmicro", "trend micro")),
    Signature(r"\bSophos\b", "Sophos", "scanner", ("sophos",)),
    Signature(r"Symantec|Norton Safe ?Web", "Symantec", "scanner", ("symantec", "norton safe")),
    Signature(r"Forcepoint|Websense", "Forcepoint", "scanner", ("forcepoint", "websense")),
    Signature(r"FireEye|Trellix", "Trellix", "scanner", ("fireeye", "trellix")),
    Signature(r"Cloudmark", "Cloudmark", "scanner", ("cloudmark",)),
    Signature(r"FortiGuard|Fortinet", "Fortinet", "scanner", ("fortiguard", "fortinet")),
    Signature(r"Zscaler", "Zscaler", "scanner", ("zscaler",)),
    Signature(r"Avanan", "Avanan", "scanner", ("avanan",)),
)
