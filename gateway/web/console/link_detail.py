"""Console pages (issue 15). PLACEHOLDER: a helper fills it in (keep the route names)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
