"""Jinja environments, one per offered locale: the same templates, each compiled with its
language's ``_``/``ngettext`` (Jinja's i18n extension, new-style: ``%(name)s`` placeholders,
escaped like any other value) and its CLDR filters (``money``, ``date``, ``datetime``).

One environment per locale rather than a translation passed per render: a page rendered from a
cache key never depends on which request compiled it, and the GET path pays nothing to switch.

Nothing of a language is loaded before something is shown in it: an environment compiles a
template the first time it is rendered (Jinja's own rule), its catalog is compiled at its first
message (:func:`_lazy_gettext`) and its CLDR data read at its first amount or date
(:class:`~gateway.i18n.formats.Formats`). A gateway whose payers read two of the four languages
keeps two languages' templates, catalogs and CLDR data (each ~1-2 MB), not four.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
        gettext_, ngettext_, pgettext_, npgettext_ = _lazy_gettext(locale)
        env.install_gettext_callables(  # type: ignore[attr-defined]
            gettext_, ngettext_, newstyle=True, pgettext=pgettext_, npgettext=npgettext_
        )
        formats = Formats(locale, timezone)
        env.filters.update(money=formats.money, date=formats.date, datetime=formats.datetime)
        env.globals.update(globals_ or {})
        env.globals.update(locale=locale, languages=NATIVE_NAMES)
        environments[locale] = env
    return environments


def _lazy_gettext(
    locale: str,
) -> tuple[
    Callable[[str], str],
    Callable[[str, str, int], str],
    Callable[[str, str], str],
    Callable[[str, str, str, int], str],
]:
    """gettext, ngettext, pgettext and npgettext of ``locale``'s catalog, as Jinja's
    ``install_gettext_translations`` would take them from it, the catalog compiled (and kept:
    :func:`~gateway.i18n.catalogs.catalog`) only when the first message is looked up."""

    def gettext_(message: str) -> str:
        return catalog(locale).ugettext(message)

    def ngettext_(singular: str, plural: str, n: int) -> str:
        return catalog(locale).ungettext(singular, plural, n)

    def pgettext_(context: str, message: str) -> str:
        return str(catalog(locale).pgettext(context, message))

    def npgettext_(context: str, singular: str, plural: str, n: int) -> str:
        return catalog(locale).npgettext(context, singular, plural, n)

    return gettext_, ngettext_, pgettext_, npgettext_
