"""The treasurers' console: server-rendered pages under ``/admin`` (issue 15).

One sub-application with :func:`gateway.web.console.base.console_middleware` (sessions, CSRF,
cross-site refusal, second factor) and one module of routes per page group. Handlers call the
same services as the CLI and the JSON API; the pages work without JavaScript.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from gateway.web.console import (
    accounts,
    activity,
    auth,
    bulk,
    link_detail,
    links,
    new_link,
    overview,
    settings,
    support,
)
from gateway.web.console.base import console_middleware, setup_templates

# new_link before link_detail: /links/new is not a link id.
ROUTE_MODULES = (
    auth,
    accounts,
    activity,
    overview,
    links,
    new_link,
    link_detail,
    bulk,
    settings,
    support,
)


async def _to_console_home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently("/admin/")


def setup_console(app: web.Application, static_url: Callable[[str], str]) -> None:
    """Mount the console at ``/admin`` (after the JSON API's ``/admin/api``)."""
    console = web.Application(middlewares=[console_middleware])
    for module in ROUTE_MODULES:
        console.router.add_routes(module.routes)
    setup_templates(console, app, static_url)
    app.router.add_get("/admin", _to_console_home, name="console_home_redirect")
    app.add_subapp("/admin", console)
