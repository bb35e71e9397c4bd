"""The hosted checkout page (``session.url``): what the payer sees instead of Stripe's page.

Plain HTML forms, no JavaScript: **Pay**, **Decline**, **Pay later** and **Cancel** on an open
session, and "bank" buttons to settle a delayed payment. Every action goes through the same
``StripeEmulator`` methods the in-process helpers use.
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from aiohttp import web

from gateway.dev.emulator.errors import StripeError
from gateway.dev.emulator.keys import EMULATOR_KEY
from gateway.dev.emulator.payments import CardDeclined
from gateway.domain.money import format_minor

Obj = dict[str, Any]


def money(amount: int, currency: str) -> str:
    # The gateway's own reading of Stripe's currency rules (zero-, three-decimal, ISK/UGX).
    return format_minor(amount, currency)


@functools.cache
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gateway.dev.emulator", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals["money"] = money
    return env


def _page(
    title: str,
    *,
    status: int = 200,
    session: Obj | None = None,
    line_items: list[Obj] | None = None,
    error: str | None = None,
    notice: str | None = None,
) -> web.Response:
    processing = bool(
        session and session["status"] == "complete" and session["payment_status"] == "unpaid"
    )
    html = (
        _templates()
        .get_template("checkout.html")
        .render(
            title=title,
            session=session,
            line_items=line_items or [],
            error=error,
            notice=notice,
            processing=processing,
        )
    )
    response = web.Response(text=html, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _session_page(request: web.Request, session: Obj, **kwargs: Any) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    line_items = emulator.checkout.line_items(session["id"])
    if session["status"] == "expired":
        kwargs.setdefault("notice", "This checkout session has expired. Nothing was charged.")
        return _page("Session expired", session=session, line_items=line_items, **kwargs)
    if session["status"] == "complete":
        if session["payment_status"] == "paid":
            kwargs.setdefault("notice", "This checkout session is already paid.")
            return _page("Payment complete", session=session, line_items=line_items, **kwargs)
        kwargs.setdefault("notice", "Payment is processing: waiting for the bank.")
        return _page("Payment processing", session=session, line_items=line_items, **kwargs)
    return _page("Checkout", session=session, line_items=line_items, **kwargs)


def _find(request: web.Request) -> Obj:
    emulator = request.config_dict[EMULATOR_KEY]
    emulator.expire_due_sessions()
    session_id = request.match_info["id"]
    if session_id not in emulator.sessions:
        raise web.HTTPNotFound(
            text=_page("Not found", error=f"No such checkout session: {session_id}").text,
            content_type="text/html",
        )
    return emulator.sessions[session_id]


async def show(request: web.Request) -> web.Response:
    return _session_page(request, _find(request))


async def act(request: web.Request) -> web.StreamResponse:
    emulator = request.config_dict[EMULATOR_KEY]
    session = _find(request)
    form = await request.post()
    action = form.get("action")
    try:
        if action == "pay":
            emulator.payments.pay(session["id"], "paid")
            raise web.HTTPSeeOther(_success_url(session))
        if action == "pay_later":
            emulator.payments.pay(session["id"], "async")
            raise web.HTTPSeeOther(_success_url(session))
        if action == "decline":
            emulator.payments.pay(session["id"], "declined")
        elif action == "cancel":
            if session["status"] != "open":
                return _session_page(request, session, status=409)
            if session["cancel_url"]:
                raise web.HTTPSeeOther(session["cancel_url"])
            return _page("Canceled", notice="You canceled the payment.")
        elif action in ("settle_success", "settle_failure"):
            emulator.payments.settle(session["id"], succeed=action == "settle_success")
            return _session_page(request, session)
        else:
            return _page("Bad request", status=400, error="Unknown action.")
    except CardDeclined as declined:
        return _session_page(request, session, status=402, error=declined.message)
    except StripeError as error:
        return _session_page(request, session, status=409, error=error.message)
    return _session_page(request, session)


def _success_url(session: Obj) -> str:
    return str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session["id"])


def add_routes(app: web.Application) -> None:
    app.router.add_get("/checkout/{id}", show)
    app.router.add_post("/checkout/{id}", act)
