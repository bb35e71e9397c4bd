"""Time as a dependency.

Everything that asks "what time is it" (staleness of a pending order, token age, the emulator's
session expiry) goes through a ``Clock`` so tests move time forward instead of sleeping.
Production uses ``SystemClock``; the tests' clock that only moves when told to is
``gateway.dev.clock.FakeClock``.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()
