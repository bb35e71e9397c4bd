"""What every console page shares: who is asking, what they may do, and how pages are made.

The console (``/admin``) is a sub-application with one middleware (:func:`console_middleware`)
that, before any handler runs:

1. refuses a state-changing request a browser says came from another site (``Sec-Fetch-Site``
   ``cross-site``/``same-site``, or a foreign ``Origin``): 403, nothing read or written;
2. finds the session behind the opaque cookie (``services.console_auth.ConsoleAuth.resume``:
   idle and absolute timeouts, disabled accounts) and leaves the :class:`Principal` on the
   request; without one, a page that is not :func:`public` redirects to the login page;
3. holds a session that still owes its second factor (or must enrol one, ``admin.require_2fa``)
   to the pages that settle it;
4. checks the per-session CSRF token on every POST of a logged-in session (the form field
   ``csrf``, or the ``X-CSRF-Token`` header for script calls): 403 without it.

Handlers then stay small: :func:`require` a permission (403 page otherwise), call a service,
:func:`render` a template or :func:`redirect_to` a named route with a notice. Nothing here knows
about links or money.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler
from markupsafe import Markup
from multidict import MultiDictProxy

from gateway.domain.accounts import Permission, mask_email
from gateway.domain.errors import NotFound, ValidationFailed
from gateway.domain.locales import OFFERED, choose, from_accept_language
from gateway.i18n import translate
from gateway.i18n.catalogs import N_
from gateway.i18n.templates import localized_environments
from gateway.resources import resource_dir
from gateway.services.console_auth import Principal
from gateway.web.clients import ClientResolver
from gateway.web.keys import CONSOLE_AUTH, ORG_SETTINGS, SETTINGS
from gateway.web.middleware import redact_path
from gateway.web.pages import security_headers

log = logging.getLogger("gateway.console")

COOKIE = "gw_console"
# The cookie is secrets.token_urlsafe(32) (43 characters): anything much longer is not ours.
MAX_COOKIE_CHARS = 100
PRINCIPAL = web.RequestKey("console_principal", Principal)
ENVIRONMENTS = web.AppKey("console_environments", dict[str, jinja2.Environment])
HEADERS = web.AppKey("console_headers", dict[str, str])
CLIENTS = web.AppKey("console_clients", ClientResolver)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Sentences shown once after a redirect (``?notice=<key>``): a fixed set, so a crafted URL can
# only ever show one of these.
NOTICES: Mapping[str, str] = {
    "logged_out": N_("You have logged out."),
    "logged_out_everywhere": N_("Every session of your account has ended, this one included."),
    "password_changed": N_("Your password has been changed. Other sessions have ended."),
    "password_set": N_("Your password is set. You can log in now."),
    "2fa_enabled": N_("Two-factor authentication is on."),
    "2fa_disabled": N_("Two-factor authentication is off."),
    "invited": N_("The invitation has been sent."),
    "account_updated": N_("The account has been updated."),
    "reset_sent": N_("A password reset link has been emailed."),
    "link_created": N_("The payment link has been created."),
    "link_created_sent": N_("The payment link has been created and emailed."),
    "link_created_send_failed": N_(
        "The payment link has been created, but the email could not be sent: see its history."
    ),
    "links_created": N_("The payment links have been created."),
    "sent": N_("The payment link has been emailed again."),
    "revoked": N_("The payment link has been revoked."),
    "replaced": N_("A corrected link has been issued; the old one now points to it."),
    "bulk_done": N_("Done."),
    "bulk_sent": N_("The selected links have been emailed again."),
    "bulk_revoked": N_("The selected links have been revoked."),
    "settings_saved": N_("The settings have been saved."),
    "session_expired": N_("Your session has ended. Please log in again."),
}

# Route names a session that owes its second factor may still reach (the auth pages name them).
SECOND_FACTOR_ROUTES = frozenset({"console.second_factor", "console.logout"})
ENROL_ROUTES = frozenset(
    {"console.enrol_2fa", "console.logout", "console.account", "console.second_factor"}
)

HandlerT = TypeVar("HandlerT", bound=Callable[..., Awaitable[web.StreamResponse]])


def public(handler: HandlerT) -> HandlerT:
    """Mark a console handler that needs no login (the login page, an invitation)."""
    handler.__console_public__ = True  # type: ignore[attr-defined]
    return handler


def principal(request: web.Request) -> Principal:
    """The logged-in account (every non-public console handler has one)."""
    if PRINCIPAL not in request:
        raise web.HTTPForbidden()
    return request[PRINCIPAL]


def maybe_principal(request: web.Request) -> Principal | None:
    return request.get(PRINCIPAL)


def require(request: web.Request, permission: Permission) -> Principal:
    """The principal, if it may do ``permission``; else a 403 page (and nothing done)."""
    found = principal(request)
    if not found.can(permission):
        raise web.HTTPForbidden(reason="not allowed for this role")
    return found


class FormErrors:
    """Problems with a submitted form, each named next to its field and listed in the error
    summary at the top (the GOV.UK pattern). Messages are already in the page's language."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def add(self, field: str, message: str) -> None:
        self.fields.setdefault(field, message)

    def __bool__(self) -> bool:
        return bool(self.fields)

    def get(self, field: str) -> str | None:
        return self.fields.get(field)

    def items(self) -> list[tuple[str, str]]:
        return list(self.fields.items())

    @classmethod
    def from_validation(cls, exc: ValidationFailed, locale: str) -> FormErrors:
        from gateway.i18n.catalogs import localize

        errors = cls()
        for name, message in exc.errors.items():
            errors.add(name, localize(locale, message))
        return errors


