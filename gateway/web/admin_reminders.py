"""Pausing one link's reminders in the admin API: ``POST /admin/api/links/{id}/reminders``
with ``{"paused": true}`` or ``{"paused": false}`` (issue 14 item 3).

Mounted with the other admin routes (``gateway.web.admin.setup_admin``), behind the same key and
middleware. A paused link is owed no new reminder step, and a step already owed is skipped when
its time comes; resuming owes the steps still ahead (and any missed by less than 48 hours).
``reminders.paused`` in the config pauses every link's. Written to the link's audit trail with
the key's name.
"""

from __future__ import annotations

from aiohttp import web

from gateway.domain.errors import ValidationFailed
from gateway.domain.text import Text
from gateway.services.presenters import reminders_json
from gateway.web.admin import ACTOR, _json_body, _link_id
from gateway.web.keys import LINKS, REMINDERS

routes = web.RouteTableDef()


@routes.post("/links/{id}/reminders", name="admin_link_reminders")
async def pause_reminders(request: web.Request) -> web.Response:
    link_id = _link_id(request)
    body = await _json_body(request)
    paused = body.get("paused") if isinstance(body, dict) else None
    if not isinstance(paused, bool):
        raise ValidationFailed({"paused": Text("expected true or false")})
    changed = await request.config_dict[REMINDERS].set_paused(link_id, paused, actor=request[ACTOR])
    detail = await request.config_dict[LINKS].show(link_id)
    return web.json_response({"id": link_id, "changed": changed, **reminders_json(detail.link)})
