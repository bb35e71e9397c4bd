"""The admin JSON API under ``/admin/api/`` (a sub-application with its own middleware).

Every endpoint but the OpenAPI document needs ``Authorization: Bearer <key>``; the key's name is
the actor in the audit trail. Errors are ``{"error": {"code", "message", ...}}`` with a stable
``code`` (see ``openapi.py``); bad input is a 4xx that changes nothing. What people read (the
``message``, each field's and each bulk row's problem) is in the request's ``Accept-Language``
when that is an offered language, else ``checkout.default_locale``; the ``code`` and the field
names, which programs read, are the same in every language.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.adapters.tokens import LINK_ID
from gateway.domain.errors import NotFound, ValidationFailed
from gateway.domain.links import text_problem
from gateway.domain.locales import from_accept_language
from gateway.domain.orders import OrderStatus
from gateway.domain.text import Text, message_of
from gateway.i18n import localize
from gateway.services.admin_links import LinkNotSendable
from gateway.services.bulk_files import (
    MAX_BODY_BYTES,
    BulkFormatError,
    BulkTooLarge,
    load_json,
    parse_csv,
    parse_json,
)
from gateway.services.bulk_issue import BulkInterrupted, BulkInvalid, validate_row
from gateway.services.email import EmailNotConfigured
from gateway.services.link_listing import LinkFilter, LinkPage, date_bound
from gateway.services.link_search import LinkSearch
from gateway.services.presenters import detail_json, order_json, page_json
from gateway.web.admin_auth import AdminKeys, Throttled
from gateway.web.keys import (
    ADMIN,
    ADMIN_KEYS,
    CLOCK,
    DATABASE,
    LINKS,
    LISTING,
    MAILER,
    METRICS,
    PAYMENTS,
    RECONCILER,
    SETTINGS,
    TOKENS,
)
from gateway.web.openapi import openapi_document

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

ACTOR = web.RequestKey("admin_actor", str)
MAX_LIMIT = 500
_PUBLIC = frozenset({"admin_openapi"})


def request_locale(request: web.Request) -> str:
    """The language of the people's messages in an answer (see the module docstring)."""
    browser = from_accept_language(request.headers.get("Accept-Language"))
    return browser or request.config_dict[SETTINGS].checkout.default_locale


def error(request: web.Request, status: int, code: str, message: str, **extra: Any) -> web.Response:
    """An error answer; ``message`` (a domain :class:`Text` or a plain string) and a
    ``fields`` mapping's messages are given in the request's language."""
    locale = request_locale(request)
    if "fields" in extra:
        extra["fields"] = {name: localize(locale, text) for name, text in extra["fields"].items()}
    body: dict[str, Any] = {"code": code, "message": localize(locale, message), **extra}
    headers = {"WWW-Authenticate": 'Bearer realm="gateway-admin"'} if status == 401 else None
    return web.json_response({"error": body}, status=status, headers=headers)


@web.middleware
async def admin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.config_dict[METRICS]
    if request.match_info.route.name not in _PUBLIC:
        # Refusals are logged by the brake in admin_auth, at most once a minute per client.
        actor = request.config_dict[ADMIN_KEYS].authenticate(request)
        if isinstance(actor, Throttled):
            metrics.record_admin_request("throttled")
            refused = error(
                request, 429, "too_many_failures", Text("too many refused keys; retry later")
            )
            refused.headers["Retry-After"] = str(actor.retry_after)
            return refused
        if actor is None:
            metrics.record_admin_request("unauthorized")
            return error(
                request, 401, "unauthorized", Text("a valid admin key is required (Bearer)")
            )
        request[ACTOR] = actor
    try:
        response = await handler(request)
    except ValidationFailed as exc:
        response = error(
            request, 422, "validation_failed", Text("invalid input"), fields=exc.errors
        )
    except BulkInvalid as exc:
        locale = request_locale(request)
        response = error(
            request,
            422,
            "bulk_invalid",
            message_of(exc),
            rows=[r.as_dict(locale) for r in exc.report.invalid],
            report=exc.report.as_dict(locale),
        )
    except BulkTooLarge as exc:
        response = error(request, 413, "too_large", message_of(exc))
    except BulkFormatError as exc:
        response = error(request, 400, "bad_file", message_of(exc))
    except BulkInterrupted as exc:
        # Not the admin's fault, but not a mystery either: what exists and what to do.
        response = error(
            request,
            500,
            "bulk_interrupted",
            message_of(exc),
            created=exc.created,
            remaining=exc.remaining,
        )
    except BadRequest as exc:
        response = error(request, 400, "bad_request", message_of(exc))
    except NotFound:
        response = error(request, 404, "not_found", Text("no such link"))
    except EmailNotConfigured as exc:
        response = error(request, 409, "email_not_configured", message_of(exc))
    except LinkNotSendable as exc:
        response = error(request, 409, "link_not_sendable", message_of(exc), link_status=exc.state)
    metrics.record_admin_request("ok" if response.status < 400 else "client_error")
    return response


