"""The treasurers' console (issue 15): accounts, their sessions, invitation and reset tokens,
the login throttle and the organisation's settings; audit entries about no link (a login, a
settings change) and read by time; links found by the one they replace and by email in any
case (the console's search box).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        sa.Column("totp_enabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("recovery_codes", sa.Text(), nullable=True),
        sa.Column("locale", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_by", sa.String(length=100), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('viewer','treasurer','admin')", name=op.f("ck_accounts_role_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("email", name=op.f("uq_accounts_email")),
    )
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_agent", sa.String(length=200), server_default="", nullable=False),
        sa.Column("client", sa.String(length=64), server_default="", nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("second_factor_pending", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
    )
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_console_sessions_account_id_ended_at", ["account_id", "ended_at"], unique=False
        )
    op.create_table(
        "account_tokens",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "purpose IN ('invite','reset')", name=op.f("ck_account_tokens_purpose_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_tokens")),
    )
    with op.batch_alter_table("account_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_tokens_account_id"), ["account_id"], unique=False
        )
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )
    op.create_table(
        "org_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_org_settings")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.alter_column("link_id", existing_type=sa.String(length=32), nullable=True)
        batch_op.create_index(batch_op.f("ix_audit_entries_at"), ["at"], unique=False)
    op.create_index("ix_links_email_lower", "links", [sa.text("lower(email)")], unique=False)
    op.create_index("ix_audit_entries_action_at", "audit_entries", ["action", "at"], unique=False)
    op.create_index(
        "ix_webhook_events_outcome_received_at",
        "webhook_events",
        ["outcome", "received_at"],
        unique=False,
    )
    op.create_index(
        "ix_links_replaces_id",
        "links",
        ["replaces_id"],
        unique=False,
        sqlite_where=sa.text("replaces_id IS NOT NULL"),
        postgresql_where=sa.text("replaces_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_links_replaces_id", table_name="links")
    op.drop_index("ix_links_email_lower", table_name="links")
    op.drop_index("ix_audit_entries_action_at", table_name="audit_entries")
    op.drop_index("ix_webhook_events_outcome_received_at", table_name="webhook_events")
    # Entries about no link stay (nothing is deleted), under an empty link id.
    op.execute("UPDATE audit_entries SET link_id = '' WHERE link_id IS NULL")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entries_at"))
        batch_op.alter_column("link_id", existing_type=sa.String(length=32), nullable=False)
    op.drop_table("org_settings")
    op.drop_table("login_throttle")
    with op.batch_alter_table("account_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_tokens_account_id"))
    op.drop_table("account_tokens")
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_console_sessions_account_id_ended_at")
    op.drop_table("console_sessions")
    op.drop_table("accounts")
