"""Explicit signatures of link-preview fetchers and mail scanners.

A match here always means a bot, and the visitor is *listed*: the gateway answers a POST from
it with 403, because these fetchers are known to follow links (and some press buttons) on a
person's behalf. Every pattern must therefore be specific enough never to match a person's
browser, including in-app browsers: anchor bare product names (``^WhatsApp``, ``^Viber``) and
prefer the fetcher's own token (``Slackbot``) over the company's name (``Slack``).

Patterns are case-insensitive, use only non-capturing groups (the classifier finds the matched
row by group index), and are tried in this order at each position of the string, so a more
specific row (iMessage's Facebook-and-Twitter string) must come before a general one.
"""

from __future__ import annotations

from typing import Final, Literal

SignatureKind = Literal["preview", "scanner"]

# (regex, name reported to the admin, kind)
SIGNATURES: Final[tuple[tuple[str, str, SignatureKind], ...]] = (
    # iMessage fetches previews claiming to be both Facebook's and Twitter's fetchers.
    (r"facebookexternalhit/1\.1 Facebot Twitterbot/1\.0", "iMessage", "preview"),
    # Messages' own URL fetches on Apple devices (no browser token, just the app and CFNetwork).
    (
        r"^(?:MobileSMS|Messages|com\.apple\.(?:MobileSMS|messages)[\w.-]*)/[\d.]+ CFNetwork/",
        "iMessage",
        "preview",
    ),
    (r"facebookexternalhit|\bFacebot\b|meta-external(?:agent|fetcher|hit)", "Facebook", "preview"),
    (r"^WhatsApp(?:/|$)", "WhatsApp", "preview"),
    (r"Slackbot|Slack-ImgProxy", "Slackbot", "preview"),
    (r"TelegramBot", "Telegram", "preview"),
    (r"Discordbot", "Discord", "preview"),
    (r"LinkedInBot", "LinkedInBot", "preview"),
    (r"Twitterbot", "Twitterbot", "preview"),
    # Teams and Skype share this fetcher.
    (r"SkypeUriPreview", "Microsoft Teams", "preview"),
    (r"MicrosoftPreview/", "Microsoft Preview", "preview"),
    # Outlook and the other Office apps fetch a link themselves before opening the browser.
    (
        r"\bms-office\b|\bMSOffice \d|Microsoft Office|Microsoft Outlook|Outlook-(?:iOS|Android)/",
        "Microsoft Office",
        "preview",
    ),
    (r"BingPreview", "BingPreview", "preview"),
    (r"Google-Read-Aloud", "Google Read Aloud", "preview"),
    (r"Google Web Preview|Google-PageRenderer|developers\.google\.com/\+/web/snippet", "Google page preview", "preview"),
    (r"Yahoo Link Preview", "Yahoo Link Preview", "preview"),
    (r"Snap URL Preview|SnapURLPreview", "Snapchat", "preview"),
    (r"line-poker", "LINE", "preview"),
    (r"kakaotalk-scrap", "KakaoTalk", "preview"),
    (r"^Viber(?:/|$)", "Viber", "preview"),
    # Mastodon servers fetch previews with their HTTP library, naming Mastodon in parentheses.
    (r"\(Mastodon/", "Mastodon", "preview"),
    (r"\bBluesky(?:PreviewBot)?/|\bcardyb\b", "Bluesky", "preview"),
    (r"Pinterestbot|pinterest\.com/bot", "Pinterest", "preview"),
    (r"\(Zoom\.Mac\b", "Zoom", "preview"),
    (r"Mattermost-Bot|^mattermost-", "Mattermost", "preview"),
    # Generic names that only link unfurlers use.
    (
        r"link ?preview|linkexpand|unfurl|url ?preview|previewbot|richlinkbot",
        "link preview",
        "preview",
    ),
    # Mail providers' proxies and mail security gateways.
    (r"GoogleImageProxy|via ggpht\.com", "Gmail image proxy", "scanner"),
    (r"Google-Safety", "Gmail link check", "scanner"),
    (r"YahooMailProxy", "Yahoo Mail proxy", "scanner"),
    (r"Safe ?Links", "Safe Links", "scanner"),
    (r"Barracuda", "Barracuda", "scanner"),
    (r"Kaspersky", "Kaspersky", "scanner"),
    (r"Proofpoint|URLDefense", "Proofpoint", "scanner"),
    (r"Mimecast", "Mimecast", "scanner"),
    (r"Trend ?Micro", "Trend Micro", "scanner"),
    (r"\bSophos\b", "Sophos", "scanner"),
    (r"Symantec|Norton Safe ?Web", "Symantec", "scanner"),
    (r"Forcepoint|Websense", "Forcepoint", "scanner"),
    (r"FireEye|Trellix", "Trellix", "scanner"),
    (r"Cloudmark", "Cloudmark", "scanner"),
    (r"FortiGuard|Fortinet", "Fortinet", "scanner"),
    (r"Zscaler", "Zscaler", "scanner"),
    (r"Avanan", "Avanan", "scanner"),
)
