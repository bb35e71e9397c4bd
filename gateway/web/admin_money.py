"""Money operations in the admin API (issue 16 item 3), behind the same key and middleware as
the rest (mounted by ``gateway.web.admin.setup_admin``); the key's name is the actor:

- ``GET /admin/api/orders/{id}/refund``: what is still refundable (the guard a form sends back);
- ``POST /admin/api/orders/{id}/refund`` ``{"amount"?: "50.00", "reason": "...",
  "expected_refundable"?: 15000}``: refund all or part of a paid order
  (``gateway.services.refunds``);
- ``POST /admin/api/links/{id}/mark-paid`` ``{"amount": "150.00", "method": "cash" |
  "bank_transfer" | "other", "note": "..."}``: a payment made outside Stripe;
- ``GET /admin/api/orphans`` (``?attached=true|false``) and ``POST
  /admin/api/orphans/{id}/attach`` ``{"reason": "..."}``: payments Stripe holds with no order here.

A state that does not allow the operation is a 409 with a stable ``code``; Stripe refusing is a
502 ``stripe_refused`` and Stripe not answering a 503 ``payment_provider_unavailable``, each
saying exactly what was recorded.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from gateway.domain.errors import NotFound, ValidationFailed
from gateway.domain.text import Text
from gateway.services.orphans import orphan_json
from gateway.services.refunds import MoneyRefused, StripeFailed
from gateway.web.admin import ACTOR, BadRequest, _flag, _json_body, _link_id, error
from gateway.web.keys import MONEY

routes = web.RouteTableDef()

# gateway.services.ids.new_order_id: "ord_" and 16 URL-safe characters; orphans "op_" and 16.
ORDER_ID = re.compile(r"ord_[A-Za-z0-9_-]{16}")
ORPHAN_ID = re.compile(r"op_[A-Za-z0-9_-]{16}")


async def _object(request: web.Request) -> dict[str, Any]:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise BadRequest(Text("expected a JSON object"))
    return body


def _refused(request: web.Request, exc: MoneyRefused) -> web.Response:
    return error(request, 409, exc.code, exc.message, **exc.extra)


def _stripe_failed(request: web.Request, exc: StripeFailed) -> web.Response:
    response = error(request, exc.status, exc.code, exc.message, reference=exc.reference)
    if exc.status == 503:
        response.headers["Retry-After"] = "60"
    return response


def _order_id(request: web.Request) -> str | None:
    order_id = request.match_info["id"]
    return order_id if ORDER_ID.fullmatch(order_id) else None


def _no_order(request: web.Request) -> web.Response:
    return error(request, 404, "not_found", Text("no such order"))


@routes.get("/orders/{id}/refund", name="admin_order_refundable")
async def refundable(request: web.Request) -> web.Response:
    order_id = _order_id(request)
    if order_id is None:
        return _no_order(request)
    try:
        found = await request.config_dict[MONEY].refunds.refundable(order_id)
    except NotFound:
        return _no_order(request)
    return web.json_response(found.as_dict())


@routes.post("/orders/{id}/refund", name="admin_refund_order")
async def refund(request: web.Request) -> web.Response:
    order_id = _order_id(request)
    if order_id is None:
        return _no_order(request)
    body = await _object(request)
    expected = body.get("expected_refundable")
    if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int)):
        raise ValidationFailed(
            {"expected_refundable": Text("expected an integer (minor units), as shown")}
        )
    try:
        done = await request.config_dict[MONEY].refunds.refund(
            order_id,
            amount=body.get("amount"),
            reason=body.get("reason"),
            expected_refundable=expected,
            actor=request[ACTOR],
        )
    except NotFound:
        return _no_order(request)
    except MoneyRefused as exc:
        return _refused(request, exc)
    except StripeFailed as exc:
        return _stripe_failed(request, exc)
    return web.json_response(done.as_dict())


@routes.post("/links/{id}/mark-paid", name="admin_mark_paid")
async def mark_paid(request: web.Request) -> web.Response:
    link_id = _link_id(request)
    body = await _object(request)
    try:
        marked = await request.config_dict[MONEY].manual.mark_paid(
            link_id,
            amount=body.get("amount"),
            method=body.get("method"),
            note=body.get("note"),
            actor=request[ACTOR],
        )
    except MoneyRefused as exc:
        return _refused(request, exc)
    return web.json_response(marked.as_dict(), status=201 if marked.changed else 200)


@routes.get("/orphans", name="admin_list_orphans")
async def list_orphans(request: web.Request) -> web.Response:
    attached = _flag(request, "attached") if "attached" in request.query else None
    found = await request.config_dict[MONEY].orphans.list(attached=attached)
    return web.json_response({"orphans": [orphan_json(o) for o in found]})


@routes.post("/orphans/{id}/attach", name="admin_attach_orphan")
async def attach(request: web.Request) -> web.Response:
    orphan_id = request.match_info["id"]
    not_found = error(request, 404, "not_found", Text("no such orphan payment"))
    if not ORPHAN_ID.fullmatch(orphan_id):
        return not_found
    body = await _object(request)
    try:
        attached = await request.config_dict[MONEY].orphans.attach(
            orphan_id, reason=body.get("reason"), actor=request[ACTOR]
        )
    except NotFound:
        return not_found
    except MoneyRefused as exc:
        return _refused(request, exc)
    return web.json_response(attached.as_dict())
