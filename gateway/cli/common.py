"""What every ``gateway`` command shares: its errors, its language and the printers.

What a person reads (sentences, labels, table headers) is in the language of the user's
environment, as gettext reads it (``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``; see
:func:`gateway.domain.locales.from_posix_environment`), when the gateway offers it, else
``checkout.default_locale``. ``--json`` output, values (ids, refs, states, amounts shown back as
"1,500.00 USD") and log lines stay as they are, in every language.
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Mapping, Sequence

from gateway.config import Settings
from gateway.domain.errors import GatewayError
from gateway.domain.locales import DEFAULT, from_posix_environment
from gateway.i18n import translate

ACTOR = "cli"


class CliError(Exception):
    """Reported on stderr; exit status 2."""


class CommandFailed(GatewayError):
    """Something did not work (an email not sent); exit status 1."""


def cli_locale(settings: Settings | None, environ: Mapping[str, str] | None = None) -> str:
    """The language of the command's human output (see the module docstring)."""
    found = from_posix_environment(os.environ if environ is None else environ)
    if found is not None:
        return found
    return settings.checkout.default_locale if settings is not None else DEFAULT


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, default=str))


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal: combining marks take none, wide characters two
    (``len`` would misalign a translated header such as "AÇÕES" written with combining marks)."""
    columns = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        columns += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return columns


def pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


def print_table(
    rows: Sequence[Sequence[object]], headers: Sequence[str], *, locale: str = DEFAULT
) -> None:
    """Rows under ``headers`` (already in the reader's language), columns aligned."""
    text = [[("" if v is None else str(v)) for v in row] for row in rows]
    titles = [h.upper() for h in headers]
    widths = [max([width(h)] + [width(r[i]) for r in text]) for i, h in enumerate(titles)]
    print("  ".join(pad(h, w) for h, w in zip(titles, widths, strict=True)).rstrip())
    for row in text:
        print("  ".join(pad(v, w) for v, w in zip(row, widths, strict=True)).rstrip())
    if not rows:
        print(translate(locale, "(none)"))


def print_fields(fields: Sequence[tuple[str, str]], *, indent: str = "  ", gap: int = 1) -> None:
    """``label value`` lines with the values lined up, whatever the labels' language."""
    columns = max((width(label) for label, _ in fields), default=0)
    for label, value in fields:
        print(f"{indent}{pad(label, columns)}{' ' * gap}{value}".rstrip())
