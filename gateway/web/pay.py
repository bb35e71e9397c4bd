"""The payer's pages: ``/pay/{token}`` (open, confirm) and its return page.

GET and HEAD read only. POST is the one place an attempt is created, and only through
:class:`CheckoutService`, which writes the intent before it calls Stripe.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from gateway.adapters.tokens import TokenError, TokenProblem, VerifiedToken
from gateway.domain.checkout import LinkState
from gateway.services.checkout import LinkView, Redirect, ReturnUrls
from gateway.web.keys import CHECKOUT, CLASSIFIER, OPENS, SETTINGS, TOKENS
from gateway.web.pages import render

routes = web.RouteTableDef()

_SESSION_ID = re.compile(r"^[A-Za-z0-9_]{1,255}$")
ROBOTS = {"X-Robots-Tag": "noindex, nofollow"}

# State -> (template, status) for a link that cannot be paid now.
_REFUSAL_PAGES: dict[LinkState, tuple[str, int]] = {
    LinkState.PAID: ("paid.html", 409),
    LinkState.PROCESSING: ("processing.html", 409),
    LinkState.REVOKED: ("revoked.html", 410),
    LinkState.EXPIRED: ("expired.html", 410),
}


def _verify(request: web.Request) -> VerifiedToken | web.Response:
    token = request.match_info["token"]
    try:
        return request.app[TOKENS].verify(token)
    except TokenError as exc:
        if exc.problem is TokenProblem.EXPIRED:
            return render(request, "expired.html", {"token": token}, status=410, headers=ROBOTS)
        truncated = exc.problem is TokenProblem.TRUNCATED
        return render(request, "invalid.html", {"truncated": truncated}, status=404, headers=ROBOTS)


def _refusal(request: web.Request, view: LinkView, token: str) -> web.Response:
    template, status = _REFUSAL_PAGES[view.state]
    return render(request, template, {"view": view, "token": token}, status=status, headers=ROBOTS)


@routes.get("/pay/{token}", name="pay")
async def open_link(request: web.Request) -> web.Response:
    verified = _verify(request)
    if isinstance(verified, web.Response):
        return verified
    token = request.match_info["token"]
    app = request.app
    visitor = app[CLASSIFIER].classify(
        request.headers.get("User-Agent"), request.headers, request.method
    )
    wants_confirm = request.query.get("view") == "confirm"
    if visitor.is_bot and not wants_confirm:
        # A preview bot gets nothing worth caching or showing: no amount, no name.
        app[OPENS].bot_preview(verified.link_id, visitor.name)
        return render(request, "preview.html", {"token": token}, headers=ROBOTS)
    view = await app[CHECKOUT].view(verified.link_id)
    if view is None:
        return render(request, "invalid.html", {"truncated": False}, status=404, headers=ROBOTS)
    if view.state is not LinkState.PAYABLE:
        return _refusal(request, view, token)
    if request.method == "GET" and not visitor.is_bot:
        app[OPENS].human_open(verified.link_id)
    elif visitor.is_bot:
        app[OPENS].bot_preview(verified.link_id, visitor.name)
    context: dict[str, Any] = {"view": view, "token": token, "in_app": visitor.in_app}
    return render(request, "confirm.html", context, headers=ROBOTS)


def _same_origin(request: web.Request, public_url: str) -> bool:
    """The Pay form is authorised by the signed token, not a cookie; still, refuse a POST that a
    browser says came from another site. ``Origin: null`` is what our own no-referrer form sends."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return True
    ours = urlsplit(public_url)
    theirs = urlsplit(origin)
    return (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc) or (
        theirs.netloc == request.host
    )


@routes.post("/pay/{token}", name="confirm")
async def confirm(request: web.Request) -> web.Response:
    verified = _verify(request)
    if isinstance(verified, web.Response):
        return verified
    token = request.match_info["token"]
    app = request.app
    settings = app[SETTINGS]
    visitor = app[CLASSIFIER].classify(request.headers.get("User-Agent"), request.headers, "POST")
    if visitor.listed:
        # A known link-preview or mail-scanner fetcher: it may press buttons, but creates nothing.
        return render(request, "preview.html", {"token": token}, status=403, headers=ROBOTS)
    if not _same_origin(request, settings.server.public_url):
        return render(
            request, "bad_request.html", {"status": 403, "reason": "Forbidden"}, status=403
        )
    public = settings.server.public_url.rstrip("/")
    checkout = settings.checkout
    urls = ReturnUrls(
        success_url=public
        + checkout.success_path.format(token=token)
        + "?session_id={CHECKOUT_SESSION_ID}",
        cancel_url=public + checkout.cancel_path.format(token=token),
    )
    result = await app[CHECKOUT].confirm(verified.link_id, urls)
    if isinstance(result, Redirect):
        raise web.HTTPSeeOther(result.url)
    return _refusal(request, result.view, token)


@routes.get("/pay/{token}/return", name="pay_return")
async def returned(request: web.Request) -> web.Response:
    verified = _verify(request)
    if isinstance(verified, web.Response):
        return verified
    token = request.match_info["token"]
    session_id = request.query.get("session_id", "")
    if not _SESSION_ID.match(session_id):
        session_id = ""
    view = await request.app[CHECKOUT].returned(verified.link_id, session_id or None)
    if view is None:
        return render(request, "invalid.html", {"truncated": False}, status=404, headers=ROBOTS)
    return render(request, "return.html", {"view": view, "token": token}, headers=ROBOTS)
