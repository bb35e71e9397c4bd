"""Request header text made safe to keep: every header value is data, whatever its bytes.

aiohttp decodes header bytes as UTF-8 with ``surrogateescape``: a byte that is not UTF-8 (a
``User-Agent: \\xff\\xfe\\xfd``) becomes a lone surrogate (``"\\udcff"``) in the ``str``. Python
holds such a string happily, but it cannot be encoded as UTF-8: Prometheus' exposition, the
database drivers and a UTF-8 log stream all raise on it. So any header text that may reach a
label, a log line or a row goes through :func:`clean_header` first, which replaces surrogates
and control characters (tab excepted) with U+FFFD. Valid text, including non-ASCII, is kept.
"""

from __future__ import annotations

import re
from typing import Final

REPLACEMENT: Final = "\ufffd"
_UNSAFE: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")


def clean_header(text: str) -> str:
    """``text`` with surrogates and control characters replaced by U+FFFD."""
    if text.isascii() and text.isprintable():  # nearly every header: no copy, no regex
        return text
    return _UNSAFE.sub(REPLACEMENT, text)
