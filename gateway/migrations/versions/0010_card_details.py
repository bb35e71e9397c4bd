"""The card a Stripe payment was made with (issue 16, the support desk's "last4 amount date"):
``orders.card_last4`` and ``orders.card_brand``, recorded from ``charge.succeeded``; nullable
(other methods, and payments recorded before).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("card_last4", sa.String(length=4), nullable=True))
        batch_op.add_column(sa.Column("card_brand", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("card_brand")
        batch_op.drop_column("card_last4")
