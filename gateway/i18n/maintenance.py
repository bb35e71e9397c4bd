"""Keeping the catalogs whole: extract, update and check (``scripts/i18n``; CI runs the check
through tests/unit/test_catalogs.py).

- ``extract``: every marked string of the code and templates into ``gateway/locales/
  messages.pot`` (Babel, ``babel.cfg``), then each language's ``.po`` updated from it: new
  messages arrive untranslated (never guessed by fuzzy matching), removed ones are dropped.
  English is the source language: its messages are filled in with themselves.
- ``check``: fails, naming each message, when a catalog misses a translation, holds a fuzzy one,
  has placeholders that differ from the source's, or is out of date with the code.

Not imported by the running gateway.
"""

from __future__ import annotations

import copy
import io
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from gateway.domain.locales import OFFERED
from gateway.i18n.catalogs import folder, po_path

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ROOT / "gateway" / "locales"
TEMPLATE = LOCALES / "messages.pot"
_PROJECT = "checkout-link-gateway"
# The headers' dates stay put, so a catalog only changes in git when a message does.
_FIXED = datetime(2026, 1, 1, tzinfo=UTC)


def _keywords() -> dict[str, Any]:
    # The templates' _()/gettext()/ngettext() take the message first (Babel's defaults); the
    # Python helpers take the locale first (gateway.i18n.catalogs.translate*), N_ marks, and
    # the domain's Text("...", name=value) builds a message to translate at the edge.
    return {
        **DEFAULT_KEYWORDS,
        "translate": (2,),
        "translate_plural": (2, 3),
        "N_": None,
        "Text": None,
    }


def extract() -> Catalog:
    """A fresh template catalog from the code and templates."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config)  # type: ignore[no-untyped-call]
    catalog = Catalog(project=_PROJECT, fuzzy=False, creation_date=_FIXED, revision_date=_FIXED)
    for filename, _line, message, comments, context in extract_from_dir(
        ROOT,
        method_map,
        options_map,
        keywords=_keywords(),
        comment_tags=("Translators:",),
        strip_comment_tags=True,
    ):
        if not filename.startswith("gateway/"):
            continue
        catalog.add(message, None, [], auto_comments=comments, context=context)
    return catalog


def _write(path: Path, catalog: Catalog) -> None:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, no_location=True, omit_header=False, sort_output=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=locale)


def update() -> None:
    template = extract()
    _write(TEMPLATE, template)
    for locale in OFFERED:
        path = po_path(locale, LOCALES)
        if path.exists():
            catalog = _read(path, folder(locale))
        else:
            catalog = Catalog(
                locale=folder(locale),
                project=_PROJECT,
                fuzzy=False,
                creation_date=_FIXED,
                revision_date=_FIXED,
            )
        # A copy each: update() adds the template's own Message objects, so filling English in
        # below would otherwise fill the other languages' new messages with English too.
        fresh = copy.deepcopy(template)
        catalog.update(fresh, no_fuzzy_matching=True, update_header_comment=False)
        catalog.obsolete.clear()
        if locale == "en":
            for message in catalog:
                if message.id:
                    message.string = message.id
        catalog.fuzzy = False
        _write(path, catalog)


def _empty(message: Message) -> bool:
    if isinstance(message.string, tuple | list):
        return not all(message.string)
    return not message.string


def problems(locales: Iterable[str] = OFFERED) -> list[str]:
    """Everything wrong with the catalogs, one line each (empty: all complete and current)."""
    found: list[str] = []
    wanted = {(m.id if isinstance(m.id, str) else m.id[0]) for m in extract() if m.id}
    for locale in locales:
        path = po_path(locale, LOCALES)
        if not path.exists():
            found.append(f"{locale}: no catalog at {path.relative_to(ROOT)}")
            continue
        catalog = _read(path, folder(locale))
        have = set()
        for message in catalog:
            if not message.id:
                continue
            key = message.id if isinstance(message.id, str) else message.id[0]
            have.add(key)
            if message.fuzzy:
                found.append(f"{locale}: fuzzy: {key!r}")
            elif _empty(message):
                found.append(f"{locale}: untranslated: {key!r}")
            for error in message.check(catalog):
                found.append(f"{locale}: {error}: {key!r}")
        for key in sorted(wanted - have):
            found.append(f"{locale}: missing (run scripts/i18n extract): {key!r}")
        for key in sorted(have - wanted):
            found.append(f"{locale}: no longer in the code (run scripts/i18n extract): {key!r}")
    return found


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "extract":
        update()
        return 0
    if command == "check":
        found = problems()
        for line in found:
            print(line)
        return 1 if found else 0
    print("usage: scripts/i18n extract|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
