"""Jinja environments, one per offered locale: the same templates, each compiled with its
language's ``_``/``ngettext`` (Jinja's i18n extension, new-style: ``%(name)s`` placeholders,
escaped like any other value) and its CLDR filters (``money``, ``date``, ``datetime``).

One environment per locale rather than a translation passed per render: a page rendered from a
cache key never depends on which request compiled it, and the GET path pays nothing to switch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2

from gateway.domain.locales import NATIVE_NAMES, OFFERED
from gateway.i18n.catalogs import catalog
from gateway.i18n.formats import Formats


def localized_environments(
    loader: jinja2.BaseLoader,
    *,
    timezone: str,
    autoescape: bool | Any,
    globals_: Mapping[str, Any] | None = None,
    keep_trailing_newline: bool = False,
) -> dict[str, jinja2.Environment]:
    """``{locale: environment}`` for every offered locale."""
    environments: dict[str, jinja2.Environment] = {}
    for locale in OFFERED:
        env = jinja2.Environment(
            loader=loader,
            autoescape=autoescape,  # noqa: S701 - the callers pass select_autoescape(...)
            auto_reload=False,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=keep_trailing_newline,
            extensions=["jinja2.ext.i18n"],
        )
        # {% trans %} blocks are written wrapped for reading; the catalogs hold one line.
        env.policies["ext.i18n.trimmed"] = True
        env.install_gettext_translations(catalog(locale), newstyle=True)  # type: ignore[attr-defined]
        formats = Formats(locale, timezone)
        env.filters.update(money=formats.money, date=formats.date, datetime=formats.datetime)
        env.globals.update(globals_ or {})
        env.globals.update(locale=locale, languages=NATIVE_NAMES)
        environments[locale] = env
    return environments
