"""``links.ref`` indexed in byte order on PostgreSQL, for the admin list's ref prefix.

A prefix is a range of ``ix_links_ref`` when the index is in code point order, and the list
reads it so (``LinkListing._ref_range``). PostgreSQL's default operator class orders by the
database's collation, in which a prefix is no range (and its LIKE uses the index only under
the C collation, with the pattern known when the plan is made): at 100,000 links a prefix
matching six links read every link, twice (count and page). ``varchar_pattern_ops`` orders
byte by byte (UTF-8: code point order) and still serves equality (bulk issuance's look-up of
refs). SQLite's index is already in code point order (BINARY): nothing changes there.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_links_ref", table_name="links")
    op.create_index("ix_links_ref", "links", ["ref"], postgresql_ops={"ref": "varchar_pattern_ops"})


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_links_ref", table_name="links")
    op.create_index("ix_links_ref", "links", ["ref"])
