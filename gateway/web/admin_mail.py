"""The outbox in the admin API (``/admin/api/mail``): list and show the messages the gateway
owes people, send a failed, canceled or skipped one again, cancel a pending or failed one.

Mounted with the other admin routes (``gateway.web.admin.setup_admin``), behind the same key and
middleware. A message's body is never shown: it is built when it is sent, from the rows as they
are then; ``show`` gives what the row carries for building it (its payload). A retry or cancel
of a message about a link is written to the link's audit trail with the key's name.
"""

from __future__ import annotations

import re

from aiohttp import web

from gateway.adapters.tokens import LINK_ID
from gateway.domain.errors import NotFound, ValidationFailed
from gateway.domain.outbox import Kind, State
from gateway.domain.text import Text
from gateway.services.email import EmailNotConfigured
from gateway.services.outbox import Outbox, OutboxMessage
from gateway.services.presenters import outbox_json
from gateway.web.admin import ACTOR, _int, error
from gateway.web.keys import METRICS, OUTBOX

routes = web.RouteTableDef()

# gateway.services.ids.new_message_id: "ms_" and 16 URL-safe characters.
MESSAGE_ID = re.compile(r"ms_[A-Za-z0-9_-]{16}")
# A page is read with one row more than asked (is there a next page?), within Outbox.list's 500.
MAX_PAGE = 200
_KINDS = ", ".join(k.value for k in Kind)
_STATES = ", ".join(s.value for s in State)


def _choice(request: web.Request, name: str, allowed: type[Kind] | type[State]) -> str | None:
    value = request.query.get(name) or None
    if value is not None and value not in {v.value for v in allowed}:
        names = _KINDS if allowed is Kind else _STATES
        raise ValidationFailed({name: Text("one of %(values)s", values=names)})
    return value


def _not_found(request: web.Request) -> web.Response:
    return error(request, 404, "not_found", Text("no such message"))


def _wrong_state(request: web.Request, exc: ValidationFailed) -> web.Response:
    """A retry or cancel the message's state does not allow (a sent one cannot be retried)."""
    return error(request, 409, "wrong_state", exc.errors.get("state", Text("invalid input")))


@routes.get("/mail", name="admin_list_mail")
async def list_mail(request: web.Request) -> web.Response:
    state = _choice(request, "state", State)
    kind = _choice(request, "kind", Kind)
    link_id = request.query.get("link") or None
    if link_id is not None and not LINK_ID.fullmatch(link_id):
        raise ValidationFailed({"link": Text("not a link id")})
    limit = _int(request, "limit", 50, 1, MAX_PAGE)
    cursor = request.query.get("cursor") or None
    outbox = request.config_dict[OUTBOX]
    # A page starts after a message that exists: anything else would silently restart the
    # listing from the newest.
    if cursor is not None and await _find(outbox, cursor) is None:
        raise ValidationFailed({"cursor": Text("not a page's next_cursor")})
    found = await outbox.list(
        state=state, kind=kind, link_id=link_id, limit=limit + 1, before=cursor
    )
    page = found[:limit]
    return web.json_response(
        {
            "messages": [outbox_json(m) for m in page],
            "limit": limit,
            "next_cursor": page[-1].id if len(found) > limit else None,
        }
    )


async def _find(outbox: Outbox, row_id: str) -> OutboxMessage | None:
    if not MESSAGE_ID.fullmatch(row_id):
        return None
    try:
        return await outbox.get(row_id)
    except NotFound:
        return None


async def _message(request: web.Request, outbox: Outbox) -> OutboxMessage | None:
    return await _find(outbox, request.match_info["id"])


@routes.get("/mail/{id}", name="admin_show_mail")
async def show_mail(request: web.Request) -> web.Response:
    message = await _message(request, request.config_dict[OUTBOX])
    if message is None:
        return _not_found(request)
    return web.json_response(outbox_json(message, payload=True))


@routes.post("/mail/{id}/retry", name="admin_retry_mail")
async def retry_mail(request: web.Request) -> web.Response:
    """Pending again with a fresh set of attempts, and sent now: the answer is the message
    after this try (sent, or why not: the sender keeps retrying a transient refusal)."""
    outbox = request.config_dict[OUTBOX]
    if not outbox.enabled:
        raise EmailNotConfigured
    message = await _message(request, outbox)
    if message is None:
        return _not_found(request)
    try:
        await outbox.retry(message.id, actor=request[ACTOR])
    except ValidationFailed as exc:
        return _wrong_state(request, exc)
    delivery = await outbox.send_one(message.id)
    if delivery is not None:
        request.config_dict[METRICS].record_outbox(
            delivery.kind, delivery.outcome, delivery.resent_after_crash
        )
    return web.json_response(outbox_json(await outbox.get(message.id)))


@routes.post("/mail/{id}/cancel", name="admin_cancel_mail")
async def cancel_mail(request: web.Request) -> web.Response:
    outbox = request.config_dict[OUTBOX]
    message = await _message(request, outbox)
    if message is None:
        return _not_found(request)
    try:
        canceled = await outbox.cancel(message.id, actor=request[ACTOR])
    except ValidationFailed as exc:
        return _wrong_state(request, exc)
    return web.json_response(outbox_json(canceled))
