"""Tables. Invariants that must survive concurrent writers live here, in the schema:

- at most one ``pending`` order per link: a partial unique index, so two processes racing to
  create an attempt cannot both succeed, whatever the code above does;
- a Stripe session or payment belongs to one order: unique columns;
- nothing is deleted: there is no cascade, and the audit trail is append-only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (which has no time zones) too."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class Link(Base):
    __tablename__ = "links"
    __table_args__ = (
        # The admin list: newest first, by cursor, without sorting the table.
        sa.Index("ix_links_created_at_id", "created_at", "id"),
        # Refs by equality (bulk issuance) and by prefix (the admin list). On PostgreSQL in
        # byte order (varchar_pattern_ops): a prefix is then a range of it whatever the
        # database's collation (see LinkListing._ref_range).
        sa.Index("ix_links_ref", "ref", postgresql_ops={"ref": "varchar_pattern_ops"}),
        # A link's successor (a renewal or a correction): the console's timeline and the
        # renewal flow look links up by the one they replace. Few links have one.
        # The console's search box: an email address in any case, or its start (a range of
        # lower(email): services.link_search).
        sa.Index("ix_links_email_lower", sa.text("lower(email)")),
        sa.Index(
            "ix_links_replaces_id",
            "replaces_id",
            sqlite_where=sa.text("replaces_id IS NOT NULL"),
            postgresql_where=sa.text("replaces_id IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320))
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.String(500))
    currency: Mapped[str] = mapped_column(sa.String(3))
    amount_total: Mapped[int] = mapped_column(sa.BigInteger)
    ref: Mapped[str] = mapped_column(sa.String(200))  # indexed: ix_links_ref above
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(sa.String(100))
    valid_until: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(index=True)
    revoked_by: Mapped[str | None] = mapped_column(sa.String(100))
    revoke_reason: Mapped[str | None] = mapped_column(sa.String(200))
    # Set when this link replaced an expired one (fresh-link flow), for the audit trail.
    replaces_id: Mapped[str | None] = mapped_column(sa.String(32))
    # Human opens, flushed in batches from memory (never a write per GET).
    open_count: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    first_opened_at: Mapped[datetime | None]
    last_opened_at: Mapped[datetime | None]
    # Email delivery of the link.
    sent_count: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    last_sent_at: Mapped[datetime | None]
    last_send_error: Mapped[str | None] = mapped_column(sa.String(500))
    # The payer's language as the issuer chose it (gateway.domain.locales.OFFERED); None: the
    # browser's, else checkout.default_locale.
    locale: Mapped[str | None] = mapped_column(sa.String(16))
    # Reminders (issue 14): the day payment is due, in the organisation's time zone; the steps
    # in days relative to it ("-3,1,7"; None: checkout's default schedule); when the payer
    # stopped them (one-click link), and whether an admin paused them.
    due_date: Mapped[date | None] = mapped_column(sa.Date)
    reminder_steps: Mapped[str | None] = mapped_column(sa.String(64))
    reminders_stopped_at: Mapped[datetime | None]
    reminders_paused: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, server_default=sa.false()
    )
    # The last time the payer saw a page saying something went wrong (an error, an expired
    # link), flushed with the open counts: a payment recorded after it gets a receipt that says
    # it went through after all.
    problem_seen_at: Mapped[datetime | None]

    items: Mapped[list[LinkItem]] = relationship(
        back_populates="link", order_by="LinkItem.position", lazy="raise"
    )
    orders: Mapped[list[Order]] = relationship(
        back_populates="link", order_by="Order.created_at", lazy="raise"
    )


class LinkItem(Base):
    __tablename__ = "link_items"
    __table_args__ = (
        sa.UniqueConstraint("link_id", "position", name="uq_link_items_link_id_position"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    link_id: Mapped[str] = mapped_column(sa.ForeignKey("links.id"), index=True)
    position: Mapped[int] = mapped_column(sa.Integer)
    description: Mapped[str] = mapped_column(sa.String(500))
    amount: Mapped[int] = mapped_column(sa.BigInteger)  # minor units, per unit
    quantity: Mapped[int] = mapped_column(sa.Integer, default=1)

    link: Mapped[Link] = relationship(back_populates="items", lazy="raise")


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        # The rule behind the bug this project exists for: pending never blocks a payer, and
        # there is never more than one pending attempt per link, enforced by the database.
        sa.Index(
            "uq_orders_one_pending_per_link",
            "link_id",
            unique=True,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.CheckConstraint(
            "status IN ('pending','processing','paid','failed','refunded','canceled','expired')",
            name="status_known",
        ),
        # The admin list: "has this link an order in these statuses?" as a probe per status, and
        # the links of a status from the index alone.
        sa.Index("ix_orders_status_link_id", "status", "link_id"),
        sa.Index(
            "ix_orders_duplicates",
            "link_id",
            sqlite_where=sa.text("duplicate_of IS NOT NULL"),
            postgresql_where=sa.text("duplicate_of IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    link_id: Mapped[str] = mapped_column(sa.ForeignKey("links.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    amount_total: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    created_at: Mapped[datetime]
    # Indexed: replicas poll it to learn which links changed (the GET snapshot's change feed).
    updated_at: Mapped[datetime] = mapped_column(index=True)
    stripe_session_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    session_url: Mapped[str | None] = mapped_column(sa.Text)
    # What the session was (or will be) created with; a retry must send the very same.
    success_url: Mapped[str | None] = mapped_column(sa.Text)
    cancel_url: Mapped[str | None] = mapped_column(sa.Text)
    # Checkout's ``locale`` (Stripe's value), decided from the payer's page when the order was
    # created; None on orders from before it existed, which send none (replays stay identical).
    checkout_locale: Mapped[str | None] = mapped_column(sa.String(16))
    session_expires_at: Mapped[datetime | None]
    payment_intent_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(32))
    paid_at: Mapped[datetime | None]
    # A payment that arrived while the link was already paid (e.g. an old session paid in
    # another tab): recorded, never dropped, and shown to the admin.
    duplicate_of: Mapped[str | None] = mapped_column(sa.String(32))
    refunded_amount: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    # The refund the gateway itself made (duplicate payments), so it is made once only.
    refund_id: Mapped[str | None] = mapped_column(sa.String(255))
    disputed: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    # How the order was paid (issue 16): "stripe" (a Checkout Session), or recorded by a person
    # for money that came outside Stripe ("cash", "bank_transfer", "other"), with their note and
    # who recorded it. Such an order has no session and blocks payment like any paid order.
    method: Mapped[str] = mapped_column(sa.String(16), default="stripe", server_default="stripe")
    payment_note: Mapped[str | None] = mapped_column(sa.String(500))
    recorded_by: Mapped[str | None] = mapped_column(sa.String(100))
    # The card a Stripe payment was made with, from its charge (``charge.succeeded``): what
    # the support desk matches "last4 amount date" against. None for other methods, and for
    # payments recorded before it was kept.
    card_last4: Mapped[str | None] = mapped_column(sa.String(4))
    card_brand: Mapped[str | None] = mapped_column(sa.String(32))

    link: Mapped[Link] = relationship(back_populates="orders", lazy="raise")


class AuditEntry(Base):
    """Append-only: every state change, who made it and why."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        # One kind of entry over a window (disputes for Needs attention, the Activity filter).
        sa.Index("ix_audit_entries_action_at", "action", "at"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    # Indexed: the console's trail and the digest read a window of time.
    at: Mapped[datetime] = mapped_column(index=True)
    # None for what is about no link: a console login, an invitation, a settings change.
    link_id: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    order_id: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    action: Mapped[str] = mapped_column(sa.String(64))
    from_status: Mapped[str | None] = mapped_column(sa.String(16))
    to_status: Mapped[str | None] = mapped_column(sa.String(16))
    actor: Mapped[str] = mapped_column(sa.String(100))
    detail: Mapped[str | None] = mapped_column(sa.Text)


class LinkPreview(Base):
    """Bot fetches per link and bot name, kept apart from human opens."""

    __tablename__ = "link_previews"

    link_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    bot_name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    count: Mapped[int] = mapped_column(sa.Integer, default=0)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]


