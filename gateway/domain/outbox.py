"""Messages the gateway owes people, and the rules for delivering each exactly once (issue 14).

A message is a row (the *outbox*), written in the same transaction as the change that causes it
and unique per ``(kind, subject)``: however often a payment is recorded (the webhook three
times, the return page, the reconciler), at most one receipt row exists for it. A sender claims
due rows, builds each message when it sends it, and marks the row.

States::

    pending --claim--> sending --SMTP accepted--> sent
                          |  \\--refused for good--> failed
                          |   \\--refused for now--> pending (next_attempt_at: backoff)
                          |    \\--nothing to send any more--> skipped (a reminder to a paid link)
                          \\--lease ran out (the sender died)--> sending again, once
    pending/failed --cancel--> canceled;  failed/canceled/skipped --retry--> pending

A sender that dies between "SMTP accepted" and "marked sent" leaves the row ``sending`` with a
lease that runs out. The next sender cannot know whether the message went, so it sends it again,
once, with the same ``Message-ID`` (a receiving server or client that has it may drop the copy),
and counts it; a row whose lease runs out a second time is marked failed, never sent a third
time: at most two deliveries, ever.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Final


class Kind(enum.StrEnum):
    LINK = "link"
    RENEWAL = "renewal"
    RECEIPT = "receipt"
    PAYMENT_FAILED = "payment_failed"
    PAID_TWICE = "paid_twice"
    REFUNDED = "refunded"
    REMINDER = "reminder"
    ALERT_DIGEST = "alert_digest"
    # Console accounts (issue 15): a set-password link, to the account's address.
    INVITATION = "invitation"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a kind of message, not a password


class State(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELED = "canceled"


# Waits after each failed attempt (1 m, 5 m, 30 m, 2 h, 12 h); after the last, failed for good.
BACKOFF: Final = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
)
MAX_ATTEMPTS: Final = len(BACKOFF) + 1

# How long a claimed row is the claiming sender's: far longer than one SMTP conversation (the
# mailer's timeout is seconds), so a live sender never loses a row it is sending.
LEASE: Final = timedelta(minutes=5)

# What may be retried or canceled by a person.
RETRYABLE: Final = frozenset({State.FAILED, State.CANCELED, State.SKIPPED})
CANCELABLE: Final = frozenset({State.PENDING, State.FAILED})


def after_refusal(attempts: int, now: datetime, *, permanent: bool) -> tuple[State, datetime]:
    """Where a row goes when the server refused it on its ``attempts``-th try (1 = the first).

    A permanent refusal (the server rejected the recipient, the message cannot be built) fails
    at once; a transient one (no connection, a 4xx) waits :data:`BACKOFF` and tries again, until
    :data:`MAX_ATTEMPTS` tries have failed."""
    if permanent or attempts >= MAX_ATTEMPTS:
        return State.FAILED, now
    return State.PENDING, now + BACKOFF[max(attempts, 1) - 1]


def message_id(row_id: str, domain: str) -> str:
    """The row's ``Message-ID``: derived from the row alone, so every send of it carries the same
    one (a resend after a crash can be recognised as the same message)."""
    return f"<{row_id}@{domain or 'gateway.invalid'}>"
