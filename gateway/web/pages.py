"""Page rendering: templates compiled once, pages rendered once per distinct content, and every
response built with docs/design.md §6's headers already in it."""

from __future__ import annotations

import re
import sys
from collections.abc import Hashable, Mapping
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from markupsafe import escape
from multidict import CIMultiDict

from gateway.bounded import BoundedCache, estimate_bytes
from gateway.i18n.templates import localized_environments
from gateway.resources import resource_dir

HTML = "text/html; charset=utf-8"

# Stands in for the token when a page is rendered once for every token: the shape and alphabet
# of a real one, so any filter a template applies treats it the same way.
TOKEN_MARK = "lk_TOKENxMARKxx.TOKENx.TOKENxMARKxTOKENxMARKxTOKEN"  # noqa: S105 - not a secret
TOKEN_MARK_BYTES = TOKEN_MARK.encode("ascii")
_PLAIN = re.compile(r"[A-Za-z0-9._-]*")


def token_bytes(token: str) -> bytes:
    """The token as a page shows it: escaped, though a verified token has nothing to escape
    (letters, digits, ``.``, ``_``, ``-``), and checking that is ten times cheaper."""
    if _PLAIN.fullmatch(token):
        return token.encode("ascii")
    return str(escape(token)).encode("utf-8")


def _weigh_page(key: Hashable, body: bytes) -> int:
    # The key holds what it names (a view, a token): it stays alive as long as the page.
    return estimate_bytes(key) + sys.getsizeof(body)


# What every answer says it is: no product, language or library version for a scanner to match.
SERVER_HEADER = "gateway"
HSTS = "max-age=31536000"


# docs/design.md §6: the token is in the URL, so no page may leak it through a Referer, be cached
# by a shared cache, be framed, or run inline script. ``hsts``: the gateway is served over https
# (``server.public_url``), so browsers are told never to try it over plain http.
def security_headers(form_action_origins: tuple[str, ...], *, hsts: bool = False) -> dict[str, str]:
    form_action = " ".join(("'self'", *form_action_origins))
    transport = {"Strict-Transport-Security": HSTS} if hsts else {}
    return {
        "Server": SERVER_HEADER,
        **transport,
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
        ),
        "Permissions-Policy": "interest-cohort=()",
    }


def setup_templates(
    app: web.Application, globals_: Mapping[str, Any], *, timezone: str, default_locale: str
) -> dict[str, jinja2.Environment]:
    """The payer pages' environments, one per locale (gateway.i18n.templates); the default
    locale's is also aiohttp-jinja2's, for any handler that renders through it."""
    environments = localized_environments(
        jinja2.FileSystemLoader(resource_dir("templates")),
        timezone=timezone,
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        globals_=globals_,
    )
    app[aiohttp_jinja2.APP_KEY] = environments[default_locale]
    return environments


def language_headers(locale: str) -> dict[str, str]:
    """What every page says about its language: which it is, and that the choice depended on
    the browser's languages and the switcher's cookie (so no cache may serve it to another)."""
    return {"Content-Language": locale, "Vary": "Accept-Language, Cookie"}


class Pages:
    """The payer's pages, as ready responses.

    A page that depends on nothing but its context can be given a ``cache_key``: it is then
    rendered and encoded once, and later requests only copy the bytes into a response. The key
    must identify everything the page shows (a frozen view is hashable and compared in full).
    The cache is bounded in bytes as well as entries (``max_bytes``; a key is weighed with what
    it holds). A page whose only variable is the token (the bot preview) is not cached per
    token at all: :meth:`render_for_token` renders it once with a stand-in and joins the real
    token in per request. Each response starts from a prepared copy of the security headers
    and the locale's (:func:`language_headers`), so nothing has to add them one by one on the
    way out.

    Every page is rendered in a locale (one of ``environments``), and the locale is part of
    every cache key: one language's page is never served for another.
    """

    def __init__(
        self,
        environments: Mapping[str, jinja2.Environment],
        headers: Mapping[str, str],
        max_entries: int = 2048,
        max_bytes: int = 2 << 20,
    ) -> None:
        self._environments = dict(environments)
        self._headers = {
            locale: CIMultiDict({"Content-Type": HTML, **headers, **language_headers(locale)})
            for locale in environments
        }
        self._with_extra: dict[tuple[int, str], tuple[Mapping[str, str], CIMultiDict[str]]] = {}
        self._bodies: BoundedCache[Hashable, bytes] = BoundedCache(
            max_entries, max_bytes, weigh=_weigh_page
        )
        self._token_parts: dict[tuple[str, str], list[bytes]] = {}

    def render(
        self,
        template: str,
        context: dict[str, Any],
        *,
        locale: str,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        cache_key: Hashable | None = None,
    ) -> web.Response:
        if cache_key is None:
            body = self.render_bytes(template, context, locale)
        else:
            key = (template, locale, cache_key)
            cached = self._bodies.get(key)
            if cached is None:
                body = self.render_bytes(template, context, locale)
                self._bodies.put(key, body)
            else:
                body = cached
        return self.respond(body, locale=locale, status=status, headers=headers)

    def render_for_token(
        self,
        template: str,
        token: str,
        *,
        locale: str,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        """A page whose context is only ``{"token": token}``, with no per-token cache: rendered
        once with :data:`TOKEN_MARK` in the token's place, then the (escaped) token joined in."""
        parts = self._token_parts.get((template, locale))
        if parts is None:
            parts = self._token_parts[(template, locale)] = self.render_bytes(
                template, {"token": TOKEN_MARK}, locale
            ).split(TOKEN_MARK_BYTES)
        body = token_bytes(token).join(parts)
        return self.respond(body, locale=locale, status=status, headers=headers)

    def respond(
        self,
        body: bytes,
        *,
        locale: str,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        """A response for a page rendered elsewhere (headers as :meth:`render` gives them)."""
        return web.Response(body=body, status=status, headers=self._headers_with(headers, locale))

    def render_bytes(self, template: str, context: dict[str, Any], locale: str) -> bytes:
        environment = self._environments[locale]
        return environment.get_template(template).render(context).encode("utf-8")

    def _headers_with(self, extra: Mapping[str, str] | None, locale: str) -> CIMultiDict[str]:
        base = self._headers[locale]
        if not extra:
            return base
        # The few distinct extras (X-Robots-Tag, Retry-After) are merged once each per locale;
        # handlers pass module-level mappings, so identity finds them without hashing their items.
        found = self._with_extra.get((id(extra), locale))
        if found is not None and found[0] is extra:
            return found[1]
        merged = base.copy()
        merged.update(extra)
        if len(self._with_extra) >= 256:
            self._with_extra.clear()  # per-call mappings filled it; the constants come back
        # Keeps extra alive, so its id stays its own while the entry exists.
        self._with_extra[(id(extra), locale)] = (extra, merged)
        return merged


PAGES = web.AppKey("pages", Pages)


def setup_pages(
    app: web.Application,
    globals_: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    timezone: str,
    default_locale: str,
) -> Pages:
    environments = setup_templates(app, globals_, timezone=timezone, default_locale=default_locale)
    pages = app[PAGES] = Pages(environments, headers)
    return pages