class WebhookEvent(Base):
    """The inbox: each Stripe event id once, with what became of it."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        # Events that failed or are still unapplied (the console's Needs attention, the digest).
        sa.Index("ix_webhook_events_outcome_received_at", "outcome", "received_at"),
    )

    event_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(100))
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(sa.String(16))  # webhook | reconcile
    outcome: Mapped[str] = mapped_column(sa.String(32))  # applied | ignored | failed | pending
    error: Mapped[str | None] = mapped_column(sa.Text)
    order_id: Mapped[str | None] = mapped_column(sa.String(32))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=1)


class KeyValue(Base):
    """Small bits of durable state: the reconciler's event checkpoint, and similar."""

    __tablename__ = "kv"

    key: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)
    updated_at: Mapped[datetime]


class OutboxMessage(Base):
    """A message owed to someone (gateway.domain.outbox): written with the change that causes
    it, unique per (kind, subject), built and sent later by the sender, never deleted."""

    __tablename__ = "outbox"
    __table_args__ = (
        sa.UniqueConstraint("kind", "subject", name="uq_outbox_kind_subject"),
        sa.CheckConstraint(
            "state IN ('pending','sending','sent','failed','skipped','canceled')",
            name="state_known",
        ),
        # What the sender claims: due rows in order, from the index alone.
        sa.Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    # What the message is about, unique within its kind: an order id (a receipt), a link id and
    # a step (a reminder), a digest's window.
    subject: Mapped[str] = mapped_column(sa.String(200))
    link_id: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    order_id: Mapped[str | None] = mapped_column(sa.String(32))
    recipient: Mapped[str] = mapped_column(sa.String(320))
    locale: Mapped[str] = mapped_column(sa.String(16))
    # What the message needs beyond the rows it reads when it is built (JSON object).
    payload: Mapped[str] = mapped_column(sa.Text, default="{}", server_default="{}")
    state: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    # Sends after a sender died mid-send (its lease ran out): at most one.
    crash_resends: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))
    message_id: Mapped[str] = mapped_column(sa.String(255))
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class Account(Base):
    """A person who uses the console (gateway.domain.accounts). Never deleted: disabled."""

    __tablename__ = "accounts"
    __table_args__ = (
        sa.CheckConstraint("role IN ('viewer','treasurer','admin')", name="role_known"),
    )

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    # Lower-cased (domain.accounts.normalize_email), so unique means unique to a person.
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200), default="", server_default="")
    role: Mapped[str] = mapped_column(sa.String(16))
    # argon2id (adapters.passwords); None until the invitation is accepted.
    password_hash: Mapped[str | None] = mapped_column(sa.Text)
    password_changed_at: Mapped[datetime | None]
    # TOTP (RFC 6238) secret, base32; set at enrolment, in force once confirmed (enabled_at).
    totp_secret: Mapped[str | None] = mapped_column(sa.String(64))
    totp_enabled_at: Mapped[datetime | None]
    # The time step of the last TOTP code accepted: a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(sa.Integer)
    # JSON list of SHA-256 digests of the unused recovery codes.
    recovery_codes: Mapped[str | None] = mapped_column(sa.Text)
    locale: Mapped[str | None] = mapped_column(sa.String(16))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(sa.String(100))
    disabled_at: Mapped[datetime | None]
    disabled_by: Mapped[str | None] = mapped_column(sa.String(100))
    last_login_at: Mapped[datetime | None]


