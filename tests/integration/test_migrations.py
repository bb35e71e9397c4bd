"""The schema the migrations build is exactly the one the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gateway.adapters.db.engine import create_database
from gateway.adapters.db.migrate import current_revision, head_revision, upgrade
from gateway.adapters.db.models import Base


async def test_migrations_match_models_and_rerun_safely(database_url: str) -> None:
    db = create_database(database_url)
    try:
        await upgrade(db)
        await upgrade(db)  # a second upgrade (another replica starting) is a no-op
        assert await current_revision(db) == head_revision()
        async with db.engine.connect() as connection:
            diff = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
        assert diff == []
    finally:
        await db.dispose()
