"""Languages (issue 13): a link's locale, and the Checkout locale an order was created with.

Both nullable, no backfill: a link without a locale reads in its payer's browser language (else
``checkout.default_locale``), and an order without one sends Stripe no ``locale``, exactly the
parameters it was first sent with.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=16), nullable=True))
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("checkout_locale", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("checkout_locale")
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.drop_column("locale")
