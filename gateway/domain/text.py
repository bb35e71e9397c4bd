"""Messages for people, built in the domain and translated at the edges.

The domain is stdlib only, so it cannot look anything up in a catalog; yet its refusals ("not an
email address: ...", "'150,00' is ambiguous (did you mean ...?)") are what an admin reads. A
:class:`Text` is such a message: it *is* the English sentence (a ``str``, so logs, joins and
``str(exc)`` read as before) and it also keeps its template and values, so the CLI and the
admin API can show it in the reader's language (``gateway.i18n.localize``).

The template is a message id for the catalogs (``scripts/i18n extract`` reads ``Text("...")``
like ``N_``), written with ``%(name)s`` placeholders; the values stay exactly as given (an
amount the admin typed is shown back as typed, in every language).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Text(str):
    """``Text("not an email address: %(email)s", email=value)``: the English message, with
    ``.template`` and ``.params`` for translating it.

    A value may itself be a :class:`Text` (a sentence inside a sentence); it is translated too.
    """

    template: str
    params: Mapping[str, Any]

    def __new__(cls, template: str, /, **params: Any) -> Text:
        value = template % params if params else template
        text = super().__new__(cls, value)
        text.template = template
        text.params = params
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (e.g. by multiprocessing) as what it is, not as a plain string.
        return (_rebuild, (self.template, dict(self.params)))


def _rebuild(template: str, params: dict[str, Any]) -> Text:
    return Text(template, **params)


def message_of(exc: BaseException) -> str:
    """The message an exception was raised with: its :class:`Text` when it was given one (so it
    can still be translated), else ``str(exc)``."""
    if len(exc.args) == 1 and isinstance(exc.args[0], Text):
        return exc.args[0]
    return str(exc)
