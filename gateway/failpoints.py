"""Failpoints: named places where a test can make the process die, to prove crash safety.

``GATEWAY_FAILPOINTS="after_order_insert:3,after_session_created"`` kills the process with
SIGKILL (no cleanup, no flush: a power cut) the 3rd time the first point is reached and the 1st
time the second is. Unset, as in production, :func:`hit` is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = (
    "after_order_insert",
    "after_session_created",
    "during_webhook_apply",
    "after_smtp_accepted",
)


def _parse(spec: str) -> dict[str, int]:
    armed: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, count = part.partition(":")
        if name not in POINTS:
            raise ValueError(f"unknown failpoint {name!r} (known: {', '.join(POINTS)})")
        armed[name] = int(count or 1)
    return armed


_armed = _parse(os.environ.get("GATEWAY_FAILPOINTS", ""))


def hit(name: str) -> None:
    remaining = _armed.get(name)
    if remaining is None:
        return
    if remaining > 1:
        _armed[name] = remaining - 1
        return
    os.kill(os.getpid(), signal.SIGKILL)
