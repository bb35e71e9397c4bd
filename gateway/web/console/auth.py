"""Logging in and out of the console (issue 15). The auth-pages helper extends this module
(second factor, enrolment, the account page, invitations); keep the route names, which the
middleware and the layout use."""

from __future__ import annotations

from aiohttp import web

from gateway.i18n.catalogs import N_
from gateway.services.console_auth import LoginRefused
from gateway.web.console.base import (
    FormErrors,
    clear_session_cookie,
    field,
    form_data,
    maybe_principal,
    principal,
    public,
    redirect_to,
    render,
    session_cookie,
    set_session_cookie,
    t,
    url_for,
)
from gateway.web.keys import CONSOLE_AUTH

routes = web.RouteTableDef()


def _next_path(request: web.Request, value: str) -> str:
    """Where to go after logging in: a console path only (never another site)."""
    if value.startswith("/admin/") and not value.startswith("//") and "\\" not in value:
        return value
    return url_for(request, "console.overview")


@routes.get("/login", name="console.login")
@public
async def login_page(request: web.Request) -> web.Response:
    if maybe_principal(request) is not None:
        raise redirect_to(request, "console.overview")
    context = {"errors": FormErrors(), "email": "", "next": request.query.get("next", "")[:500]}
    return render(request, "console/login.html", context)


@routes.post("/login", name="console.login_submit")
@public
async def login(request: web.Request) -> web.Response:
    data = await form_data(request)
    email = field(data, "email", max_chars=320)
    password = data.get("password", "")
    next_path = _next_path(request, field(data, "next", max_chars=500))
    errors = FormErrors()
    if not email:
        errors.add("email", t(request, N_("Enter your email address")))
    if not isinstance(password, str) or not password:
        errors.add("password", t(request, N_("Enter your password")))
    if not errors:
        assert isinstance(password, str)
        try:
            result = await request.config_dict[CONSOLE_AUTH].login(
                email,
                password,
                client=request.remote or "",
                user_agent=request.headers.get("User-Agent", ""),
            )
        except LoginRefused as refused:
            # One message whatever was wrong: the page never says which part it was.
            errors.add(
                "email",
                t(
                    request,
                    N_(
                        "The email address or the password is wrong, "
                        "or this account cannot log in now."
                    ),
                ),
            )
            headers = {"Retry-After": str(refused.retry_after)} if refused.retry_after else None
            context = {"errors": errors, "email": email, "next": next_path}
            status = 429 if refused.retry_after else 400
            return render(request, "console/login.html", context, status=status, headers=headers)
        target = (
            url_for(request, "console.second_factor") if result.second_factor_needed else next_path
        )
        response = web.HTTPSeeOther(target)
        set_session_cookie(request, response, result.cookie)
        raise response
    context = {"errors": errors, "email": email, "next": next_path}
    return render(request, "console/login.html", context, status=400)


@routes.post("/logout", name="console.logout")
async def logout(request: web.Request) -> web.Response:
    cookie = session_cookie(request)
    if cookie is not None:
        await request.config_dict[CONSOLE_AUTH].logout(cookie)
    response = redirect_to(request, "console.login", notice="logged_out")
    clear_session_cookie(response)
    raise response


@routes.get("/login/code", name="console.second_factor")
async def second_factor_page(request: web.Request) -> web.Response:
    principal(request)
    return render(request, "console/second_factor.html", {"errors": FormErrors()})


@routes.get("/account", name="console.account")
async def account_page(request: web.Request) -> web.Response:
    return render(request, "console/account.html", {"account": principal(request)})


@routes.get("/account/2fa", name="console.enrol_2fa")
async def enrol_page(request: web.Request) -> web.Response:
    principal(request)
    raise web.HTTPNotFound()
