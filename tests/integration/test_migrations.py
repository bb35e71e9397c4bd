"""The schema the migrations build is exactly the one the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gateway.adapters.db.engine import Database, create_database
from gateway.adapters.db.migrate import current_revision, head_revision, upgrade
from gateway.adapters.db.models import Base
from tests.conftest import create_pg_database, drop_pg_database


# SQLite's reflection cannot read an expression index (ix_links_email_lower); the next test
# compares every index as the database spells it, that one included.
@pytest.mark.filterwarnings(
    "ignore:Skipped unsupported reflection of expression-based index:sqlalchemy.exc.SAWarning"
)
@pytest.mark.filterwarnings(
    "ignore:autogenerate skipping metadata-specified expression-based index"
)
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


async def _index_definitions(db: Database) -> dict[str, str]:
    """Every index as the database itself spells it, WHERE clause and operator class included
    (which ``compare_metadata`` does not look at)."""
    if db.is_sqlite:
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    else:
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
    async with db.engine.connect() as connection:
        rows = (await connection.execute(sa.text(query))).all()
    return {
        name: " ".join(definition.split())
        for name, definition in rows
        if not name.startswith("alembic_version")
    }


async def test_migrations_build_the_indexes_the_models_describe(
    database_url: str, tmp_path: Path
) -> None:
    # Partial indexes (one pending order per link, duplicates) and PostgreSQL's byte-order
    # ix_links_ref (the admin list's ref prefix) only work as the models write them.
    migrated = create_database(database_url)
    if migrated.is_sqlite:
        described_url = f"sqlite+aiosqlite:///{tmp_path}/described.sqlite3"
    else:
        described_url = await create_pg_database()
    described = create_database(described_url)
    try:
        await upgrade(migrated)
        async with described.engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        built = await _index_definitions(migrated)
        assert built == await _index_definitions(described)
        assert "lower(" in built["ix_links_email_lower"]
        if not migrated.is_sqlite:
            assert "varchar_pattern_ops" in built["ix_links_ref"]
    finally:
        await migrated.dispose()
        await described.dispose()
        if not described.is_sqlite:
            await drop_pg_database(described_url)


async def test_the_recorded_head_is_the_migrations_head_and_is_read_without_alembic(
    sqlite_url: str,
) -> None:
    from gateway.adapters.db.revision import HEAD, schema_revision, upgrade_if_needed

    assert head_revision() == HEAD
    db = create_database(sqlite_url)
    try:
        assert await schema_revision(db) is None  # never migrated
        assert await upgrade_if_needed(db) is True
        assert await schema_revision(db) == HEAD
        assert await upgrade_if_needed(db) is False  # current: Alembic is not called
    finally:
        await db.dispose()