def _actor(request: web.Request) -> str:
    return request[ACTOR]


async def _json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.text() or "null")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(Text("the body is not valid JSON")) from None
    except RecursionError:
        raise BadRequest(Text("the body is nested too deeply")) from None


async def _body(request: web.Request, limit: int) -> bytes:
    """The raw body, read in chunks up to ``limit`` bytes (bulk files may exceed the app's
    ``server.max_body_bytes``, which only ``request.read()`` enforces)."""
    too_large = Text("the file is larger than %(size)s MB; split it", size=limit // (1024 * 1024))
    if request.content_length is not None and request.content_length > limit:
        raise BulkTooLarge(too_large)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > limit:
            raise BulkTooLarge(too_large)
        chunks.append(chunk)
    return b"".join(chunks)


class BadRequest(Exception):
    """A body that cannot even be read (not JSON, wrong shape)."""


def _link_id(request: web.Request) -> str:
    link_id = request.match_info["id"]
    if not LINK_ID.fullmatch(link_id):
        raise NotFound(link_id)
    return link_id


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "").lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValidationFailed({name: Text("expected true or false")})


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed({name: Text("expected an integer")}) from None
    if not low <= value <= high:
        raise ValidationFailed(
            {name: Text("must be between %(low)s and %(high)s", low=low, high=high)}
        )
    return value


def _when(request: web.Request, name: str, *, end: bool) -> datetime | None:
    """An ISO date or date-time; a bare date as ``to`` includes that whole day."""
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return date_bound(raw, end=end)
    except ValueError:
        raise ValidationFailed(
            {name: Text("expected an ISO date (2026-04-01) or date-time")}
        ) from None


# --- endpoints ------------------------------------------------------------------------------


@routes.get("/openapi.json", name="admin_openapi")
async def openapi(request: web.Request) -> web.Response:
    base = request.config_dict[SETTINGS].server.public_url
    return web.json_response(openapi_document(base))


def _body_flag(body: dict[str, Any], name: str) -> bool:
    value = body.pop(name, False)
    if not isinstance(value, bool):
        raise ValidationFailed({name: Text("expected true or false")})
    return value


@routes.post("/links", name="admin_create_link")
async def create_link(request: web.Request) -> web.Response:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise BadRequest(Text("expected a JSON object"))
    send = _body_flag(body, "send")
    allow_duplicate_ref = _body_flag(body, "allow_duplicate_ref")
    settings = request.config_dict[SETTINGS]
    now = datetime.fromtimestamp(request.config_dict[CLOCK].now(), UTC)
    new, errors = validate_row(body, settings, require_ref=False, now=now)
    if new is None:
        raise ValidationFailed(errors)
    if send and not request.config_dict[MAILER].enabled:
        raise EmailNotConfigured
    created = await request.config_dict[ADMIN].create(
        new, actor=_actor(request), send=send, allow_duplicate_ref=allow_duplicate_ref
    )
    if not created.existing:
        request.config_dict[METRICS].record_links_issued("api")
    if created.email is not None:
        request.config_dict[METRICS].record_email("link", created.email.ok)
    return web.json_response(created.as_dict(), status=200 if created.existing else 201)


@routes.post("/links/bulk", name="admin_bulk_links")
async def bulk_links(request: web.Request) -> web.Response:
    body = await _body(request, MAX_BODY_BYTES)
    if request.content_type in ("text/csv", "text/plain", "application/csv"):
        rows = parse_csv(body)
    else:
        try:
            rows = parse_json(load_json(body))
        except BulkFormatError as exc:
            raise BulkFormatError(
                Text(
                    "%(problem)s: send a JSON list of rows, or a CSV as text/csv",
                    problem=message_of(exc),
                )
            ) from None
    report = await request.config_dict[ADMIN].bulk(
        rows,
        actor=_actor(request),
        dry_run=_flag(request, "dry_run"),
        skip_invalid=_flag(request, "skip_invalid"),
        send=_flag(request, "send"),
        resend=_flag(request, "resend"),
    )
    metrics = request.config_dict[METRICS]
    if report.count("created"):
        metrics.record_links_issued("bulk", report.count("created"))
    for row in report.rows:
        if row.email is not None:
            metrics.record_email("link", row.email.ok)
    status = 200 if report.dry_run or not report.count("created") else 201
    answer = report.to_json(request_locale(request))
    return web.Response(body=answer, status=status, content_type="application/json")


