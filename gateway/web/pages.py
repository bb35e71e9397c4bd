"""Page rendering: one Jinja environment, templates compiled once, every page the same headers."""

from __future__ import annotations

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
    return env


def render(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    if headers:
        response.headers.update(headers)
    return response
