"""Alembic environment. The gateway runs migrations on a connection it already holds (see
``gateway.adapters.db.migrate``), so this file only wires that connection in."""

from __future__ import annotations

from alembic import context

from gateway.adapters.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by running `alembic` directly
    raise SystemExit("run migrations with `gateway db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
