"""Shared fixtures: real databases (SQLite file and a throwaway PostgreSQL database), the Stripe
emulator on loopback, and the gateway built by its own factory, all on one injected clock."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from gateway.adapters.db import statements

# The database rules fail loudly under test: a statement built per call given to run()/fetch()
# raises (see gateway.adapters.db.statements). Subprocesses (crash tests, CLI) inherit it.
os.environ.setdefault(statements.ENV, "1")
statements.checking(os.environ[statements.ENV] == "1")

POSTGRES_ADMIN_URL = os.environ.get(
    "GATEWAY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("GATEWAY_TEST_REQUIRE_POSTGRES") == "1"


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def create_pg_database() -> str:
    """A fresh database per test: runs never see each other's rows."""
    name = "gw_test_" + secrets.token_hex(6)
    try:
        conn = await asyncpg.connect(_pg_dsn(POSTGRES_ADMIN_URL), timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        if REQUIRE_POSTGRES:
            raise
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = make_url(_pg_dsn(POSTGRES_ADMIN_URL)).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


async def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    conn = await asyncpg.connect(_pg_dsn(POSTGRES_ADMIN_URL), timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def database_url(backend: str, tmp_path: object) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/gateway.sqlite3"
        return
    url = await create_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(url)


@pytest.fixture
def sqlite_url(tmp_path: object) -> Iterator[str]:
    return f"sqlite+aiosqlite:///{tmp_path}/gateway.sqlite3"
