"""Handing memory the process has freed back to the system.

glibc's allocator keeps blocks freed inside its heap for reuse: after a cache lets go of many
megabytes at once (the kept-inflated pages, when an organisation outgrows them), that memory
would stay resident, and counted in RSS, until reused. ``malloc_trim`` returns the free pages.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim  # the process's C library
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None
    return trim


_TRIM = _malloc_trim()


def release_freed_memory() -> None:
    """Return the allocator's free pages to the system (a few milliseconds; call it after
    letting go of many megabytes, not per request). Does nothing where glibc is not used."""
    if _TRIM is not None:
        _TRIM(0)
