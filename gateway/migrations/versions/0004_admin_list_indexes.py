"""Indexes for the admin list at 100,000 links (issue 10 item 21).

- ``links (created_at, id)``: pages newest first, walked by cursor, without sorting the table;
- ``orders (status, link_id)``: "has this link a paid/pending/... order?" is a probe or two
  per link (with ``orders.link_id`` and ``orders.status`` apart, SQLite probed by status: every
  paid order for every link), and a status's links are read from the index alone;
- ``links (valid_until)``: the candidates of ``expired``, ``issued`` and ``opened``;
- ``orders (link_id) WHERE duplicate_of IS NOT NULL``: the candidates of ``duplicate``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_DUPLICATES = "duplicate_of IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.create_index("ix_links_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_links_valid_until"), ["valid_until"], unique=False)
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_status_link_id", ["status", "link_id"], unique=False)
        batch_op.create_index(
            "ix_orders_duplicates",
            ["link_id"],
            unique=False,
            sqlite_where=sa.text(_DUPLICATES),
            postgresql_where=sa.text(_DUPLICATES),
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_orders_duplicates",
            sqlite_where=sa.text(_DUPLICATES),
            postgresql_where=sa.text(_DUPLICATES),
        )
        batch_op.drop_index("ix_orders_status_link_id")
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_links_valid_until"))
        batch_op.drop_index("ix_links_created_at_id")