def locale_of(request: web.Request) -> str:
    """The console's language: the account's, else the browser's among the offered, else the
    configured default."""
    found = request.get(PRINCIPAL)
    chosen = found.locale if found is not None and found.locale in OFFERED else None
    header = request.headers.get("Accept-Language", "")[:512]
    return choose(
        choice=chosen,
        link_locale=None,
        browser=from_accept_language(header) if header else None,
        default=request.config_dict[ORG_SETTINGS].current().default_locale,
    )


def t(request: web.Request, message: str) -> str:
    """``message`` (an ``N_`` id or a domain ``Text``) in the console's language."""
    from gateway.i18n.catalogs import localize

    return localize(locale_of(request), message)


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    locale = locale_of(request)
    environment = request.config_dict[ENVIRONMENTS][locale]
    notice_key = request.query.get("notice", "")
    notice = translate(locale, NOTICES[notice_key]) if notice_key in NOTICES else None
    found = request.get(PRINCIPAL)
    page = {
        "principal": found,
        "csrf_token": found.csrf_token if found is not None else "",
        "notice": notice,
        "request": request,
        "path": request.path,
        "Permission": Permission,
        # The console's setting as it is now (the template global is the one at start).
        "org_name": request.config_dict[ORG_SETTINGS].current().org_name,
        **(context or {}),
    }
    body = environment.get_template(template).render(page)
    security: dict[str, str] = request.config_dict[HEADERS]
    response = web.Response(
        text=body,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={
            **security,
            "Content-Language": locale,
            "Vary": "Accept-Language, Cookie",
        },
    )
    if headers:
        response.headers.update(headers)
    return response


def url_for(
    request: web.Request, name: str, query: Mapping[str, str] | None = None, **parts: str
) -> str:
    """The path of a named console route, with an optional query."""
    url = str(request.app.router[name].url_for(**parts))
    return f"{url}?{urlencode(query)}" if query else url


def redirect_to(
    request: web.Request,
    name: str,
    *,
    notice: str | None = None,
    query: Mapping[str, str] | None = None,
    **parts: str,
) -> web.HTTPSeeOther:
    """A 303 to a named console route (raise it), showing ``notice`` (a :data:`NOTICES` key)."""
    params = dict(query or {})
    if notice is not None:
        if notice not in NOTICES:
            raise ValueError(f"unknown notice {notice!r}: add it to NOTICES")
        params["notice"] = notice
    return web.HTTPSeeOther(url_for(request, name, params or None, **parts))


