"""The support desk in the admin API (issue 16), behind the same key and middleware as the rest
(mounted by ``gateway.web.admin.setup_admin``):

- ``GET /admin/api/support/find?q=...``: the links the query names (an email, a name, a
  reference, a link id, a payment URL or token, a Stripe id), each with its diagnosis, the
  recommended fixes and the reply in the link's language; each result says whether it came from
  this database or from Stripe (``gateway.services.support``).

A query that is too long or holds control characters is a 422 naming ``q``; a query that can
match nothing (a forged token, a charge id) is a 200 whose ``problem`` says why.
"""

from __future__ import annotations

from aiohttp import web

from gateway.domain.text import Text
from gateway.services.support import found_json
from gateway.web.admin import error, request_locale
from gateway.web.keys import SUPPORT

routes = web.RouteTableDef()


@routes.get("/support/find", name="admin_support_find")
async def find(request: web.Request) -> web.Response:
    query = request.query.get("q")
    if query is None:
        return error(request, 400, "bad_request", Text("q is required: what the payer sent"))
    desk = request.config_dict[SUPPORT]
    found = await desk.find(query)
    return web.json_response(found_json(desk, found, request_locale(request)))