@routes.get("/links", name="admin_list_links")
async def list_links(request: web.Request) -> web.Response:
    # The console's search box (services.link_search), read the same way here.
    understood = await LinkSearch(
        request.config_dict[DATABASE], request.config_dict[TOKENS]
    ).understand(request.query.get("q", ""))
    f = LinkFilter(
        status=request.query.get("status") or None,
        ref_prefix=request.query.get("ref_prefix") or None,
        created_from=_when(request, "created_from", end=False),
        created_to=_when(request, "created_to", end=True),
        limit=_int(request, "limit", 100, 1, MAX_LIMIT),
        offset=_int(request, "offset", 0, 0, 10**9),
        cursor=request.query.get("cursor") or None,
        match=understood.match if understood else None,
        sort=request.query.get("sort") or "created_desc",
    )
    if understood is not None and understood.match is None:
        page = LinkPage([], 0, f.limit, f.offset)  # a forged token, a charge id: nothing
    else:
        page = await request.config_dict[LISTING].list(f)
    body = page_json(page)
    if understood is not None:
        locale = request_locale(request)
        problem = understood.problem
        body["search"] = {
            "kind": understood.kind,
            "understood": localize(locale, understood.label),
            "problem": localize(locale, problem) if problem else None,
        }
    return web.json_response(body)


@routes.get("/links/{id}", name="admin_show_link")
async def show_link(request: web.Request) -> web.Response:
    detail = await request.config_dict[LINKS].show(_link_id(request))
    return web.json_response(detail_json(detail))


@routes.post("/links/{id}/revoke", name="admin_revoke_link")
async def revoke_link(request: web.Request) -> web.Response:
    link_id = _link_id(request)
    body = await _json_body(request)
    reason = body.get("reason", "") if isinstance(body, dict) else ""
    if not isinstance(reason, str) or len(reason) > 200:
        raise ValidationFailed({"reason": Text("a string of at most 200 characters")})
    problem = text_problem(reason)
    if problem:
        raise ValidationFailed({"reason": problem})
    changed = await request.config_dict[LINKS].revoke(
        link_id, actor=_actor(request), reason=reason, provider=request.config_dict[PAYMENTS]
    )
    return web.json_response({"id": link_id, "revoked": True, "changed": changed})


@routes.post("/links/{id}/resend", name="admin_resend_link")
async def resend_link(request: web.Request) -> web.Response:
    result = await request.config_dict[ADMIN].resend(_link_id(request), actor=_actor(request))
    request.config_dict[METRICS].record_email("link", result.ok)
    if not result.ok:
        # The failure is recorded on the link; the admin can simply try again.
        return error(
            request,
            502,
            "email_failed",
            result.error or Text("sending failed"),
            link_id=result.link_id,
        )
    return web.json_response(result.as_dict())


@routes.get("/orders", name="admin_list_orders")
async def list_orders(request: web.Request) -> web.Response:
    status = request.query.get("status") or None
    if status is not None and status not in {s.value for s in OrderStatus}:
        statuses = ", ".join(s.value for s in OrderStatus)
        raise ValidationFailed({"status": Text("one of %(values)s", values=statuses)})
    orders = await request.config_dict[LINKS].orders(
        limit=_int(request, "limit", 100, 1, MAX_LIMIT),
        offset=_int(request, "offset", 0, 0, 10**9),
        status=status,
    )
    return web.json_response({"orders": [order_json(o) for o in orders]})


@routes.post("/reconcile", name="admin_reconcile")
async def reconcile(request: web.Request) -> web.Response:
    reconciler = request.config_dict.get(RECONCILER)
    if reconciler is None:
        return error(request, 501, "not_implemented", Text("the reconciler is not available"))
    report = await reconciler.run()
    request.config_dict[METRICS].record_reconcile(report)
    log.info("reconcile triggered", extra={"actor": _actor(request)})
    return web.json_response(report.as_dict())


# --- wiring ---------------------------------------------------------------------------------


def setup_admin(app: web.Application) -> None:
    """Mount the API. Its services (``app[ADMIN]``, ``app[MAILER]``) are built with the app's
    others, by ``gateway.wiring``."""
    settings = app[SETTINGS]
    app[ADMIN_KEYS] = AdminKeys.from_settings(settings, app[CLOCK])
    api = web.Application(middlewares=[admin_middleware])
    api.router.add_routes(routes)
    from gateway.web import admin_mail  # imports this module's helpers: imported when mounting

    api.router.add_routes(admin_mail.routes)
    from gateway.web import admin_reminders  # likewise

    api.router.add_routes(admin_reminders.routes)
    from gateway.web import admin_money  # likewise

    api.router.add_routes(admin_money.routes)
    from gateway.web import admin_support  # likewise

    api.router.add_routes(admin_support.routes)
    app.add_subapp("/admin/api", api)
