"""The database adapter: everything that knows SQL, the dialects and the drivers.

Three ways in, each for one kind of work:

- ``Database.read()`` / ``Database.write()``: an ORM session; ``write()`` is one transaction,
  committed on success (on SQLite it holds the one write lock from ``BEGIN IMMEDIATE``).
- ``Database.fetch(statement, params)``: a small hot-path read, run on SQLite by the quick reader
  (:mod:`.quick`) on the event loop's thread, elsewhere through the async engine.
- ``Database.write_rows()`` + :func:`run`: a write transaction made only of statements; on SQLite
  it is the driver's own connection (:mod:`.sqlite_direct`) with statements compiled once
  (:mod:`.prepared`). :func:`run` also works inside ``write()``.

The rules (checked where they can be: :mod:`.statements`):

1. A statement given to ``fetch()`` or ``run()`` is a **module-level constant**, built once with
   ``bindparam()`` for what varies. The compiled form is cached by the statement object and
   keeps it alive: one built per call would be compiled every time and never freed. With
   ``GATEWAY_DB_CHECKS=1`` (the test suite sets it) a statement that no module holds raises
   ``StatementNotConstant``.
2. **No IN lists** in those statements (an expanding parameter is compiled per call; it raises
   ``ValueError`` when prepared): write two comparisons, or use :func:`.dialects.any_of` in an
   ORM query.
3. **Never nest** ``write()`` / ``write_rows()``: on SQLite the inner one would wait forever for
   the lock the outer one holds. It raises ``NestedWrite`` instead; pass the session down.
4. **No dialect tests in services**: what differs between SQLite and PostgreSQL (locking a
   link's row, upserts) is in :mod:`.dialects` (``lock_link``, ``locks_rows``, ``upsert``,
   ``insert_ignore``, ``any_of``).
"""

from gateway.adapters.db.engine import Database, RowTransaction, create_database, run
from gateway.adapters.db.models import (
    AuditEntry,
    Base,
    Link,
    LinkItem,
    LinkPreview,
    Order,
    WebhookEvent,
)

__all__ = [
    "AuditEntry",
    "Base",
    "Database",
    "Link",
    "LinkItem",
    "LinkPreview",
    "Order",
    "RowTransaction",
    "WebhookEvent",
    "create_database",
    "run",
]
