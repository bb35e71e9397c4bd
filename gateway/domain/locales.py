"""Which language a payer reads, decided the same way everywhere (docs/design.md, issue 13).

The gateway offers a fixed set of languages (:data:`OFFERED`, each with complete catalogs).
A page chooses, first match wins:

1. the payer's explicit choice on the page (the switcher; a cookie scoped to that link),
2. the link's own locale (set by whoever issued it),
3. the browser's ``Accept-Language``, restricted to what is offered,
4. the organisation's default (``checkout.default_locale``).

Bot previews and emails have no browser to ask: the link's locale, else the default.

Everything an outsider sends (the header, the cookie, ``?lang=``) is read with a bounded cost
and never errors: anything unreadable counts as "no preference". A language prefix matches an
offered regional variant (``pt-PT`` and ``pt`` read Brazilian Portuguese, ``es-MX`` Spanish):
closer to the reader than the default.

Stripe's hosted page gets the same language (:func:`stripe_locale`), mapped onto the values
Checkout accepts; the mapped value is stored on the order when it is created, so a replayed
request sends identical parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from gateway.domain.text import Text

OFFERED: Final = ("en", "es", "pt-BR", "fr")
DEFAULT: Final = "en"

# How each language names itself: what the switcher shows (a reader looks for their own word).
NATIVE_NAMES: Final = {"en": "English", "es": "Español", "pt-BR": "Português", "fr": "Français"}

_BY_FOLDED: Final = {code.lower(): code for code in OFFERED}
# A bare language, or another region of it, reads the offered variant of that language.
_BY_LANGUAGE: Final = {code.split("-")[0].lower(): code for code in OFFERED}

# Checkout Session ``locale`` values Stripe accepts (docs.stripe.com/api/checkout/sessions/
# create#create_checkout_session-locale). Anything else is sent as ``auto`` (Stripe follows the
# browser), never as an invalid value that would make the session fail to create.
STRIPE_LOCALES: Final = frozenset(
    {
        "auto", "bg", "cs", "da", "de", "el", "en", "en-GB", "es", "es-419", "et", "fi", "fil",
        "fr", "fr-CA", "hr", "hu", "id", "it", "ja", "ko", "lt", "lv", "ms", "mt", "nb", "nl",
        "pl", "pt", "pt-BR", "ro", "ru", "sk", "sl", "sv", "th", "tr", "vi", "zh", "zh-HK",
        "zh-TW",
    }
)  # fmt: skip

# An Accept-Language header longer than this is read only up to here; more entries than
# _MAX_RANGES are ignored (a browser sends a handful).
MAX_HEADER_CHARS: Final = 512
_MAX_RANGES: Final = 16


class UnknownLocale(ValueError):
    """A locale given on create that the gateway does not offer."""

    def __init__(self, given: str) -> None:
        super().__init__(
            Text(
                "unknown locale %(given)s; offered: %(offered)s",
                given=repr(given[:40]),
                offered=", ".join(OFFERED),
            )
        )
        self.given = given


def offered(tag: str | None) -> str | None:
    """The offered locale ``tag`` names exactly (any case, ``_`` or ``-``), else None."""
    if not tag or len(tag) > 16:
        return None
    return _BY_FOLDED.get(tag.replace("_", "-").lower())


def parse_locale(tag: str) -> str:
    """A locale an admin typed, as stored; raises :class:`UnknownLocale` naming the offered."""
    found = offered(tag.strip())
    if found is None:
        raise UnknownLocale(tag)
    return found


def _closest(tag: str) -> str | None:
    exact = offered(tag)
    if exact is not None:
        return exact
    return _BY_LANGUAGE.get(tag.split("-")[0].split("_")[0].lower())


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip()[:5])
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def from_accept_language(header: str | None) -> str | None:
    """The offered locale the browser prefers most, or None (nothing offered, or unreadable).

    RFC 9110 §12.5.4: ranges by descending ``q`` (ties keep the header's order); ``q=0`` means
    "not this"; ``*`` says nothing about which language. Bounded: :data:`MAX_HEADER_CHARS` and
    16 ranges.
    """
    if not header:
        return None
    best: str | None = None
    best_q = 0.0
    for entry in header[:MAX_HEADER_CHARS].split(",")[:_MAX_RANGES]:
        tag, _, params = entry.partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        q = _quality(params) if params else 1.0
        if q > best_q:
            found = _closest(tag)
            if found is not None:
                best, best_q = found, q
    return best


def from_posix_environment(environ: Mapping[str, str]) -> str | None:
    """The offered locale a command-line user's environment asks for, or None.

    As gettext reads it: the entries of ``LANGUAGE`` (a colon-separated list) first, then the
    locale in force for messages, the first set of ``LC_ALL``, ``LC_MESSAGES``, ``LANG``
    (``pt_BR.UTF-8`` reads pt-BR, ``es_ES.UTF-8@euro`` Spanish; ``C`` and ``POSIX`` name none).
    """
    candidates = environ.get("LANGUAGE", "").split(":")[:_MAX_RANGES]
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if environ.get(name):
            candidates.append(environ[name])
            break
    for candidate in candidates:
        tag = candidate.split(".")[0].split("@")[0].strip()
        if tag and tag.upper() not in ("C", "POSIX"):
            found = _closest(tag)
            if found is not None:
                return found
    return None


def choose(
    *,
    choice: str | None,
    link_locale: str | None,
    browser: str | None,
    default: str,
) -> str:
    """The page's locale (the order in this module's docstring). ``browser`` is what
    :func:`from_accept_language` made of the request's header."""
    return offered(choice) or offered(link_locale) or browser or default


def for_link(link_locale: str | None, default: str) -> str:
    """What a reader with no browser to ask gets (a bot preview, an email)."""
    return offered(link_locale) or default


def stripe_locale(locale: str) -> str:
    """Checkout's ``locale`` for a page locale: the same tag where Stripe has it, else ``auto``."""
    return locale if locale in STRIPE_LOCALES else "auto"