async def form_data(request: web.Request) -> MultiDictProxy[str | bytes | Any]:
    """The submitted form (already read, and its CSRF token checked, by the middleware)."""
    return await request.post()


def field(data: Mapping[str, Any], name: str, *, max_chars: int = 2000) -> str:
    """A text field of a form, trimmed and bounded ("" when absent or not text)."""
    value = data.get(name, "")
    return value.strip()[:max_chars] if isinstance(value, str) else ""


# --- the middleware ---------------------------------------------------------------------------


def _cross_site(request: web.Request) -> bool:
    """True when the browser says this request was made by another site. ``Origin: null`` is
    what a no-referrer page's own form sends, so it passes; the CSRF token still applies."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site in ("cross-site", "same-site"):
        return True
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return False
    public_url = request.config_dict[SETTINGS].server.public_url
    try:
        ours = urlsplit(public_url)
        theirs = urlsplit(origin)
    except ValueError:  # "http://[": not an origin we could match, so not ours
        return True
    same = (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)
    return not (same or theirs.netloc == request.host)


def _login_redirect(request: web.Request, *, expired: bool) -> web.HTTPSeeOther:
    query = {"next": request.path_qs[:500]} if request.method in _SAFE_METHODS else {}
    if expired:
        query["notice"] = "session_expired"
    return web.HTTPSeeOther(url_for(request, "console.login", query or None))


def _csrf_ok(given: object, expected: str) -> bool:
    return (
        isinstance(given, str)
        and 0 < len(given) <= 128
        and hmac.compare_digest(given.encode(), expected.encode())
    )


def _clear_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/admin")


def set_session_cookie(request: web.Request, response: web.StreamResponse, cookie: str) -> None:
    """The session's cookie: opaque, HttpOnly, SameSite=Lax, Path=/admin, Secure over https."""
    secure = request.config_dict[SETTINGS].server.public_url.startswith("https://")
    response.set_cookie(COOKIE, cookie, path="/admin", httponly=True, samesite="Lax", secure=secure)


def clear_session_cookie(response: web.StreamResponse) -> None:
    _clear_cookie(response)


def client_of(request: web.Request) -> str:
    """Who is asking, for the login brake: the address (its /64 for IPv6), read through
    ``server.trusted_proxies`` (behind a proxy, the proxy's own address would lock everyone
    out together)."""
    return request.config_dict[CLIENTS].key(request)


def session_cookie(request: web.Request) -> str | None:
    value = request.cookies.get(COOKIE)
    if not value or len(value) > MAX_COOKIE_CHARS:
        return None
    return value


async def _check(request: web.Request, handler: Handler) -> None:
    """Everything the middleware decides before the handler runs (raises to refuse)."""
    unsafe = request.method not in _SAFE_METHODS
    if unsafe and _cross_site(request):
        log.warning("cross-site console request refused", extra={"path": redact_path(request.path)})
        raise web.HTTPForbidden(reason="cross-site request refused")
    cookie = session_cookie(request)
    found = await request.config_dict[CONSOLE_AUTH].resume(cookie) if cookie else None
    if found is not None:
        request[PRINCIPAL] = found
    is_public = getattr(handler, "__console_public__", False)
    route = request.match_info.route.name or ""
    if not is_public:
        if found is None:
            raise _login_redirect(request, expired=cookie is not None)
        # Where the person was going comes along, for after the code (GET requests only).
        onward = {"next": request.path_qs[:500]} if request.method in _SAFE_METHODS else None
        if found.second_factor_pending and route not in SECOND_FACTOR_ROUTES:
            raise web.HTTPSeeOther(url_for(request, "console.second_factor", onward))
        if found.must_enrol_2fa and route not in ENROL_ROUTES:
            raise web.HTTPSeeOther(url_for(request, "console.enrol_2fa", onward))
    if unsafe and found is not None:
        given: object = request.headers.get("X-CSRF-Token")
        if given is None:
            given = (await request.post()).get("csrf")
        if not _csrf_ok(given, found.csrf_token):
            log.warning(
                "console request without a valid CSRF token",
                extra={"path": redact_path(request.path)},
            )
            raise web.HTTPForbidden(reason="the form has expired: reload the page and try again")


