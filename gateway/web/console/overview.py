"""Console pages (issue 15). PLACEHOLDER: a helper fills it in (keep the route names)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()


@routes.get("/", name="console.overview")
async def placeholder_0(request: web.Request) -> web.Response:
    raise web.HTTPNotFound()
