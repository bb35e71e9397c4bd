"""Schema migrations with Alembic, run on the gateway's own async engine.

``gateway db upgrade`` calls this, and so do the demo and the tests, so the schema a test sees is
always the one the migrations build (never ``create_all``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from gateway.adapters.db.engine import Database

# Any constant works; it only has to be the same for every replica.
_PG_MIGRATION_LOCK = 0x6761_7465  # "gate"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "gateway:migrations")
    return config


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Safe when several replicas start at once."""
    config = alembic_config()

    def run(connection: sa.Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Serialise concurrent upgrades; the lock ends with the transaction.
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK}
            )
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    engine = db.engine.execution_options(gateway_write=True) if db.is_sqlite else db.engine
    async with engine.begin() as connection:
        await connection.run_sync(run)


async def current_revision(db: Database) -> str | None:
    def read(connection: sa.Connection) -> Any:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as connection:
        result: str | None = await connection.run_sync(read)
        return result


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
