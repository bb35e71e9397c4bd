"""Checks that keep the database rules out of anyone's memory (see :mod:`gateway.adapters.db`).

Two rules are checked here:

- **Statements given to ``run()`` and ``Database.fetch()`` are module-level constants.** They are
  compiled once and cached by the statement object (:mod:`gateway.adapters.db.prepared`), so a
  statement built per call is compiled per call and kept alive for good: a leak, slow and silent.
  With checks on (:func:`checking`; the test suite turns them on through the environment variable
  ``GATEWAY_DB_CHECKS=1``) the first use of each statement makes sure it is held by a module's
  globals, directly or through one container (a dict, a tuple, a :class:`ByDialect`), and raises
  :class:`StatementNotConstant` otherwise. The check looks at the heap, once per statement: it is
  off in production, where it would cost a few milliseconds the first time each statement runs.
- **Write transactions never nest** (``Database.write()``/``write_rows()``): on SQLite the inner
  one would wait forever for the lock the outer one holds. :func:`enter_write` raises
  :class:`NestedWrite` at once instead, always (a context variable read: nothing to switch off).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from contextvars import ContextVar, Token
from typing import Any

ENV = "GATEWAY_DB_CHECKS"
_checking = os.environ.get(ENV) == "1"
# Statements found to be constants, by id, kept alive so that their ids stay theirs.
_constants: dict[int, object] = {}


class StatementNotConstant(RuntimeError):
    """A statement built per call reached ``run()`` or ``Database.fetch()``."""


class NestedWrite(RuntimeError):
    """A write transaction opened inside another one of the same task."""


def checking(on: bool | None = None) -> bool:
    """Whether statements are checked (and, given ``on``, switch the checks on or off)."""
    global _checking
    if on is not None:
        _checking = on
    return _checking


def check_constant(statement: object) -> None:
    """With checks on, raise :class:`StatementNotConstant` unless ``statement`` is a
    module-level constant. Cheap after the first call for a statement."""
    if not _checking or id(statement) in _constants:
        return
    if not _held_by_a_module(statement):
        raise StatementNotConstant(
            "a statement given to run() or Database.fetch() must be built once, as a module-level "
            "constant with bindparam() for what varies (it is compiled and cached by identity): "
            f"{str(statement)[:200]!r}"
        )
    _constants[id(statement)] = statement


def _held_by_a_module(statement: object) -> bool:
    modules = {id(vars(module)) for module in list(sys.modules.values()) if module is not None}
    for holder in gc.get_referrers(statement):
        if id(holder) in modules:
            return True
        container = isinstance(holder, (dict, tuple, list)) or hasattr(holder, "__slots__")
        if container and any(id(outer) in modules for outer in gc.get_referrers(holder)):
            return True
    return False


# The task inside a write transaction, if any (a task started inside one does not own it).
_writer: ContextVar[asyncio.Task[Any] | None] = ContextVar("gateway_db_writer", default=None)


def enter_write() -> Token[asyncio.Task[Any] | None]:
    """Mark the current task as inside a write transaction; raise :class:`NestedWrite` if it
    already is. Give the token back to :func:`leave_write` when the transaction ends."""
    task = asyncio.current_task()
    if task is not None and _writer.get() is task:
        raise NestedWrite(
            "a write transaction inside another: on SQLite it would wait forever for the lock "
            "the outer one holds. Finish the outer one first, or pass its session down."
        )
    return _writer.set(task)


def leave_write(token: Token[asyncio.Task[Any] | None]) -> None:
    _writer.reset(token)
