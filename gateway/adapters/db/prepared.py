"""SQLAlchemy statements compiled once for SQLite and run on a plain ``sqlite3`` connection.

SQLAlchemy's execution path (connection and session layers, execution context, result object)
costs a hundred microseconds or more per statement; SQLite runs a small indexed statement in a
few. For the handful of statements on the hot paths, each is compiled once with the dialect's
own bind and result processors (so a ``UTCDateTime`` column is bound and read exactly as it
would be through SQLAlchemy), and then run on the driver's cursor. Statements must be built
once, at import, with ``bindparam`` for what varies: a statement object is the cache key.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable

_Processor = Callable[[Any], Any] | None
_MISSING = object()


class Prepared:
    """One statement, compiled for SQLite: its SQL text, how to bind, how to read a row."""

    __slots__ = ("binds", "make_row", "processors", "sql")

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        if "POSTCOMPILE" in self.sql:
            raise ValueError("an IN list (expanding parameter) cannot be compiled once")
        binds = []
        for name in compiled.positiontup or []:
            bind = compiled.binds[name]
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            # Literals in the statement (``attempts + 1``) are binds with a value of their own.
            default = _MISSING if bind.required or bind.callable else bind.value
            binds.append((name, processor, default))
        self.binds: tuple[tuple[str, _Processor, Any], ...] = tuple(binds)
        columns = list(_returned_columns(statement))
        self.processors: tuple[tuple[int, Callable[[Any], Any]], ...] = tuple(
            (i, processor)
            for i, column in enumerate(columns)
            if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None))
            is not None
        )
        names = [c.name for c in columns] or ["_"]
        row_type = namedtuple("Row", names, rename=True)  # type: ignore[misc]
        self.make_row: Callable[[Sequence[Any]], Any] = row_type._make

    def parameters(self, params: dict[str, Any]) -> list[Any]:
        values = []
        for name, processor, default in self.binds:
            value = params.get(name, default)
            if value is _MISSING:
                raise KeyError(f"no value for bind parameter {name!r}")
            values.append(processor(value) if processor else value)
        return values

    def run(self, connection: sqlite3.Connection, params: dict[str, Any]) -> list[Any]:
        raw = connection.execute(self.sql, self.parameters(params)).fetchall()
        if not self.processors:
            return [self.make_row(r) for r in raw]
        out = []
        for r in raw:
            values = list(r)
            for i, processor in self.processors:
                values[i] = processor(values[i])
            out.append(self.make_row(values))
        return out


def _returned_columns(statement: Any) -> Sequence[Any]:
    selected = getattr(statement, "selected_columns", None)
    if selected is not None:
        return list(selected)
    return list(getattr(statement, "_returning", ()) or ())


class PreparedStatements:
    """The statements prepared so far, by statement object."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._prepared: dict[int, tuple[Executable, Prepared]] = {}

    def __getitem__(self, statement: Executable) -> Prepared:
        entry = self._prepared.get(id(statement))
        if entry is None or entry[0] is not statement:
            entry = (statement, Prepared(statement, self._dialect))
            self._prepared[id(statement)] = entry  # keeps the statement alive: ids stay unique
        return entry[1]
