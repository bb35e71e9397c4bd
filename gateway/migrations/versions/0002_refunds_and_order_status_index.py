"""Orders keep their return URLs and refund id; an index for the reconciler's scans.

The return URLs are part of the session parameters; storing them makes a retry (or the
reconciler's recovery) send exactly what the first request sent, as Stripe's idempotency needs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refund_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("success_url", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("cancel_url", sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f("ix_orders_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_status"))
        batch_op.drop_column("cancel_url")
        batch_op.drop_column("success_url")
        batch_op.drop_column("refund_id")
