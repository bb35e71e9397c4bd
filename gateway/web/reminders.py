"""The payer's "stop reminders for this payment" (issue 14 item 3): ``/pay/{token}/reminders/stop``.

The address is in every reminder, as a link and as ``List-Unsubscribe`` (RFC 8058). GET shows a
page with a button and never writes (mail scanners open links); POST stops the link's
reminders, once (a second POST changes nothing and says the same). A mail client's one-click
unsubscribe is that POST, sent by the mail provider with the body
``List-Unsubscribe=One-Click`` and no ``Origin``: it needs nothing else. A POST that a browser
says came from another site is refused.

The token is the link's signed token, verified as ``/pay`` verifies it; an expired token is
accepted here (its signature is genuine, and stopping reminders is harmless), so a stop link in
an old email still works. Stopping touches the link's reminders only: receipts and every other
message still go.
"""

from __future__ import annotations

from aiohttp import web

from gateway.adapters.tokens import TokenError, TokenProblem
from gateway.domain.errors import NotFound
from gateway.web.keys import REMINDERS, SETTINGS, TOKENS
from gateway.web.language import LANGUAGES
from gateway.web.metrics import render_page as render
from gateway.web.pay import ROBOTS, _no_such_link, _same_origin

routes = web.RouteTableDef()

TEMPLATE = "reminders_stop.html"


def _link_id(request: web.Request) -> str | web.Response:
    try:
        return request.app[TOKENS].verify(request.match_info["token"]).link_id
    except TokenError as exc:
        if exc.problem is TokenProblem.EXPIRED and exc.link_id is not None:
            return exc.link_id
        return _no_such_link(request, truncated=exc.problem is TokenProblem.TRUNCATED)


@routes.get("/pay/{token}/reminders/stop", name="reminders_stop_page")
async def stop_page(request: web.Request) -> web.Response:
    link_id = _link_id(request)
    if isinstance(link_id, web.Response):
        return link_id
    try:
        status = await request.app[REMINDERS].status(link_id)
    except NotFound:
        return _no_such_link(request)
    locale = request.app[LANGUAGES].for_request(request, status.locale)
    context = {
        "token": request.match_info["token"],
        "stopped": status.stopped,
        "payable": status.payable,
    }
    return render(request, TEMPLATE, context, locale=locale, headers=ROBOTS)


@routes.post("/pay/{token}/reminders/stop", name="reminders_stop")
async def stop(request: web.Request) -> web.Response:
    link_id = _link_id(request)
    if isinstance(link_id, web.Response):
        return link_id
    app = request.app
    try:
        status = await app[REMINDERS].status(link_id)
    except NotFound:
        return _no_such_link(request)
    locale = app[LANGUAGES].for_request(request, status.locale)
    if not _same_origin(request, app[SETTINGS].server.public_url):
        refused = {"status": 403, "reason": "Forbidden"}
        return render(request, "bad_request.html", refused, locale=locale, status=403)
    await app[REMINDERS].stop(link_id, actor="payer")
    context = {"token": request.match_info["token"], "stopped": True, "payable": status.payable}
    return render(request, TEMPLATE, context, locale=locale, headers=ROBOTS)
