"""Console accounts (issue 15): who may do what, and the rules for passwords and sessions.

Three roles, each a superset of the one before:

- ``viewer`` sees everything, except that payers' email addresses are masked;
- ``treasurer`` also issues, sends, revokes, refunds and exports;
- ``admin`` also manages accounts and the organisation's settings.

Pure rules only (stdlib): the services store accounts and sessions, the console shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from importlib import resources

from gateway.domain.text import Text


class Role(StrEnum):
    VIEWER = "viewer"
    TREASURER = "treasurer"
    ADMIN = "admin"


class Permission(StrEnum):
    VIEW = "view"  # every page, payer emails masked
    SEE_EMAILS = "see_emails"  # payer email addresses in full
    ISSUE = "issue"  # create, bulk upload, send again, revoke, re-issue
    REFUND = "refund"
    EXPORT = "export"  # CSV of links (holds payers' personal data)
    MANAGE_ACCOUNTS = "manage_accounts"  # invite, disable, change roles
    SETTINGS = "settings"  # the organisation's settings


_VIEWER = frozenset({Permission.VIEW})
_TREASURER = _VIEWER | {
    Permission.SEE_EMAILS,
    Permission.ISSUE,
    Permission.REFUND,
    Permission.EXPORT,
}
_ADMIN = _TREASURER | {Permission.MANAGE_ACCOUNTS, Permission.SETTINGS}
PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: _VIEWER,
    Role.TREASURER: _TREASURER,
    Role.ADMIN: _ADMIN,
}


def can(role: Role | str, permission: Permission) -> bool:
    try:
        return permission in PERMISSIONS[Role(role)]
    except ValueError:
        return False  # a role this version does not know grants nothing


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise ValueError(
            Text(
                "unknown role %(role)s (use viewer, treasurer or admin)",
                role=repr(value[:40]),
            )
        ) from None


def actor(email: str) -> str:
    """How an account is named in the audit trail."""
    return f"admin:{email}"


def mask_email(email: str) -> str:
    """``jane.doe@example.org`` → ``j•••@e•••.org``: enough to tell two payers apart on a
    viewer's screen, not enough to write to them."""
    local, at, domain = email.partition("@")
    if not at:
        return "•••"
    host, dot, tld = domain.rpartition(".")
    masked_domain = f"{host[:1]}•••{dot}{tld}" if dot else f"{domain[:1]}•••"
    return f"{local[:1]}•••@{masked_domain}"


# Passwords: NIST SP 800-63B §5.1.1.2 — a minimum length, no composition rules, a check against
# known-breached and common values. The maximum bounds the hashing cost an outsider can ask for.
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 256


@cache
def common_passwords() -> frozenset[str]:
    """Passwords of 8+ characters that people use most (domain/data/common_passwords.txt, from
    zxcvbn's frequency list; see its LICENSE file), lower-cased."""
    text = resources.files("gateway.domain").joinpath("data/common_passwords.txt").read_text()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def password_problem(password: str, *, email: str = "") -> Text | None:
    """What is wrong with a new password, or None when it may be used."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return Text(
            "the password must be at least %(count)s characters long", count=PASSWORD_MIN_LENGTH
        )
    if len(password) > PASSWORD_MAX_LENGTH:
        return Text(
            "the password must be at most %(count)s characters long", count=PASSWORD_MAX_LENGTH
        )
    lowered = password.lower()
    if lowered in common_passwords() or len(set(lowered)) <= 2:
        return Text("this password is too common: choose one that is harder to guess")
    if email and lowered in {email.lower(), email.partition("@")[0].lower()}:
        return Text("the password must not be your email address")
    return None


def normalize_email(value: str) -> str:
    """Account emails compare case-insensitively: stored lower-cased, trimmed."""
    email = value.strip().lower()
    local, at, domain = email.partition("@")
    if (
        not at
        or not local
        or "." not in domain
        or len(email) > 320
        or any(c.isspace() for c in email)
    ):
        raise ValueError(Text("not an email address: %(email)s", email=repr(value[:80])))
    return email


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """When a console session ends by itself (issue 15: idle 30 min, absolute 12 h)."""

    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)

    def expired(self, *, created_at: datetime, last_seen_at: datetime, now: datetime) -> str | None:
        """Why a session is over at ``now`` (``"idle"`` / ``"expired"``), or None."""
        if now - created_at >= self.absolute:
            return "expired"
        if now - last_seen_at >= self.idle:
            return "idle"
        return None


INVITATION_VALID_FOR = timedelta(hours=72)
RESET_VALID_FOR = timedelta(hours=24)


def would_leave_no_admin(*, role_now: Role, role_after: Role | None, active_admins: int) -> bool:
    """True when demoting or disabling this account (``role_after`` None) removes the last
    active admin, which is refused: someone must always be able to manage accounts."""
    return role_now is Role.ADMIN and role_after is not Role.ADMIN and active_admins <= 1
