"""The translation catalogs: one ``.po`` source per offered locale, compiled in memory the first
time a locale is used (no compiled ``.mo`` files to forget to rebuild or to ship stale).

English is the source language: its catalog maps each message to itself, and exists so that
plural forms and the completeness check treat every language alike. A message missing from a
catalog falls back to its English source, never to an error; CI (tests/unit/test_catalogs.py)
fails on a missing, fuzzy or out-of-date translation, so a release never needs the fallback.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from gateway.domain.locales import DEFAULT, OFFERED
from gateway.domain.text import Text
from gateway.resources import resource_dir

DOMAIN = "messages"


def folder(locale: str) -> str:
    """gettext's folder name for a locale: ``pt-BR`` -> ``pt_BR``."""
    return locale.replace("-", "_")


def po_path(locale: str, root: Path | None = None) -> Path:
    base = root if root is not None else resource_dir("locales")
    return base / folder(locale) / "LC_MESSAGES" / f"{DOMAIN}.po"


def catalog(locale: str) -> Translations:
    """The compiled catalog of an offered locale (any other name: the default's)."""
    return _compiled(locale if locale in OFFERED else DEFAULT)


@functools.cache
def _compiled(locale: str) -> Translations:
    with po_path(locale).open("rb") as source:
        messages = read_po(source, locale=folder(locale))
    compiled = io.BytesIO()
    write_mo(compiled, messages, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


# Named apart from gettext/ngettext on purpose: extraction finds messages by function name and
# argument position, and these take the locale first (scripts/i18n knows both spellings).
def translate(locale: str, message: str) -> str:
    """``message`` in ``locale`` (the English source where the catalog has none)."""
    return catalog(locale).ugettext(message)


def translate_plural(locale: str, singular: str, plural: str, n: int) -> str:
    return catalog(locale).ungettext(singular, plural, n)


def localize(locale: str, message: str) -> str:
    """A domain :class:`~gateway.domain.text.Text` in ``locale`` (its values as given, a value
    that is itself a Text translated too); any other string unchanged. A translation whose
    placeholders do not fit the values falls back to the English message, never to an error."""
    if not isinstance(message, Text):
        return str(message)
    params = {
        name: localize(locale, value) if isinstance(value, Text) else value
        for name, value in message.params.items()
    }
    template = translate(locale, message.template)
    if not params:
        return template
    try:
        return template % params
    except (KeyError, ValueError, TypeError):
        return message.template % params


def N_(message: str) -> str:
    """Marks a string for extraction where it is defined; it is translated where it is shown."""
    return message
