"""Middlewares: a request id on every log line, and one place where errors become pages.

Handlers raise the gateway's own errors; this turns them into the right page or JSON body. A
500 is a bug, but even then the payer gets a page with a reference, never a stack trace.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import secrets
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.domain.errors import (
    ConflictRetryExhausted,
    NotFound,
    PaymentProviderRejected,
    PaymentProviderUnavailable,
    new_reference,
)
from gateway.web.pages import render

log = logging.getLogger("gateway.http")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

RETRY_AFTER_SECONDS = "30"
_JSON_PREFIXES = ("/stripe/", "/admin/api/")


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith(_JSON_PREFIXES)


def _json_error(
    status: int,
    code: str,
    message: str,
    reference: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict[str, object] = {"error": {"code": code, "message": message}}
    if reference:
        body["error"]["reference"] = reference  # type: ignore[index]
    return web.json_response(body, status=status, headers=headers)


def _redact_path(path: str) -> str:
    """Tokens never reach the logs: /pay/<token>/return -> /pay/<redacted>/return."""
    if path.startswith("/pay/"):
        rest = path[5:]
        tail = rest[rest.find("/") :] if "/" in rest else ""
        return "/pay/<token>" + tail
    return path


# A random prefix per process and a counter: unique across replicas, and far cheaper per request
# than drawing from the system's random source.
_REQUEST_PREFIX = secrets.token_hex(4)
_request_counter = itertools.count(1)


def _next_request_id() -> str:
    return f"{_REQUEST_PREFIX}{next(_request_counter):08x}"


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.headers.get("X-Request-Id", "")
    if not (0 < len(request_id) <= 64 and request_id.replace("-", "").isalnum()):
        request_id = _next_request_id()
    request_id_var.set(request_id)
    started = time.perf_counter()
    response = await handler(request)
    response.headers["X-Request-Id"] = request_id
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "request",
            extra={
                "method": request.method,
                "path": _redact_path(request.path),
                "status": response.status,
                "ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
    return response


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if _wants_json(request):
            return _json_error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
        page = "not_found.html" if exc.status in (404, 405) else "bad_request.html"
        return render(
            request, page, {"status": exc.status, "reason": exc.reason}, status=exc.status
        )
    except (PaymentProviderUnavailable, ConflictRetryExhausted, PaymentProviderRejected) as exc:
        # Stripe trouble: the pending order (if any) stays, the next click retries it.
        log.warning(
            "payment provider trouble", extra={"reference": exc.reference, "error": str(exc)}
        )
        headers = {"Retry-After": RETRY_AFTER_SECONDS}
        if _wants_json(request):
            return _json_error(
                503,
                "payment_provider_unavailable",
                "the payment provider is unavailable; retry shortly",
                exc.reference,
                headers,
            )
        return render(
            request, "error.html", {"reference": exc.reference}, status=503, headers=headers
        )
    except NotFound:
        if _wants_json(request):
            return _json_error(404, "not_found", "not found")
        return render(request, "invalid.html", {"truncated": False}, status=404)
    except Exception:
        reference = new_reference()
        log.exception(
            "unhandled error", extra={"reference": reference, "path": _redact_path(request.path)}
        )
        if _wants_json(request):
            return _json_error(500, "internal_error", "internal error", reference)
        return render(request, "error.html", {"reference": reference, "internal": True}, status=500)
