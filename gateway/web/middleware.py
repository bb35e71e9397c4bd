"""The edge: the one middleware every request passes through.

It gives each request an id for the logs, turns the gateway's errors into the right page or JSON
body, counts what was answered, and makes sure every response carries the headers of
docs/design.md §6. It is one middleware rather than four because each layer costs a coroutine per
request, and on the payer's hot paths that is most of what is left (docs/design.md §8).

A 500 is a bug, but even then the payer gets a page with a reference, never a stack trace.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections.abc import Callable, Mapping

from aiohttp import web, web_response
from aiohttp.typedefs import Handler, Middleware

from gateway.domain.errors import NotFound, new_reference
from gateway.domain.locales import from_accept_language
from gateway.i18n import translate
from gateway.logs import request_id_var
from gateway.metrics import Metrics
from gateway.web.language import Languages
from gateway.web.metrics import (
    PROVIDER_TROUBLE,
    count_response,
    count_stripe_error,
    note_error_code,
)
from gateway.web.pages import SERVER_HEADER, Pages

log = logging.getLogger("gateway.http")

RETRY_AFTER_SECONDS = "30"
# The link a /pay/{token} request is about, left by the handler once the token is verified: an
# error page shown for it is noted as a problem its payer saw (services.opens).
PAYER_LINK = web.RequestKey("payer_link", str)
_JSON_PREFIXES = ("/stripe/", "/admin/api/")


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith(_JSON_PREFIXES)


def _json_error(
    request: web.Request,
    status: int,
    code: str,
    message: str,
    reference: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    note_error_code(request, code)  # counted as the webhook's outcome when it was one
    body: dict[str, object] = {"error": {"code": code, "message": message}}
    if reference:
        body["error"]["reference"] = reference  # type: ignore[index]
    return web.json_response(body, status=status, headers=headers)


# Paths whose next segment is a secret: a payment token, a console invitation or reset.
_SECRET_SEGMENTS = ("/pay/", "/admin/invitation/", "/admin/reset/")


def redact_path(path: str) -> str:
    """Tokens never reach the logs: /pay/<token>/return -> /pay/<token>/return, literally."""
    for prefix in _SECRET_SEGMENTS:
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            tail = rest[rest.find("/") :] if "/" in rest else ""
            return prefix + "<token>" + tail
    return path


# A random prefix per process and a counter: unique across replicas, and far cheaper per request
# than drawing from the system's random source.
_REQUEST_PREFIX = secrets.token_hex(4)
_request_counter = itertools.count(1)


def _next_request_id() -> str:
    return f"{_REQUEST_PREFIX}{next(_request_counter):08x}"


def _request_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-Id", "")
    if 0 < len(given) <= 64 and given.replace("-", "").isalnum():
        return given
    return _next_request_id()


def hide_server_software() -> None:
    """aiohttp answers some requests itself (one its parser refuses never reaches the app), with
    the ``Server`` header it fills in from this module constant: ``Python/3.x aiohttp/x.y``."""
    setattr(web_response, "SERVER_SOFTWARE", SERVER_HEADER)  # noqa: B010 - not re-exported


def edge(
    metrics: Metrics,
    pages: Pages,
    headers: Mapping[str, str],
    languages: Languages,
    problem_seen: Callable[[str], None] | None = None,
) -> Middleware:
    """The outermost middleware of the app, closed over what it needs (no lookups per request).
    ``problem_seen(link_id)``: told when a payer's request ends on the 503 or 500 page.

    Error pages are in the language the request asks for (no link is known here: the switcher's
    cookie, then the browser's); a ``?lang=`` choice is remembered on the answer to it. A JSON
    error's ``message`` follows ``Accept-Language`` (its ``code`` is the same in every language).
    """
    security = tuple(headers.items())
    hide_server_software()

    def note_problem(request: web.Request) -> None:
        link_id = request.get(PAYER_LINK)
        if link_id is not None and problem_seen is not None:
            problem_seen(link_id)

    def error_response(request: web.Request, exc: Exception) -> web.Response:
        if _wants_json(request):
            browser = from_accept_language(request.headers.get("Accept-Language"))
            locale = browser or languages.default
        else:
            locale = languages.for_request(request)
        if isinstance(exc, web.HTTPException):
            if _wants_json(request):
                code = exc.reason.lower().replace(" ", "_")
                return _json_error(request, exc.status, code, exc.reason)
            page = "not_found.html" if exc.status in (404, 405) else "bad_request.html"
            context = {"status": exc.status, "reason": exc.reason}
            return pages.render(page, context, locale=locale, status=exc.status)
        if isinstance(exc, PROVIDER_TROUBLE):
            # Stripe trouble: the pending order (if any) stays, the next click retries it.
            count_stripe_error(metrics, exc)
            log.warning(
                "payment provider trouble", extra={"reference": exc.reference, "error": str(exc)}
            )
            retry = {"Retry-After": RETRY_AFTER_SECONDS}
            if _wants_json(request):
                return _json_error(
                    request,
                    503,
                    "payment_provider_unavailable",
                    translate(locale, "the payment provider is unavailable; retry shortly"),
                    exc.reference,
                    retry,
                )
            context = {"reference": exc.reference}
            note_problem(request)
            return pages.render("error.html", context, locale=locale, status=503, headers=retry)
        if isinstance(exc, NotFound):
            if _wants_json(request):
                return _json_error(request, 404, "not_found", translate(locale, "not found"))
            return pages.render("invalid.html", {"truncated": False}, locale=locale, status=404)
        reference = new_reference()
        log.error(
            "unhandled error",
            exc_info=exc,
            extra={"reference": reference, "path": redact_path(request.path)},
        )
        if _wants_json(request):
            message = translate(locale, "internal error")
            return _json_error(request, 500, "internal_error", message, reference)
        context = {"reference": reference, "internal": True}
        note_problem(request)
        return pages.render("error.html", context, locale=locale, status=500)

    @web.middleware
    async def edge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        request_id = _request_id(request)
        request_id_var.set(request_id)
        redirect: web.HTTPException | None = None
        response: web.StreamResponse | None = None
        status = 500
        try:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                if exc.status >= 400:
                    response = error_response(request, exc)
                else:
                    response = redirect = exc  # a raised redirect stays raised
            except Exception as exc:
                response = error_response(request, exc)
            status = response.status
            out = response.headers
            if "Content-Security-Policy" not in out:  # pages are built with them already
                out.extend(security)
            out["X-Request-Id"] = request_id
            languages.remember(request, response)
        finally:
            # Counted even when the client went away mid-request (as the 500 it would have been).
            count_response(metrics, request, status, time.perf_counter() - started)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "request",
                extra={
                    "method": request.method,
                    "path": redact_path(request.path),
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
        if redirect is not None:
            raise redirect
        return response

    return edge_middleware
