"""The demo's gallery (``/_demo/gallery``): every page a payer can meet, in every offered
language, on one page, for reviewers and translators (issue 13 item 7).

A plain table, one row per page state and one column per language. Each link is the page's own
address in the demo with ``?lang=xx`` (the switcher's choice, so it also sets that link's
language cookie, as the switcher does). Most states are real sample links the demo drove there
(gateway.dev.demo). The few a payer only meets after a POST or by who they are (the answer to
"Email me a new link", Stripe being down, a bug, a link-preview bot, an in-app browser) are
rendered by ``/_demo/page/{key}`` from the same templates, in the same locale machinery, with
the context the real handler would pass; nothing there writes anything. ``/_demo/gallery.json``
lists the same, for the browser suite to walk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from markupsafe import escape

from gateway.domain.checkout import LinkState
from gateway.domain.errors import new_reference
from gateway.domain.locales import NATIVE_NAMES, OFFERED
from gateway.web.keys import CHECKOUT
from gateway.web.language import LANGUAGES, QUERY
from gateway.web.pages import PAGES
from gateway.web.pay import ROBOTS, confirm_context

# What the demo's sample links are (gateway.dev.demo.DemoSamples.by_key()): key -> URL.
SampleUrls = Callable[[], Mapping[str, str]]

IN_APP_BROWSER = "Instagram"  # the in-app hint names the app the payer is in


@dataclasses.dataclass(frozen=True, slots=True)
class Shown:
    """One payer page state in the gallery."""

    key: str
    label: str  # what a reviewer reads in the table
    path: str  # the page in the demo, without ?lang=
    status: int  # what it answers with
    how: str  # how a payer meets it
    rendered: bool = False  # drawn by /_demo/page/ (a real payer reaches it by a POST or header)

    def url(self, locale: str) -> str:
        joiner = "&" if "?" in self.path else "?"
        return f"{self.path}{joiner}{QUERY}={locale}"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"urls": {code: self.url(code) for code in OFFERED}}


def _path(url: str) -> str:
    """A sample's URL without its origin (the gallery's links then work on any host name)."""
    return "/" + url.split("://", 1)[-1].split("/", 1)[1]


def _token(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def gallery_pages(samples: Mapping[str, str]) -> list[Shown]:
    """Every state, in the order a payer may meet them."""
    fresh, failed = _path(samples["fresh"]), _path(samples["failed"])
    paid, processing = _path(samples["paid"]), _path(samples["processing"])
    # Half its signature cut off: what a mail app that splits a long link leaves.
    truncated = fresh[: len(fresh) - 14]
    render = "/_demo/page/"
    return [
        Shown("confirm", "Confirm (one item)", fresh, 200, "a fresh link"),
        Shown(
            "confirm_items", "Confirm (two items)", _path(samples["two_items"]), 200, "two items"
        ),
        Shown(
            "confirm_failed",
            "Confirm, last bank debit failed",
            failed,
            200,
            "a bank debit turned down days later; the link can be paid again",
        ),
        Shown(
            "in_app",
            "Confirm, in-app browser hint",
            render + "in_app",
            200,
            f"opened inside an app's browser ({IN_APP_BROWSER}), told by its User-Agent",
            rendered=True,
        ),
        Shown(
            "preview",
            "Preview for link-preview bots",
            render + "preview",
            200,
            "what Slack, WhatsApp and mail scanners get (by User-Agent), in the link's language: "
            "no amount, no name; its button adds ?view=confirm",
            rendered=True,
        ),
        Shown("paid", "Already paid", paid, 409, "the link after its payment"),
        Shown("processing", "Payment processing", processing, 409, "a bank debit not settled yet"),
        Shown("return_paid", "Return from Stripe: paid", paid + "/return", 200, "back from Stripe"),
        Shown(
            "return_processing",
            "Return from Stripe: processing",
            processing + "/return",
            200,
            "back from Stripe after starting a bank debit",
        ),
        Shown(
            "return_failed",
            "Return from Stripe: failed",
            failed + "/return",
            200,
            "back on the return page after the bank turned the debit down",
        ),
        Shown(
            "return_confirming",
            "Return from Stripe: confirming",
            _path(samples["two_items"]) + "/return",
            200,
            "back from Stripe before the payment is known (or without paying)",
        ),
        Shown(
            "expired",
            "Expired, can ask for a new link",
            _path(samples["expired"]),
            410,
            "a link past its validity, email configured (once renewed, it shows as renewed)",
        ),
        Shown(
            "expired_no_renew",
            "Expired, cannot ask for a new link",
            render + "expired_no_renew",
            410,
            "the same where the gateway has no email configured",
            rendered=True,
        ),
        Shown(
            "revoked",
            "Withdrawn by the organisation",
            _path(samples["revoked"]),
            410,
            "the treasurer revoked the link",
        ),
        Shown(
            "revoked_renewed",
            "Replaced by a new link",
            _path(samples["renewed"]),
            410,
            'an expired link after "Email me a new link"',
        ),
        Shown(
            "renewed_sent",
            "New link sent",
            render + "renewed_sent",
            200,
            'the answer to "Email me a new link"',
            rendered=True,
        ),
        Shown(
            "renewed_limited",
            "New link: asked too often",
            render + "renewed_limited",
            429,
            'the answer to "Email me a new link" past its limit per day',
            rendered=True,
        ),
        Shown(
            "renewed_failed",
            "New link: email not sent",
            render + "renewed_failed",
            503,
            'the answer to "Email me a new link" when the mail server refused it',
            rendered=True,
        ),
        Shown("invalid", "Not a valid link", "/pay/lk_this-is-not-a-link", 404, "a made-up token"),
        Shown("truncated", "Incomplete link", truncated, 404, "a link cut short by a mail app"),
        Shown("not_found", "Page not found", "/no-such-page", 404, "any other address"),
        Shown(
            "error_503",
            "Stripe not answering (503)",
            render + "error_503",
            503,
            "Pay pressed while Stripe is down; to meet the real one: POST "
            '{"drop_next": 2} to the emulator\'s /_emulator/faults, then press Pay '
            "(here, its Try again button has nothing to post to)",
            rendered=True,
        ),
        Shown(
            "error_500",
            "Something went wrong (500)",
            render + "error_500",
            500,
            "a bug in the gateway (no way to cause one on purpose)",
            rendered=True,
        ),
        Shown(
            "bad_request",
            "Request not accepted (403)",
            render + "bad_request",
            403,
            "Pay pressed from another site's form",
            rendered=True,
        ),
    ]


async def _render_sample(request: web.Request, samples: Mapping[str, str]) -> web.Response:
    """One page a payer meets only after a POST or by their browser, as the handler renders it."""
    app = request.app
    key = request.match_info["key"]
    pages = app[PAGES]
    locale = app[LANGUAGES].for_request(request)
    fresh = _token(samples["fresh"])
    simple: dict[str, tuple[str, dict[str, Any], int]] = {
        "expired_no_renew": (
            "expired.html",
            {"token": _token(samples["expired"]), "can_renew": False},
            410,
        ),
        "renewed_sent": ("renewed.html", {"variant": "sent"}, 200),
        "renewed_limited": ("renewed.html", {"variant": "limited"}, 429),
        "renewed_failed": ("renewed.html", {"variant": "failed"}, 503),
        "error_503": ("error.html", {"reference": new_reference()}, 503),
        "error_500": ("error.html", {"reference": new_reference(), "internal": True}, 500),
        "bad_request": ("bad_request.html", {"status": 403, "reason": "Forbidden"}, 403),
    }
    if key in simple:
        template, context, status = simple[key]
        return pages.render(template, context, locale=locale, status=status, headers=ROBOTS)
    if key == "preview":
        return pages.render_for_token("preview.html", fresh, locale=locale, headers=ROBOTS)
    if key == "in_app":
        # A sample still payable (a reviewer may have paid the fresh one by now).
        for sample in ("fresh", "two_items"):
            token = _token(samples[sample])
            view = await app[CHECKOUT].view(token.split(".", 1)[0])
            if view is not None and view.state is LinkState.PAYABLE:
                context = confirm_context(view, token, IN_APP_BROWSER)
                return pages.render("confirm.html", context, locale=locale, headers=ROBOTS)
        raise web.HTTPConflict(text="both payable sample links were paid in this run of the demo")
    raise web.HTTPNotFound()


def _table(pages: list[Shown]) -> str:
    head = "".join(
        f'<th scope="col" lang="{code}">{escape(NATIVE_NAMES[code])}</th>' for code in OFFERED
    )
    rows = []
    for shown in pages:
        cells = "".join(
            f'<td><a href="{escape(shown.url(code))}" hreflang="{code}" lang="{code}">'
            f"{escape(NATIVE_NAMES[code])}</a></td>"
            for code in OFFERED
        )
        how = str(escape(shown.how)) + (" <em>(rendered sample)</em>" if shown.rendered else "")
        rows.append(
            f'<tr><th scope="row">{escape(shown.label)}</th>{cells}'
            f"<td>{shown.status}</td><td>{how}</td></tr>"
        )
    return (
        '<table border="1" cellpadding="6">'
        "<caption>Every payer page state in every offered language</caption>"
        f'<thead><tr><th scope="col">Page</th>{head}<th scope="col">Status</th>'
        '<th scope="col">How a payer meets it</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def gallery_html(pages: list[Shown]) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>Gallery: every payer page in every language - gateway demo</title>
</head>
<body>
<main>
<h1>Gallery: every payer page in every language</h1>
<p>For reviewers and translators. Each link opens the page as a payer meets it, in that
language (<code>?lang=</code>, the switcher's own choice: it is remembered for that link, as
the switcher does, until another language is chosen). Pages marked <em>rendered sample</em>
are reached by a real payer only after pressing a button or by their browser; here they are
drawn from the same templates with the context the gateway would use. Pressing Pay or
"Email me a new link" on a sample changes it for this run of the demo.</p>
{_table(pages)}
<p>The same as JSON: <a href="/_demo/gallery.json">/_demo/gallery.json</a>.
The sample links: <a href="/_demo/links.json">/_demo/links.json</a>.
Emails the demo sent: <a href="/_demo/mail">/_demo/mail</a>.</p>
</main>
</body>
</html>
"""


def gallery_routes(sample_urls: SampleUrls) -> list[web.RouteDef]:
    """``/_demo/gallery``, ``/_demo/gallery.json`` and ``/_demo/page/{key}``, reading the demo's
    sample links when asked (they exist only once the demo has driven them)."""

    def ready() -> Mapping[str, str]:
        samples = sample_urls()
        if not samples:
            raise web.HTTPServiceUnavailable(text="the demo is still issuing its sample links")
        return samples

    async def gallery(_: web.Request) -> web.Response:
        html = gallery_html(gallery_pages(ready()))
        return web.Response(text=html, content_type="text/html")

    async def gallery_json(_: web.Request) -> web.Response:
        pages = gallery_pages(ready())
        return web.json_response(
            {
                "languages": [{"code": c, "name": NATIVE_NAMES[c]} for c in OFFERED],
                "pages": [shown.as_dict() for shown in pages],
            }
        )

    async def sample_page(request: web.Request) -> web.Response:
        return await _render_sample(request, ready())

    return [
        web.get("/_demo/gallery", gallery, name="demo_gallery"),
        web.get("/_demo/gallery.json", gallery_json, name="demo_gallery_json"),
        web.get("/_demo/page/{key}", sample_page, name="demo_page"),
    ]
