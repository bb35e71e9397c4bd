"""The payer's pages: ``/pay/{token}`` (open, confirm) and its return page.

GET and HEAD read only. POST is the one place an attempt is created, and only through
:class:`CheckoutService`, which writes the intent before it calls Stripe.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from gateway.adapters.tokens import TokenError, TokenProblem, VerifiedToken
from gateway.domain.checkout import LinkFacts, LinkState, OrderFacts
from gateway.domain.locales import stripe_locale
from gateway.domain.orders import OrderStatus
from gateway.services.checkout import ItemView, LinkView, Redirect
from gateway.services.renewal import RenewOutcome
from gateway.services.sessions import ReturnUrls
from gateway.services.snapshots import SnapshotCache
from gateway.web.keys import (
    CHECKOUT,
    CLASSIFIER,
    CLOCK,
    METRICS,
    OPENS,
    RENEWALS,
    SETTINGS,
    TOKENS,
)
from gateway.web.language import LANGUAGES
from gateway.web.metrics import PAGE_KIND, PROVIDER_TROUBLE
from gateway.web.metrics import render_page as render
from gateway.web.middleware import PAYER_LINK
from gateway.web.pages import PAGES
from gateway.web.payable import (
    PAYABLE,
    PAYABLE_IN,
    PagesByLocale,
    PayablePages,
    link_locale,
    valid_until,
)

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


def _no_such_link(request: web.Request, *, truncated: bool = False) -> web.Response:
    locale = request.app[LANGUAGES].for_request(request)
    context = {"truncated": truncated}
    return render(
        request,
        "invalid.html",
        context,
        locale=locale,
        status=404,
        headers=ROBOTS,
        cache_key=truncated,
    )


def _problem_seen(request: web.Request, link_id: str | None) -> None:
    """The link's payer is shown a page saying it cannot be paid (expired): tallied in memory
    with the open counts (a GET writes nothing), so a payment recorded after it gets a receipt
    that says it went through after all."""
    if link_id is None or request.method == "HEAD":
        return
    visitor = request.app[CLASSIFIER].classify(
        request.headers.get("User-Agent"), request.headers, request.method
    )
    if not visitor.is_bot:
        request.app[OPENS].problem_seen(link_id)


def _verify(request: web.Request) -> VerifiedToken | web.Response:
    token = request.match_info["token"]
    try:
        verified = request.app[TOKENS].verify(token)
    except TokenError as exc:
        if exc.problem is TokenProblem.EXPIRED:
            _problem_seen(request, exc.link_id)
            # An expired token names no link we read here: the browser's language (or choice).
            locale = request.app[LANGUAGES].for_request(request)
            context = {"token": token, "can_renew": request.app[RENEWALS].enabled}
            return render(
                request, "expired.html", context, locale=locale, status=410, headers=ROBOTS
            )
        return _no_such_link(request, truncated=exc.problem is TokenProblem.TRUNCATED)
    request[PAYER_LINK] = verified.link_id  # an error page after this is its payer's problem
    return verified


async def _refusal(request: web.Request, view: LinkView, token: str) -> web.Response:
    template, status = _REFUSAL_PAGES[view.state]
    if view.state is LinkState.EXPIRED:
        _problem_seen(request, view.id)
    locale = request.app[LANGUAGES].for_request(request, view.locale)
    context = {"view": view, "token": token, "can_renew": request.app[RENEWALS].enabled}
    if view.state is LinkState.REVOKED:
        # Withdrawn by "Email me a new link" (say when the new one went, offer it again) or by
        # the organisation (say who to contact).
        context["renewal"] = await request.app[RENEWALS].replacement(view.id)
    return render(request, template, context, locale=locale, status=status, headers=ROBOTS)


# Orders whose outcome came from the bank; the newest of them is what happened last.
_SETTLED = frozenset(
    {OrderStatus.PROCESSING, OrderStatus.PAID, OrderStatus.FAILED, OrderStatus.REFUNDED}
)


def failed_payment(view: LinkView, session_id: str | None = None) -> OrderFacts | None:
    """The payment the payer must hear failed (a bank debit turned down days later), if any.

    With ``session_id`` (the return page): that session's own order, when it is the link's.
    Otherwise: the newest order that reached the bank, when it failed. Only a link that can be
    paid again has one (a paid or processing link says so instead).
    """
    if view.state is not LinkState.PAYABLE:
        return None
    orders = view.facts.orders
    if session_id:
        for order in orders:
            if order.session_id == session_id:
                return order if order.status is OrderStatus.FAILED else None
    settled = [order for order in orders if order.status in _SETTLED]
    if not settled:
        return None
    last = max(settled, key=lambda order: order.created_at)
    return last if last.status is OrderStatus.FAILED else None


def confirm_context(view: LinkView, token: str, in_app: str | None) -> dict[str, Any]:
    """What ``confirm.html`` is rendered with (here, and once per link for the packed pages)."""
    return {"view": view, "token": token, "in_app": in_app, "failed": failed_payment(view)}


def _payable_until(view: LinkView) -> float | None:
    """Until when the view stays payable with nothing written (its validity end), if it is."""
    return view.valid_until.timestamp() if view.state is LinkState.PAYABLE else None


def _sample_view() -> LinkView:
    """A typical payable link: what packed pages are compressed against and checked with."""
    until = datetime(2100, 1, 1, tzinfo=UTC)
    return LinkView(
        id="lk_SampleSample",
        name="Sample Parent",
        description="Spring season",
        currency="usd",
        amount_total=15000,
        ref="sample/1",
        items=(ItemView("Spring fee", 10000, 1), ItemView("Jersey", 2500, 2)),
        state=LinkState.PAYABLE,
        valid_until=until,
        paid_at=None,
        facts=LinkFacts(revoked=False, valid_until=until, orders=()),
    )


def setup_payable_pages(app: web.Application, snapshots: SnapshotCache[Any]) -> None:
    """The packed confirm pages, siblings of the link snapshot (see gateway.web.payable): each
    link's in its own language, and, for whoever asks for another, that language's."""

    def packed_pages(fixed_locale: str | None = None, **options: Any) -> PayablePages[LinkView]:
        return PayablePages(
            app[PAGES],
            snapshots,
            template="confirm.html",
            context=confirm_context,
            payable_until=_payable_until,
            locale_of=lambda view: view.locale,
            default_locale=app[SETTINGS].checkout.default_locale,
            sample=_sample_view(),
            fixed_locale=fixed_locale,
            **options,
        )

    natural = app[PAYABLE] = packed_pages()
    # Each language's instance is made at its first request (PagesByLocale); the check of a
    # language's pages is shared with the natural instance's. It holds only the links someone
    # asked for in that language: a small budget of pages kept inflated.
    app[PAYABLE_IN] = PagesByLocale(
        lambda locale: packed_pages(
            locale, composes=natural.composes, max_bytes=8 << 20, inflated_bytes=1 << 20
        )
    )


@routes.get("/pay/{token}", name="pay")
async def open_link(request: web.Request) -> web.Response:
    verified = _verify(request)
    if isinstance(verified, web.Response):
        return verified
    token = request.match_info["token"]
    app = request.app
    link_id = verified.link_id
    visitor = app[CLASSIFIER].classify(
        request.headers.get("User-Agent"), request.headers, request.method
    )
    # Most requests carry no query string: skip parsing one.
    wants_confirm = bool(request.query_string) and request.query.get("view") == "confirm"
    # A payable link's page comes packed from the snapshot; anything else goes the long way.
    # The snapshot also knows the link's own language, which even a bot preview is written in.
    checkout = app[CHECKOUT]
    payable = app[PAYABLE]
    packed = payable.fresh(link_id)
    if packed is None:
        packed = await payable.get(link_id, lambda: checkout.fresh_view(link_id))
    if visitor.is_bot and not wants_confirm:
        # A preview bot gets nothing worth caching or showing: no amount, no name. It has no
        # language of its own to ask for: the link's, else the default.
        _count_open(request, link_id, True, visitor.name)
        request[PAGE_KIND] = "preview"
        locale = payable.default_locale if packed is None else payable.page_locale(packed)
        return app[PAGES].render_for_token("preview.html", token, locale=locale, headers=ROBOTS)
    if packed is None:
        return _no_such_link(request)
    locale = app[LANGUAGES].for_request(request, link_locale(packed))
    now = app[CLOCK].now()
    if now < valid_until(packed) and locale != payable.page_locale(packed):
        # Asked for another language than the link's page is in: that language's packed page.
        payable = app[PAYABLE_IN][locale]
        packed = payable.fresh(link_id) or await payable.get(
            link_id, lambda: checkout.fresh_view(link_id)
        )
        if packed is None:
            return _no_such_link(request)
    if now < valid_until(packed):
        _count_open(request, link_id, visitor.is_bot, visitor.name)
        request[PAGE_KIND] = "confirm"
        body = payable.body(packed, token, visitor.in_app)
        return app[PAGES].respond(body, locale=locale, headers=ROBOTS)
    view = await checkout.view(link_id)
    if view is None:
        return _no_such_link(request)
    if view.state is not LinkState.PAYABLE:
        return await _refusal(request, view, token)
    _count_open(request, link_id, visitor.is_bot, visitor.name)
    context = confirm_context(view, token, visitor.in_app)
    # The page is a function of the view (immutable, hashed by identity), the token, the
    # in-app hint and the locale (Pages keys by it); a snapshot reloaded after a change is a
    # new view, so a new page.
    return render(
        request,
        "confirm.html",
        context,
        locale=locale,
        headers=ROBOTS,
        cache_key=(view, token, visitor.in_app),
    )


# The console's "open the payer's page" adds this: a treasurer looking is not the payer opening.
FROM_CONSOLE = "from=console"


def _count_open(request: web.Request, link_id: str, is_bot: bool, name: str) -> None:
    """A page view in the open counts, and a bot's in ``gateway_bot_previews`` (only here)."""
    app = request.app
    if request.query_string and FROM_CONSOLE in request.query_string:
        return
    if is_bot:
        app[OPENS].bot_preview(link_id, name)
        app[METRICS].record_bot_preview(name)
    elif request.method == "GET":
        app[OPENS].human_open(link_id)


