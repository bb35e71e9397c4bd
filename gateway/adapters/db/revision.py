"""Whether the schema is current, without loading Alembic.

Alembic (with Mako and Pygments) costs ~11 MB of memory once imported, for the life of the
process; ``gateway serve`` only needs it when there is something to migrate. The head revision
is written down here, and a test keeps it equal to the migrations' own head
(tests/integration/test_migrations.py), so a new migration cannot be forgotten.
"""

from __future__ import annotations

import sqlalchemy as sa

from gateway.adapters.db.engine import Database

# The newest revision in gateway/migrations/versions (kept true by a test).
HEAD = "0010"

_VERSION = sa.text("SELECT version_num FROM alembic_version")


async def schema_revision(db: Database) -> str | None:
    """The revision the database is at; None when it has never been migrated."""
    async with db.engine.connect() as connection:
        try:
            return (await connection.execute(_VERSION)).scalar_one_or_none()
        except sa.exc.DBAPIError:
            return None  # no alembic_version table yet


async def upgrade_if_needed(db: Database) -> bool:
    """Migrate to head when the database is behind (Alembic loaded only then); True if it ran."""
    if await schema_revision(db) == HEAD:
        return False
    from gateway.adapters.db.migrate import upgrade  # Alembic: only when there is work

    await upgrade(db)
    return True
