"""Console accounts (issue 15): who may use the console, their roles, passwords and second
factors. The CLI (``gateway users``) and the console's pages both call :class:`Accounts`.

Set-password links. An account is created without a password, with a single-use link (an
``account_tokens`` row): an *invitation* (valid ``INVITATION_VALID_FOR``, 72 h) or a *reset*
(``RESET_VALID_FOR``). The token in the link is ``<row id>.<signature>``: the row's random id
signed (HMAC-SHA256, itsdangerous) with the gateway's ``tokens.secret_keys`` (the newest signs,
each verifies), so it is never stored anywhere — not in the row, not in the outbox payload
(which holds the row id) — and the emailed link is computed again, from the row id, when the
message is sent. The database alone cannot make a link; the keys alone cannot either. A link
is accepted once (``used_at``, set under a conditional update), before it expires, for the
address it was issued to, and never for a disabled account; accepting it sets an argon2id hash
and ends the account's sessions, and makes every other outstanding link of the account void.

The last active admin can never be disabled or demoted: the decision is taken in a write
transaction that first locks every active admin's row (PostgreSQL; SQLite's ``BEGIN
IMMEDIATE`` serialises writers), so two admins demoting each other at once leave one admin.

Every change is audited (``audit_entries`` with no link), by ``admin:<email>`` or ``cli``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa
from itsdangerous import BadSignature, Signer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Account, AccountToken, ConsoleSession, OutboxMessage
from gateway.adapters.passwords import Passwords
from gateway.adapters.totp import Totp
from gateway.clock import Clock
from gateway.config import DEMO_SECRET, ConfigError, Settings
from gateway.domain.accounts import (
    INVITATION_VALID_FOR,
    PASSWORD_MAX_LENGTH,
    RESET_VALID_FOR,
    Role,
    normalize_email,
    parse_role,
    password_problem,
    would_leave_no_admin,
)
from gateway.domain.errors import GatewayError, NotFound, ValidationFailed
from gateway.domain.outbox import Kind
from gateway.domain.text import Text
from gateway.services.console_auth import (
    audit_console,
    dump_codes,
    end_sessions,
    load_codes,
    new_recovery_code,
    recovery_digest,
    utc,
)
from gateway.services.outbox import Outbox

RecoveryCodes = list[str]  # (Accounts.list hides the builtin inside the class)
Status = Literal["invited", "active", "disabled"]
Purpose = Literal["invite", "reset"]
NAME_CHARS = 200
RECOVERY_CODES = 10
# Where the console serves a set-password link (gateway.web.console: the auth pages).
LINK_PATHS: dict[str, str] = {"invite": "/admin/invitation/", "reset": "/admin/reset/"}
_SALT = "gateway.console-account-link"
_ROW_ID_CHARS = 35  # "at_" + 32 characters
TOKEN_MAX_CHARS = 128


@dataclass(frozen=True, slots=True)
class AccountView:
    id: str
    email: str
    name: str
    role: Role
    status: Status
    totp_enabled: bool
    created_at: datetime
    last_login_at: datetime | None
    locale: str | None
    created_by: str = ""
    disabled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Invitation:
    """A set-password link just made: ``url`` is shown once (the CLI prints it) or emailed
    (``emailed``: the outbox accepted it and it went, or is owed when the sender retries)."""

    account: AccountView
    url: str
    expires_at: datetime
    purpose: Purpose = "invite"
    emailed: bool = False


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """What a set-password link is for (the page that asks for the password shows it)."""

    purpose: Purpose
    email: str
    name: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    secret: str
    uri: str
    qr_svg: str


class AccountLinkInvalid(GatewayError):
    """A set-password link that cannot be used: ``reason`` is unknown | used | expired |
    disabled (the page may say which: the link's owner is the one reading)."""

    def __init__(self, reason: str) -> None:
        super().__init__(Text("this link cannot be used (%(reason)s)", reason=reason))
        self.reason = reason


class LastAdmin(GatewayError):
    """Refused: the account is the last active admin."""

    def __init__(self) -> None:
        super().__init__(Text("this is the last active admin: make another account admin first"))


class AccountDisabled(GatewayError):
    def __init__(self) -> None:
        super().__init__(Text("this account is disabled: enable it first"))


def now_of(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock.now(), UTC)


def secret_keys_of(settings: Settings) -> tuple[str, ...]:
    """The keys that sign set-password links: the link tokens' keys (gateway.wiring)."""
    keys = tuple(settings.tokens.secret_keys) or ((DEMO_SECRET,) if settings.demo else ())
    if not keys:
        raise ConfigError(
            "tokens.secret_keys is required (set GATEWAY_TOKENS_SECRET_KEYS, "
            "or GATEWAY_DEMO=1 for the demo's database)"
        )
    return keys


class AccountLinks:
    """Signs a token row's id into a set-password link and reads it back (no database)."""

    def __init__(self, secret_keys: Sequence[str], public_url: str) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is required")
        # itsdangerous signs with the last key; the settings list the newest first.
        self._signer = Signer(list(reversed(secret_keys)), salt=_SALT, digest_method=hashlib.sha256)
        self._public_url = public_url.rstrip("/")

    @classmethod
    def from_settings(cls, settings: Settings) -> AccountLinks:
        return cls(secret_keys_of(settings), settings.server.public_url)

    def token(self, row_id: str) -> str:
        return self._signer.sign(row_id).decode("ascii")

    def url(self, purpose: str, row_id: str) -> str:
        return f"{self._public_url}{LINK_PATHS[purpose]}{self.token(row_id)}"

    def row_id(self, token: str) -> str | None:
        """The row id a genuine token signs, else None (bounded: long input refused unread)."""
        if not token or len(token) > TOKEN_MAX_CHARS or not token.isascii():
            return None
        try:
            value = self._signer.unsign(token).decode("ascii")
        except (BadSignature, UnicodeDecodeError):
            return None
        return value if value.startswith("at_") and len(value) <= _ROW_ID_CHARS else None


def view_of(account: Account) -> AccountView:
    status: Status
    if account.disabled_at is not None:
        status = "disabled"
    elif account.password_hash is None:
        status = "invited"
    else:
        status = "active"
    return AccountView(
        id=account.id,
        email=account.email,
        name=account.name,
        role=Role(account.role),
        status=status,
        totp_enabled=account.totp_enabled_at is not None,
        created_at=utc(account.created_at),
        last_login_at=utc(account.last_login_at) if account.last_login_at else None,
        locale=account.locale,
        created_by=account.created_by,
        disabled_at=utc(account.disabled_at) if account.disabled_at else None,
    )


def clean_name(name: str) -> str:
    name = " ".join(name.split())
    if len(name) > NAME_CHARS or any(not c.isprintable() for c in name):
        raise ValidationFailed(
            {"name": Text("at most %(count)s printable characters", count=NAME_CHARS)}
        )
    return name


def _email(value: str) -> str:
    try:
        return normalize_email(value)
    except ValueError as exc:
        raise ValidationFailed({"email": str(exc.args[0])}) from None


def _role(value: Role | str) -> Role:
    if isinstance(value, Role):
        return value
    try:
        return parse_role(value)
    except ValueError as exc:
        raise ValidationFailed({"role": str(exc.args[0])}) from None


def new_account_id() -> str:
    return "ac_" + secrets.token_urlsafe(12)


def new_token_row_id() -> str:
    return "at_" + secrets.token_urlsafe(24)


_OUTBOX_ROW = sa.select(OutboxMessage.id).where(
    OutboxMessage.kind == sa.bindparam("kind"), OutboxMessage.subject == sa.bindparam("subject")
)
_KINDS: dict[str, Kind] = {"invite": Kind.INVITATION, "reset": Kind.PASSWORD_RESET}


class Accounts:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        outbox: Outbox,
        *,
        public_url: str,
        links: AccountLinks | None = None,
        passwords: Passwords | None = None,
        totp: Totp | None = None,
        default_locale: str = "en",
    ) -> None:
        self._db = db
        self._clock = clock
        self._outbox = outbox
        self._public_url = public_url.rstrip("/")
        # Without the configured keys (a test building the service alone): a key of this
        # process only, so a link never outlives it and nobody else can make one.
        self._links = links or AccountLinks((secrets.token_urlsafe(32),), public_url)
        self._passwords = passwords or Passwords()
        self._totp = totp or Totp("Gateway")
        self._default_locale = default_locale

    @property
    def mail_enabled(self) -> bool:
        return self._outbox.enabled

    def now(self) -> datetime:
        return now_of(self._clock)

    # --- creating and inviting --------------------------------------------------------------

    async def add(self, email: str, role: Role | str, *, name: str = "", actor: str) -> Invitation:
        """A new account (no password yet) and its invitation link, to show once."""
        return await self._create(email, role, name=name, actor=actor, locale=None, send=False)

    async def invite(
        self, email: str, role: Role | str, *, name: str = "", actor: str, locale: str
    ) -> Invitation:
        """:meth:`add`, and the link emailed to the address (built when it is sent)."""
        return await self._create(email, role, name=name, actor=actor, locale=locale, send=True)

    async def _create(
        self,
        email: str,
        role: Role | str,
        *,
        name: str,
        actor: str,
        locale: str | None,
        send: bool,
    ) -> Invitation:
        errors: dict[str, str] = {}
        address, role_, clean = "", Role.VIEWER, ""
        try:
            address = _email(email)
        except ValidationFailed as exc:
            errors.update(exc.errors)
        try:
            role_ = _role(role)
        except ValidationFailed as exc:
            errors.update(exc.errors)
        try:
            clean = clean_name(name)
        except ValidationFailed as exc:
            errors.update(exc.errors)
        if errors:
            raise ValidationFailed(errors)
        now = self.now()
        account_id = new_account_id()
        try:
            async with self._db.write() as session:
                exists = (
                    await session.execute(sa.select(Account.id).where(Account.email == address))
                ).scalar_one_or_none()
                if exists is not None:
                    raise _exists()
                account = Account(
                    id=account_id,
                    email=address,
                    name=clean,
                    role=role_.value,
                    password_hash=None,
                    locale=locale,
                    created_at=now,
                    created_by=actor[:100],
                )
                session.add(account)
                await session.flush()
                row_id, expires_at, outbox_id = await self._issue(
                    session, account, "invite", actor=actor, now=now, send=send, locale=locale
                )
                audit_console(
                    session,
                    at=now,
                    action="account.invited" if send else "account.created",
                    actor=actor,
                    detail=f"{address} ({account_id}) as {role_.value}",
                )
                view = view_of(account)
        except IntegrityError:
            raise _exists() from None  # the same address added twice at once
        emailed = await self._send(outbox_id)
        return Invitation(view, self._links.url("invite", row_id), expires_at, "invite", emailed)

    async def _issue(
        self,
        session: AsyncSession,
        account: Account,
        purpose: Purpose,
        *,
        actor: str,
        now: datetime,
        send: bool,
        locale: str | None,
    ) -> tuple[str, datetime, str | None]:
        """A token row (and its outbox row when ``send``): (row id, expiry, outbox row id)."""
        row_id = new_token_row_id()
        expires_at = now + (INVITATION_VALID_FOR if purpose == "invite" else RESET_VALID_FOR)
        session.add(
            AccountToken(
                id=row_id,
                account_id=account.id,
                purpose=purpose,
                email=account.email,
                created_at=now,
                created_by=actor[:100],
                expires_at=expires_at,
            )
        )
        await session.flush()
        outbox_id = None
        if send and self._outbox.enabled:
            kind = _KINDS[purpose]
            await self._outbox.add(
                session,
                kind=kind,
                subject=row_id,
                recipient=account.email,
                locale=locale or account.locale or self._default_locale,
                # The row id, never the token: the composer signs it again when it sends.
                payload={"token_id": row_id, "actor": actor},
            )
            outbox_id = (
                await session.execute(_OUTBOX_ROW, {"kind": kind.value, "subject": row_id})
            ).scalar_one()
        return row_id, expires_at, outbox_id

    async def _send(self, outbox_id: str | None) -> bool:
        if outbox_id is None:
            return False
        delivery = await self._outbox.send_one(outbox_id)
        # None: the periodic sender has it (it was due at once); it goes or is retried.
        return delivery is None or delivery.outcome in ("sent", "retry")

    # --- set-password links -----------------------------------------------------------------

    async def inspect(self, token: str) -> LinkInfo:
        """What a link is for, if it can still be used (:class:`AccountLinkInvalid`)."""
        row, account = await self._link(token)
        return LinkInfo(row.purpose, row.email, account.name, utc(row.expires_at))  # type: ignore[arg-type]

    async def _link(self, token: str) -> tuple[AccountToken, Account]:
        row_id = self._links.row_id(token)
        if row_id is None:
            raise AccountLinkInvalid("unknown")
        async with self._db.read() as session:
            found = (
                await session.execute(
                    sa.select(AccountToken, Account)
                    .join(Account, Account.id == AccountToken.account_id)
                    .where(AccountToken.id == row_id)
                )
            ).one_or_none()
        if found is None:
            raise AccountLinkInvalid("unknown")
        row, account = found[0], found[1]
        self._check_link(row, account)
        return row, account

    def _check_link(self, row: AccountToken, account: Account) -> None:
        if row.used_at is not None:
            raise AccountLinkInvalid("used")
        if utc(row.expires_at) <= self.now():
            raise AccountLinkInvalid("expired")
        if account.disabled_at is not None:
            raise AccountLinkInvalid("disabled")
        if row.email != account.email:
            raise AccountLinkInvalid("unknown")  # issued to another address

    async def accept(self, token: str, password: str) -> AccountView:
        """Set the password through an invitation or reset link (once). Ends the account's
        sessions. :class:`AccountLinkInvalid`, or ValidationFailed (``password``)."""
        if len(password) > PASSWORD_MAX_LENGTH:
            problem = password_problem(password)
            raise ValidationFailed({"password": str(problem)})
        row, account = await self._link(token)
        problem = password_problem(password, email=account.email)
        if problem is not None:
            raise ValidationFailed({"password": problem})
        new_hash = await self._passwords.hash(password)
        now = self.now()
        async with self._db.write() as session:
            taken = await session.execute(
                sa.update(AccountToken)
                .where(
                    AccountToken.id == row.id,
                    AccountToken.used_at.is_(None),
                    AccountToken.expires_at > now,
                )
                .values(used_at=now)
            )
            if not getattr(taken, "rowcount", 0):
                raise AccountLinkInvalid("used")
            fresh = (
                await session.execute(
                    sa.select(Account).where(Account.id == account.id).with_for_update()
                )
            ).scalar_one()
            self._check_link(row, fresh)
            fresh.password_hash = new_hash
            fresh.password_changed_at = now
            # Every other link of the account is void now.
            await session.execute(
                sa.update(AccountToken)
                .where(AccountToken.account_id == fresh.id, AccountToken.used_at.is_(None))
                .values(used_at=now)
            )
            await end_sessions(session, fresh.id, now=now, reason="password_changed")
            audit_console(
                session,
                at=now,
                action="account.invitation_accepted"
                if row.purpose == "invite"
                else "account.password_reset",
                actor=f"admin:{fresh.email}",
                detail=f"account {fresh.id}",
            )
            return view_of(fresh)

    async def reset(
        self, email_or_id: str, *, actor: str, send: bool, locale: str | None = None
    ) -> Invitation:
        """A password reset link for the account (printed by the CLI, or emailed). The
        current password keeps working until the link is used. An account that never set a
        password (its invitation lost or expired) gets a fresh invitation instead (72 h, the
        invitation's wording)."""
        now = self.now()
        async with self._db.write() as session:
            account = await self._find(session, email_or_id, lock=True)
            if account.disabled_at is not None:
                raise AccountDisabled
            purpose: Purpose = "invite" if account.password_hash is None else "reset"
            row_id, expires_at, outbox_id = await self._issue(
                session, account, purpose, actor=actor, now=now, send=send, locale=locale
            )
            audit_console(
                session,
                at=now,
                action="account.reset_issued" if purpose == "reset" else "account.reinvited",
                actor=actor,
                detail=f"account {account.id}" + (" (emailed)" if send else ""),
            )
            view = view_of(account)
        emailed = await self._send(outbox_id)
        return Invitation(view, self._links.url(purpose, row_id), expires_at, purpose, emailed)

    # --- reading ----------------------------------------------------------------------------

    async def list(self) -> list[AccountView]:
        async with self._db.read() as session:
            rows = (await session.execute(sa.select(Account).order_by(Account.email))).scalars()
            return [view_of(a) for a in rows]

    async def get(self, account_id: str) -> AccountView:
        async with self._db.read() as session:
            return view_of(await self._find(session, account_id))

    async def find(self, email_or_id: str) -> AccountView:
        """By id (``ac_…``) or email address; NotFound."""
        return await self.get(email_or_id)

    async def _find(
        self, session: AsyncSession, email_or_id: str, *, lock: bool = False
    ) -> Account:
        key = email_or_id.strip()
        if len(key) > 320 or not key:
            raise NotFound(key[:80])
        where = Account.id == key if key.startswith("ac_") else Account.email == key.lower()
        statement = sa.select(Account).where(where)
        if lock:
            statement = statement.with_for_update()
        account = (await session.execute(statement)).scalar_one_or_none()
        if account is None:
            raise NotFound(key[:80])
        return account

    # --- changing ---------------------------------------------------------------------------

    async def _active_admins(self, session: AsyncSession) -> int:
        """Every active admin's row, locked in one order (PostgreSQL): who decides about the
        last admin decides alone."""
        ids = (
            await session.execute(
                sa.select(Account.id)
                .where(Account.role == Role.ADMIN.value, Account.disabled_at.is_(None))
                .order_by(Account.id)
                .with_for_update()
            )
        ).scalars()
        return len(list(ids))

    async def disable(self, account_id: str, *, actor: str) -> AccountView:
        """Disable the account and end its sessions at once (never the last active admin)."""
        now = self.now()
        async with self._db.write() as session:
            admins = await self._active_admins(session)
            account = await self._find(session, account_id, lock=True)
            if account.disabled_at is None:
                if would_leave_no_admin(
                    role_now=Role(account.role), role_after=None, active_admins=admins
                ):
                    raise LastAdmin
                account.disabled_at = now
                account.disabled_by = actor[:100]
                ended = await end_sessions(session, account.id, now=now, reason="disabled")
                audit_console(
                    session,
                    at=now,
                    action="account.disabled",
                    actor=actor,
                    detail=f"{account.email} ({account.id}); {ended} session(s) ended",
                )
            return view_of(account)

    async def enable(self, account_id: str, *, actor: str) -> AccountView:
        now = self.now()
        async with self._db.write() as session:
            account = await self._find(session, account_id, lock=True)
            if account.disabled_at is not None:
                account.disabled_at = None
                account.disabled_by = None
                audit_console(
                    session,
                    at=now,
                    action="account.enabled",
                    actor=actor,
                    detail=f"{account.email} ({account.id})",
                )
            return view_of(account)

    async def set_role(self, account_id: str, role: Role | str, *, actor: str) -> AccountView:
        """Change the account's role (never demote the last active admin). It applies to the
        account's sessions at their next request."""
        new_role = _role(role)
        now = self.now()
        async with self._db.write() as session:
            admins = await self._active_admins(session)
            account = await self._find(session, account_id, lock=True)
            old = Role(account.role)
            if old is not new_role:
                if account.disabled_at is None and would_leave_no_admin(
                    role_now=old, role_after=new_role, active_admins=admins
                ):
                    raise LastAdmin
                account.role = new_role.value
                audit_console(
                    session,
                    at=now,
                    action="account.role_changed",
                    actor=actor,
                    detail=f"{account.email} ({account.id}): {old.value} -> {new_role.value}",
                )
            return view_of(account)

    async def set_locale(self, account_id: str, locale: str | None, *, actor: str) -> AccountView:
        """The console's language for the account (None: the browser's)."""
        if locale is not None and (len(locale) > 16 or not locale.replace("-", "").isalnum()):
            raise ValidationFailed({"locale": Text("not a language")})
        async with self._db.write() as session:
            account = await self._find(session, account_id, lock=True)
            if account.locale != locale:
                audit_console(
                    session,
                    at=self.now(),
                    action="account.language_changed",
                    actor=actor,
                    detail=f"account {account.id}: {account.locale or '-'} -> {locale or '-'}",
                )
                account.locale = locale
            return view_of(account)

    async def check_password(self, account_id: str, password: str) -> bool:
        """Whether ``password`` is the account's (asked again before a sensitive change, such
        as turning the second factor off). Bounded like a login."""
        if not password or len(password) > PASSWORD_MAX_LENGTH:
            return False
        async with self._db.read() as session:
            account = await self._find(session, account_id)
        if account.disabled_at is not None:
            return False
        return await self._passwords.verify(account.password_hash, password)

    async def change_password(
        self, account_id: str, current: str, new: str, *, keep_session: str | None = None
    ) -> None:
        """Change the password, knowing the current one. Ends the account's other sessions
        (``keep_session``: the asking session's id, which stays; without it every one ends).
        ValidationFailed: ``current`` wrong, or ``new`` not acceptable."""
        if len(current) > PASSWORD_MAX_LENGTH:
            raise ValidationFailed({"current": Text("the current password is not right")})
        if len(new) > PASSWORD_MAX_LENGTH:
            raise ValidationFailed({"new": str(password_problem(new))})
        async with self._db.read() as session:
            account = await self._find(session, account_id)
        if account.disabled_at is not None or not await self._passwords.verify(
            account.password_hash, current
        ):
            raise ValidationFailed({"current": Text("the current password is not right")})
        problem = password_problem(new, email=account.email)
        if problem is not None:
            raise ValidationFailed({"new": problem})
        new_hash = await self._passwords.hash(new)
        now = self.now()
        async with self._db.write() as session:
            changed = await session.execute(
                sa.update(Account)
                .where(Account.id == account.id, Account.password_hash == account.password_hash)
                .values(password_hash=new_hash, password_changed_at=now)
            )
            if not getattr(changed, "rowcount", 0):
                # Changed by someone else in the meantime: the current password was not this.
                raise ValidationFailed({"current": Text("the current password is not right")})
            ended = await end_sessions(
                session, account.id, now=now, reason="password_changed", keep=keep_session
            )
            if keep_session is not None:
                # The session that changed it stays: it proved the password just now.
                await session.execute(
                    sa.update(ConsoleSession)
                    .where(ConsoleSession.id == keep_session, ConsoleSession.ended_at.is_(None))
                    .values(created_at=now, last_seen_at=now)
                )
            audit_console(
                session,
                at=now,
                action="account.password_changed",
                actor=f"admin:{account.email}",
                detail=f"{ended} other session(s) ended",
            )

    # --- second factor ----------------------------------------------------------------------

    async def begin_totp(self, account_id: str) -> TotpEnrolment:
        """A new secret for the account's authenticator app (in force once confirmed)."""
        secret = self._totp.new_secret()
        async with self._db.write() as session:
            account = await self._find(session, account_id, lock=True)
            if account.totp_enabled_at is not None:
                raise ValidationFailed(
                    {"code": Text("two-factor authentication is already set up")}
                )
            account.totp_secret = secret
            email = account.email
        uri = self._totp.uri(secret, email)
        return TotpEnrolment(secret, uri, self._totp.qr_svg(uri))

    async def totp_enrolment(self, account_id: str) -> TotpEnrolment | None:
        """The enrolment begun and not confirmed yet (the page shown again), else None."""
        async with self._db.read() as session:
            account = await self._find(session, account_id)
        if account.totp_secret is None or account.totp_enabled_at is not None:
            return None
        uri = self._totp.uri(account.totp_secret, account.email)
        return TotpEnrolment(account.totp_secret, uri, self._totp.qr_svg(uri))

    async def confirm_totp(self, account_id: str, code: str, *, actor: str) -> RecoveryCodes:
        """Turn the second factor on with a code from the app: the recovery codes, shown once."""
        now = self.now()
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        async with self._db.write() as session:
            account = await self._find(session, account_id, lock=True)
            secret = account.totp_secret
            step = (
                self._totp.verify(secret, code, now=self._clock.now(), last_step=None)
                if secret is not None and account.totp_enabled_at is None
                else None
            )
            if step is None:
                raise ValidationFailed(
                    {"code": Text("that code is not right: type the code the app shows now")}
                )
            account.totp_enabled_at = now
            account.totp_last_step = step
            account.recovery_codes = dump_codes([_digest_code(c) for c in codes])
            audit_console(
                session,
                at=now,
                action="account.totp_enabled",
                actor=actor,
                detail=f"account {account.id}",
            )
        return codes

    async def disable_totp(self, account_id: str, *, actor: str) -> AccountView:
        now = self.now()
        async with self._db.write() as session:
            account = await self._find(session, account_id, lock=True)
            was_on = account.totp_enabled_at is not None or account.totp_secret is not None
            account.totp_secret = None
            account.totp_enabled_at = None
            account.totp_last_step = None
            account.recovery_codes = None
            if was_on:
                audit_console(
                    session,
                    at=now,
                    action="account.totp_disabled",
                    actor=actor,
                    detail=f"account {account.id}",
                )
            return view_of(account)

    async def new_recovery_codes(self, account_id: str, *, actor: str) -> RecoveryCodes:
        """Ten new recovery codes (the old ones stop working), shown once."""
        now = self.now()
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        async with self._db.write() as session:
            account = await self._find(session, account_id, lock=True)
            if account.totp_enabled_at is None:
                raise ValidationFailed({"code": Text("two-factor authentication is not set up")})
            account.recovery_codes = dump_codes([_digest_code(c) for c in codes])
            audit_console(
                session,
                at=now,
                action="account.recovery_codes",
                actor=actor,
                detail=f"account {account.id}",
            )
        return codes

    async def recovery_codes_left(self, account_id: str) -> int:
        async with self._db.read() as session:
            account = await self._find(session, account_id)
        return len(load_codes(account.recovery_codes))


def _digest_code(code: str) -> str:
    found = recovery_digest(code)
    assert found is not None
    return found


def _exists() -> ValidationFailed:
    return ValidationFailed({"email": Text("an account with this address already exists")})


__all__ = [
    "AccountDisabled",
    "AccountLinkInvalid",
    "AccountLinks",
    "AccountView",
    "Accounts",
    "Invitation",
    "LastAdmin",
    "LinkInfo",
    "TotpEnrolment",
]