def _error_page(request: web.Request, status: int, message: str) -> web.Response:
    context = {"status": status, "message": message}
    return render(request, "console/error.html", context, status=status)


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        await _check(request, handler)
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            _forget_ended_session(request, exc)
            raise
        if exc.status == 403:
            return _error_page(
                request,
                403,
                t(request, _FORBIDDEN.get(exc.reason, N_("You are not allowed to do this."))),
            )
        if exc.status in (404, 405):
            return _error_page(request, 404, t(request, N_("There is no such page.")))
        if exc.status == 413:
            return _error_page(request, 413, t(request, N_("What you sent is too large.")))
        return _error_page(request, exc.status, t(request, N_("The request was not understood.")))
    except NotFound:
        return _error_page(request, 404, t(request, N_("There is no such page.")))
    _forget_ended_session(request, response)
    return response


def _forget_ended_session(request: web.Request, response: web.StreamResponse) -> None:
    """An ended session's cookie is of no further use: the answer deletes it (unless the
    handler has just set a new one, as the login does)."""
    if PRINCIPAL not in request and COOKIE in request.cookies and COOKIE not in response.cookies:
        _clear_cookie(response)


_FORBIDDEN: Mapping[str, str] = {
    "cross-site request refused": N_(
        "This request came from another site and was refused. Use the console's own forms."
    ),
    "the form has expired: reload the page and try again": N_(
        "The form has expired. Reload the page and try again."
    ),
    "not allowed for this role": N_("Your role does not allow this. Ask an admin."),
}


# --- templates --------------------------------------------------------------------------------


@jinja2.pass_context
def _email_filter(context: jinja2.runtime.Context, email: str | None) -> str:
    """A payer's email as this account may see it: masked for viewers."""
    if not email:
        return ""
    found = context.get("principal")
    if found is not None and found.can(Permission.SEE_EMAILS):
        return email
    return mask_email(email)


@jinja2.pass_context
def _can(context: jinja2.runtime.Context, permission: str) -> bool:
    found = context.get("principal")
    return found is not None and found.can(Permission(permission))


@jinja2.pass_context
def _url(context: jinja2.runtime.Context, name: str, **parts: Any) -> str:
    request: web.Request = context["request"]
    query = parts.pop("query", None)
    return url_for(request, name, query, **{k: str(v) for k, v in parts.items()})


@jinja2.pass_context
def _csrf_field(context: jinja2.runtime.Context) -> Markup:
    token = context.get("csrf_token", "")
    return Markup('<input type="hidden" name="csrf" value="{}">').format(token)


def setup_templates(
    console: web.Application, app: web.Application, static_url: Callable[[str], str]
) -> None:
    """The console's environments (one per offered locale, compiled lazily template by
    template), with its filters and globals."""
    settings = app[SETTINGS]
    environments = localized_environments(
        jinja2.FileSystemLoader(resource_dir("templates")),
        timezone=settings.checkout.timezone,
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        globals_={
            "org_name": settings.checkout.org_name,
            "static_url": static_url,
            "url": _url,
            "can": _can,
            "csrf_field": _csrf_field,
        },
    )
    for environment in environments.values():
        environment.filters["email"] = _email_filter
    console[ENVIRONMENTS] = environments
    console[HEADERS] = console_headers(https=settings.server.public_url.startswith("https://"))
    console[CLIENTS] = ClientResolver(settings.server.trusted_proxies)


def console_headers(*, https: bool) -> dict[str, str]:
    """The payer pages' security headers (docs/design.md §6: no caching, no framing, no inline
    script, no referrer), with two differences: forms post to the console only, and a page's
    own script may ask the console for data (``connect-src 'self'``: the live amount summary)."""
    headers = security_headers((), hsts=https)
    policy = headers["Content-Security-Policy"]
    headers["Content-Security-Policy"] = policy.replace(
        "default-src 'none'; ", "default-src 'none'; connect-src 'self'; ", 1
    )
    return headers
