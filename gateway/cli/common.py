"""What every ``gateway`` command shares: its errors and the two printers."""

from __future__ import annotations

import json
from collections.abc import Sequence

from gateway.domain.errors import GatewayError

ACTOR = "cli"


class CliError(Exception):
    """Reported on stderr; exit status 2."""


class CommandFailed(GatewayError):
    """Something did not work (an email not sent); exit status 1."""


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, default=str))


def print_table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> None:
    text = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in text:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    if not rows:
        print("(none)")