def _same_origin(request: web.Request, public_url: str) -> bool:
    """The Pay form is authorised by the signed token, not a cookie; still, refuse a POST that a
    browser says came from another site. ``Origin: null`` is what our own no-referrer form sends.
    An Origin that is not even a URL (``http://[``) is refused like a foreign one: a 403, never
    a 500."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return True
    try:
        ours = urlsplit(public_url)
        theirs = urlsplit(origin)
    except ValueError:  # "http://[" and friends: no origin we could match, so not ours
        return False
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
    # What the payer's page was in (the link's locale is on the packed snapshot; none yet: the
    # browser's). It becomes Stripe's page language, stored on the order this press creates.
    payable, link_id = app[PAYABLE], verified.link_id
    packed = payable.fresh(link_id) or await payable.get(
        link_id, lambda: app[CHECKOUT].fresh_view(link_id)
    )
    locale = app[LANGUAGES].for_request(request, None if packed is None else link_locale(packed))
    if visitor.listed:
        # A known link-preview or mail-scanner fetcher: it may press buttons, but creates nothing.
        app[METRICS].record_confirm("forbidden")
        context = {"token": token}
        return render(request, "preview.html", context, locale=locale, status=403, headers=ROBOTS)
    if not _same_origin(request, settings.server.public_url):
        app[METRICS].record_confirm("forbidden")
        refused = {"status": 403, "reason": "Forbidden"}
        return render(request, "bad_request.html", refused, locale=locale, status=403)
    public = settings.server.public_url.rstrip("/")
    checkout = settings.checkout
    urls = ReturnUrls(
        success_url=public
        + checkout.success_path.format(token=token)
        + "?session_id={CHECKOUT_SESSION_ID}",
        cancel_url=public + checkout.cancel_path.format(token=token),
    )
    metrics = app[METRICS]
    try:
        result = await app[CHECKOUT].confirm(
            verified.link_id, urls, checkout_locale=stripe_locale(locale)
        )
    except PROVIDER_TROUBLE:
        metrics.record_confirm("stripe_error")  # the edge answers 503 and counts the kind
        raise
    if isinstance(result, Redirect):
        metrics.record_confirm("redirect")
        metrics.record_session(result.kind)
        # Returned, not raised: an exception through the middleware costs more than the answer.
        return web.Response(status=303, headers={"Location": result.url})
    if result.view.state in (LinkState.PAID, LinkState.PROCESSING):
        # The 409s nobody counted in the incident this project exists for.
        metrics.record_confirm("paid_block")
        metrics.record_paid_block(result.view.state.value)
    else:
        metrics.record_confirm("refused")
    return await _refusal(request, result.view, token)


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
        return _no_such_link(request)
    locale = request.app[LANGUAGES].for_request(request, view.locale)
    context = {"view": view, "token": token, "failed": failed_payment(view, session_id or None)}
    return render(request, "return.html", context, locale=locale, headers=ROBOTS)


# The answer to "email me a new link": (template variant, status). No address is ever shown.
_RENEW_PAGES: dict[RenewOutcome, tuple[str, int]] = {
    RenewOutcome.SENT: ("sent", 200),
    RenewOutcome.RESENT: ("sent", 200),
    RenewOutcome.RATE_LIMITED: ("limited", 429),
    RenewOutcome.EMAIL_FAILED: ("failed", 503),
}


@routes.post("/pay/{token}/renew", name="pay_renew")
async def renew(request: web.Request) -> web.Response:
    """From the expired page: revoke the old link, issue a fresh one for the same payment, and
    email it to the address on file. The token (even an expired one) names the link; nothing
    the visitor sends chooses where the email goes."""
    token = request.match_info["token"]
    app = request.app
    token_expired = False
    try:
        link_id = app[TOKENS].verify(token).link_id
    except TokenError as exc:
        if exc.problem is not TokenProblem.EXPIRED or exc.link_id is None:
            return _no_such_link(request, truncated=exc.problem is TokenProblem.TRUNCATED)
        link_id, token_expired = exc.link_id, True
    locale = app[LANGUAGES].for_request(request)
    visitor = app[CLASSIFIER].classify(request.headers.get("User-Agent"), request.headers, "POST")
    if visitor.listed or not _same_origin(request, app[SETTINGS].server.public_url):
        # Scanners press buttons too; a fresh link is only for the person on the page.
        app[METRICS].record_renewal("forbidden")
        context = {"token": token}
        return render(request, "preview.html", context, locale=locale, status=403, headers=ROBOTS)
    result = await app[RENEWALS].renew(link_id, token_expired=token_expired)
    app[METRICS].record_renewal(result.outcome.value)
    if result.outcome in (RenewOutcome.SENT, RenewOutcome.RESENT, RenewOutcome.EMAIL_FAILED):
        app[METRICS].record_email("renewal", result.outcome is not RenewOutcome.EMAIL_FAILED)
    page = _RENEW_PAGES.get(result.outcome)
    if page is None:
        # Not renewable (paid, withdrawn, still payable) or email off: the link's page says why.
        raise web.HTTPSeeOther(app.router["pay"].url_for(token=token).path)
    variant, status = page
    headers = dict(ROBOTS)
    if status in (429, 503):
        headers["Retry-After"] = "3600" if status == 429 else "300"
    context = {"variant": variant}
    return render(request, "renewed.html", context, locale=locale, status=status, headers=headers)