class ConsoleSession(Base):
    """A console login, stored server-side behind an opaque cookie. The id is the SHA-256 of
    the cookie's value, so the table alone cannot be replayed as a cookie. Ended, never
    deleted (who was logged in when is part of the audit)."""

    __tablename__ = "console_sessions"
    __table_args__ = (
        sa.Index("ix_console_sessions_account_id_ended_at", "account_id", "ended_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    user_agent: Mapped[str] = mapped_column(sa.String(200), default="", server_default="")
    client: Mapped[str] = mapped_column(sa.String(64), default="", server_default="")
    csrf_token: Mapped[str] = mapped_column(sa.String(64))
    # The password was right and a second factor is still owed: the session may only answer it.
    second_factor_pending: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, server_default=sa.false()
    )
    ended_at: Mapped[datetime | None]
    # logout | logout_everywhere | idle | expired | disabled | password_changed | role_changed
    ended_reason: Mapped[str | None] = mapped_column(sa.String(32))


class AccountToken(Base):
    """A single-use link sent to a person: an invitation (72 h) or a password reset, bound to
    the address it was sent to. The id is random ("at_…"); the link's token is this id signed
    with ``tokens.secret_keys`` (services.accounts), stored nowhere, the outbox included."""

    __tablename__ = "account_tokens"
    __table_args__ = (sa.CheckConstraint("purpose IN ('invite','reset')", name="purpose_known"),)

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(sa.String(32), index=True)
    purpose: Mapped[str] = mapped_column(sa.String(16))
    email: Mapped[str] = mapped_column(sa.String(320))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(sa.String(100))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class LoginThrottle(Base):
    """Failed console logins per account and per client address, shared by every replica."""

    __tablename__ = "login_throttle"

    # "account:<sha256 of the email>" or "client:<address>": bounded, and no address in clear.
    key: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(sa.Integer, default=0)
    window_started_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class OrgSetting(Base):
    """A setting an admin changed in the console, overriding config.toml (JSON value)."""

    __tablename__ = "org_settings"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(sa.String(100))


class Refund(Base):
    """A refund a person asked for (issue 16), written before Stripe is called.

    One row per order and refundable amount: two requests that saw the same refundable amount
    (two treasurers pressing at once, a retry) meet on the unique constraint, so one refund is
    made. The Stripe idempotency key is derived from the order, that amount and ``attempt``
    (moved on only once Stripe is known to have made nothing under the previous key)."""

    __tablename__ = "refunds"
    __table_args__ = (
        sa.UniqueConstraint("order_id", "refundable_before", name="uq_refunds_order_refundable"),
        sa.CheckConstraint(
            "status IN ('requested','succeeded','failed','unknown')", name="status_known"
        ),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    order_id: Mapped[str] = mapped_column(sa.String(32), index=True)
    link_id: Mapped[str] = mapped_column(sa.String(32), index=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    # What was still refundable when it was asked for (the guard the console sends back).
    refundable_before: Mapped[int] = mapped_column(sa.BigInteger)
    # requested: Stripe may be being asked now (claimed_until); succeeded; failed: Stripe made
    # nothing; unknown: Stripe's answer was lost, to be looked up before anything else.
    status: Mapped[str] = mapped_column(sa.String(16))
    attempt: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    claimed_until: Mapped[datetime | None]
    stripe_refund_id: Mapped[str | None] = mapped_column(sa.String(255))
    reason: Mapped[str] = mapped_column(sa.String(500))
    actor: Mapped[str] = mapped_column(sa.String(100))
    requested_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(sa.String(500))


class OrphanPayment(Base):
    """A payment Stripe holds with this gateway's metadata and no order here (issue 16): a
    session whose order row was lost. Found by the reconciler, attached by a person."""

    __tablename__ = "orphan_payments"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    payment_intent_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    session_id: Mapped[str | None] = mapped_column(sa.String(255))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    # What the payment's metadata names (the link may not exist here).
    link_id: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    order_id: Mapped[str | None] = mapped_column(sa.String(32))
    paid_at: Mapped[datetime | None]
    found_at: Mapped[datetime]
    attached_at: Mapped[datetime | None]
    attached_by: Mapped[str | None] = mapped_column(sa.String(100))
    attach_reason: Mapped[str | None] = mapped_column(sa.String(500))
    attached_order_id: Mapped[str | None] = mapped_column(sa.String(32))
