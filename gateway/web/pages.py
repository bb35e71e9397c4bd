"""Page rendering: one Jinja environment, templates compiled once, every page the same headers."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway.domain.money import format_minor


# DESIGN §6: the token is in the URL, so no page may leak it through a Referer, be cached by a
# shared cache, be framed, or run inline script.
def security_headers(form_action_origins: tuple[str, ...]) -> dict[str, str]:
    form_action = " ".join(("'self'", *form_action_origins))
    return {
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'self'; img-src 'self' data:; "
            f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
        ),
        "Permissions-Policy": "interest-cohort=()",
    }


def resource_dir(name: str) -> Path:
    """``templates/`` and ``static/`` live at the project root (DESIGN §6)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / name
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"cannot find the {name}/ directory next to the gateway package")


def setup_templates(app: web.Application, globals_: dict[str, Any]) -> jinja2.Environment:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(resource_dir("templates")),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        auto_reload=False,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["money"] = format_minor
    env.filters["date"] = lambda d: d.strftime("%-d %B %Y") if d else ""
    env.globals.update(globals_)
    app[PAGE_CACHE] = PageCache()
    return env


class PageCache:
    """Rendered pages by what they were rendered from (DESIGN §8: templates compiled once, and
    here rendered once). Only for pages that depend on nothing but their context; the key must
    hold everything the page shows (a frozen view is hashable and compared in full)."""

    def __init__(self, max_entries: int = 2048) -> None:
        self._pages: OrderedDict[Hashable, str] = OrderedDict()
        self._max = max_entries

    def get(self, key: Hashable) -> str | None:
        page = self._pages.get(key)
        if page is not None:
            self._pages.move_to_end(key)
        return page

    def put(self, key: Hashable, page: str) -> None:
        self._pages[key] = page
        if len(self._pages) > self._max:
            self._pages.popitem(last=False)


PAGE_CACHE = web.AppKey("page_cache", PageCache)


def render(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    cache_key: Hashable | None = None,
) -> web.Response:
    if cache_key is None:
        response = aiohttp_jinja2.render_template(template, request, context, status=status)
    else:
        cache = request.config_dict[PAGE_CACHE]
        key = (template, cache_key)
        text = cache.get(key)
        if text is None:
            text = aiohttp_jinja2.render_string(template, request, context)
            cache.put(key, text)
        response = web.Response(text=text, status=status, content_type="text/html")
    if headers:
        response.headers.update(headers)
    return response
