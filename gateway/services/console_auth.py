"""Console logins and sessions (issue 15).

Sessions are rows (``console_sessions``) behind an opaque random cookie
(``secrets.token_urlsafe(32)``, 256 bits) whose SHA-256 is the row's id: the table alone cannot
be replayed as a cookie. Every login makes a new one (no fixation); answering the second factor
makes another and ends the first. A session ends by itself after ``SessionPolicy.idle`` without
a request or ``SessionPolicy.absolute`` after login (read with the injected clock, nothing
written: an expired row simply stops resuming), and is ended (``ended_at``, ``ended_reason``) by
a logout, "log out everywhere", the account being disabled, or its password changing (a session
made before the last password change never resumes, whatever its row says).

Logins are braked per account and per client address (``login_throttle``, shared by every
replica): ``max_failures`` failures within ``window`` lock that key for ``lockout``. A refusal
is one :class:`LoginRefused` whatever was wrong (unknown address, wrong password, disabled
account, a lockout), and an unknown address costs the same argon2 work as a wrong password.
Failed logins are audited (``login_failed``) under the account when it exists; an unknown
address is written only as the first characters of its SHA-256, and no password ever is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.adapters.db.dialects import insert_ignore
from gateway.adapters.db.engine import Database, run
from gateway.adapters.db.models import Account, ConsoleSession, LoginThrottle
from gateway.adapters.passwords import Passwords
from gateway.adapters.totp import Totp, normalize_code
from gateway.clock import Clock
from gateway.domain.accounts import (
    PASSWORD_MAX_LENGTH,
    Permission,
    SessionPolicy,
    actor,
    can,
    normalize_email,
)
from gateway.domain.errors import GatewayError
from gateway.services.audit import audit

log = logging.getLogger(__name__)

USER_AGENT_CHARS = 200
CLIENT_CHARS = 64
EMAIL_MAX_CHARS = 320
# A cookie longer than this is not one of ours: refused unread.
COOKIE_MAX_CHARS = 64
# last_seen_at is written at most this often (a page view is not worth a write each time).
TOUCH_EVERY = timedelta(minutes=1)
# A session that owes its second factor must answer it this soon after the password.
SECOND_FACTOR_WITHIN = timedelta(minutes=10)
# What an audit row's actor may hold (audit_entries.actor).
ACTOR_CHARS = 100


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures: int = 5
    window: float = 900.0
    lockout: float = 900.0


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a console request is from: the account behind a live session. ``session_id`` is
    the session row's id (the SHA-256 of the cookie), never the cookie itself."""

    account_id: str
    email: str
    name: str
    role: str
    session_id: str
    csrf_token: str
    second_factor_pending: bool = False
    must_enrol_2fa: bool = False
    locale: str | None = None

    def can(self, permission: Permission) -> bool:
        return can(self.role, permission)

    @property
    def actor(self) -> str:
        return actor(self.email)


@dataclass(frozen=True, slots=True)
class LoginResult:
    cookie: str
    second_factor_needed: bool


@dataclass(frozen=True, slots=True)
class SessionView:
    id_prefix: str  # the first characters of the id, to tell sessions apart; never the cookie
    created_at: datetime
    last_seen_at: datetime
    user_agent: str
    client: str
    current: bool
    ended_at: datetime | None
    ended_reason: str | None


class LoginRefused(GatewayError):
    """Wrong email, wrong password, disabled account or too many attempts: one answer for all.
    ``retry_after`` (seconds) when the refusal is a lockout."""

    def __init__(self, retry_after: int | None = None) -> None:
        super().__init__("login refused")
        self.retry_after = retry_after


# --- shared with gateway.services.accounts ---------------------------------------------------


def session_id_of(cookie: str) -> str:
    return hashlib.sha256(cookie.encode("utf-8", "replace")).hexdigest()


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()


def utc(value: datetime) -> datetime:
    """SQLite gives back naive datetimes (stored as UTC): make every one aware."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def audit_console(
    session: AsyncSession, *, at: datetime, action: str, actor: str, detail: str | None = None
) -> None:
    """An audit entry about no link (a login, an account change); the actor bounded to its
    column (an address may be longer)."""
    audit(
        session,
        at=at,
        link_id=None,
        action=action,
        actor=actor[:ACTOR_CHARS],
        detail=detail[:1000] if detail else None,
    )


async def end_sessions(
    session: AsyncSession,
    account_id: str,
    *,
    now: datetime,
    reason: str,
    keep: str | None = None,
) -> int:
    """End every live session of an account (except ``keep``, a session id): how many."""
    t = ConsoleSession
    statement = (
        sa.update(t)
        .where(t.account_id == account_id, t.ended_at.is_(None))
        .values(ended_at=now, ended_reason=reason)
    )
    if keep is not None:
        statement = statement.where(t.id != keep)
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


def clean_user_agent(value: str) -> str:
    """A user agent fit to store and show: printable characters only, one line, bounded."""
    value = value[: USER_AGENT_CHARS * 4]
    kept = "".join(
        " " if c.isspace() else c for c in value if c.isspace() or unicodedata.category(c)[0] != "C"
    )
    return " ".join(kept.split())[:USER_AGENT_CHARS]


def clean_client(value: str) -> str:
    return "".join(c for c in value[:CLIENT_CHARS] if c.isprintable() and not c.isspace())


# Statements built once (the project's rule for run()).
_THROTTLE_ROW = insert_ignore(
    LoginThrottle.__table__,  # type: ignore[arg-type]
    index_elements=[LoginThrottle.key],  # type: ignore[list-item]
)


class ConsoleAuth:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        policy: SessionPolicy,
        throttle: ThrottlePolicy,
        require_2fa: bool,
        passwords: Passwords | None = None,
        totp: Totp | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._policy = policy
        self._throttle = throttle
        self._require_2fa = require_2fa
        self._passwords = passwords or Passwords()
        self._totp = totp or Totp("Gateway")

    @property
    def require_2fa(self) -> bool:
        return self._require_2fa

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    # --- logging in -------------------------------------------------------------------------

    async def login(
        self, email: str, password: str, *, client: str, user_agent: str
    ) -> LoginResult:
        """A new session for the account, or :class:`LoginRefused`. When the account has a
        second factor, the session only answers it (``second_factor_needed``)."""
        client = clean_client(client)
        now = self.now()
        bounded = 0 < len(email) <= EMAIL_MAX_CHARS and 0 < len(password) <= PASSWORD_MAX_LENGTH
        try:
            address = normalize_email(email) if bounded else ""
        except ValueError:
            address = ""
        account_key = "account:" + digest(address or email.strip().lower()[:EMAIL_MAX_CHARS])
        client_key = "client:" + digest(client)
        keys = (account_key, client_key)
        locked = await self._locked_for(keys, now)
        if locked is not None:
            log.info("console login refused: locked out")
            raise LoginRefused(retry_after=locked)
        account: Account | None = None
        if address:
            async with self._db.read() as session:
                account = (
                    await session.execute(sa.select(Account).where(Account.email == address))
                ).scalar_one_or_none()
        # The same argon2 work whether the account exists, has a password, or the input was
        # refused for its length (then the dummy hash, checked against a bounded string).
        stored = account.password_hash if account is not None else None
        good = await self._passwords.verify(stored, password if bounded else "-")
        if not good or account is None or account.disabled_at is not None or not bounded:
            retry_after = await self._failed(
                keys, now, account=account, address=address or email[:EMAIL_MAX_CHARS]
            )
            raise LoginRefused(retry_after=retry_after)
        assert stored is not None
        new_hash = (
            await self._passwords.hash(password) if self._passwords.needs_rehash(stored) else None
        )
        pending = account.totp_enabled_at is not None
        cookie = secrets.token_urlsafe(32)
        async with self._db.write() as session:
            # The account's failures are forgiven; the address's stay (one good password must
            # not reset a brake on guessing others').
            await session.execute(
                sa.update(LoginThrottle)
                .where(LoginThrottle.key == account_key)
                .values(failures=0, window_started_at=now, locked_until=None)
            )
            values: dict[str, object] = {}
            if new_hash is not None and account.password_hash == stored:
                values["password_hash"] = new_hash
            if not pending:
                values["last_login_at"] = now
            if values:
                await session.execute(
                    sa.update(Account).where(Account.id == account.id).values(**values)
                )
            session.add(
                ConsoleSession(
                    id=session_id_of(cookie),
                    account_id=account.id,
                    created_at=now,
                    last_seen_at=now,
                    user_agent=clean_user_agent(user_agent),
                    client=client,
                    csrf_token=secrets.token_urlsafe(32),
                    second_factor_pending=pending,
                )
            )
            audit_console(
                session,
                at=now,
                action="login_password" if pending else "login",
                actor=actor(account.email),
                detail="password right, second factor asked" if pending else "password",
            )
        return LoginResult(cookie=cookie, second_factor_needed=pending)

    async def second_factor(self, cookie: str, code: str, *, client: str) -> str:
        """Answer the second factor of a session that owes one: a TOTP code or a recovery code
        (each accepted once). The session is replaced by a new one (its cookie value is
        returned) that is fully logged in; :class:`LoginRefused` otherwise."""
        client = clean_client(client)
        now = self.now()
        if not cookie or len(cookie) > COOKIE_MAX_CHARS or len(code) > 64:
            raise LoginRefused
        old_id = session_id_of(cookie)
        async with self._db.read() as session:
            row = (
                await session.execute(
                    sa.select(ConsoleSession, Account)
                    .join(Account, Account.id == ConsoleSession.account_id)
                    .where(ConsoleSession.id == old_id)
                )
            ).one_or_none()
        if row is None:
            raise LoginRefused
        console_session, account = row[0], row[1]
        if (
            self._why_not_live(console_session, account, now) is not None
            or not console_session.second_factor_pending
            or account.totp_secret is None
            or account.totp_enabled_at is None
        ):
            raise LoginRefused
        keys = ("account:" + digest(account.email), "client:" + digest(client))
        locked = await self._locked_for(keys, now)
        if locked is not None:
            raise LoginRefused(retry_after=locked)
        step = self._totp.verify(
            account.totp_secret, code, now=self._clock.now(), last_step=account.totp_last_step
        )
        recovery = None if step is not None or normalize_code(code) else recovery_digest(code)
        new_cookie = secrets.token_urlsafe(32)
        async with self._db.write() as session:
            fresh = (
                await session.execute(
                    sa.select(Account).where(Account.id == account.id).with_for_update()
                )
            ).scalar_one()
            used = None
            if step is not None:
                # Accepted once: a second request with the same code finds the step taken.
                if fresh.totp_last_step is None or fresh.totp_last_step < step:
                    fresh.totp_last_step = step
                    used = "totp"
            elif recovery is not None:
                unused = load_codes(fresh.recovery_codes)
                if recovery in unused:
                    unused.remove(recovery)
                    fresh.recovery_codes = dump_codes(unused)
                    used = f"recovery code ({len(unused)} left)"
            failed = True
            if used is not None:
                ended = await session.execute(
                    sa.update(ConsoleSession)
                    .where(ConsoleSession.id == old_id, ConsoleSession.ended_at.is_(None))
                    .values(ended_at=now, ended_reason="second_factor")
                )
                failed = not getattr(ended, "rowcount", 0)
            if not failed:
                fresh.last_login_at = now
                session.add(
                    ConsoleSession(
                        id=session_id_of(new_cookie),
                        account_id=account.id,
                        # The absolute timeout counts from the password.
                        created_at=console_session.created_at,
                        last_seen_at=now,
                        user_agent=console_session.user_agent,
                        client=client or console_session.client,
                        csrf_token=secrets.token_urlsafe(32),
                        second_factor_pending=False,
                    )
                )
                audit_console(
                    session, at=now, action="login", actor=actor(account.email), detail=used
                )
        if failed:
            retry_after = await self._failed(keys, now, account=account, address=account.email)
            raise LoginRefused(retry_after=retry_after)
        return new_cookie

    # --- every request ----------------------------------------------------------------------

    async def resume(self, cookie: str) -> Principal | None:
        """The principal behind a cookie, or None (unknown, ended, timed out, disabled account,
        made before the last password change). ``last_seen_at`` is written at most once a
        minute."""
        if not cookie or len(cookie) > COOKIE_MAX_CHARS:
            return None
        now = self.now()
        sid = session_id_of(cookie)
        async with self._db.read() as session:
            row = (
                await session.execute(
                    sa.select(ConsoleSession, Account)
                    .join(Account, Account.id == ConsoleSession.account_id)
                    .where(ConsoleSession.id == sid)
                )
            ).one_or_none()
        if row is None:
            return None
        console_session, account = row[0], row[1]
        if self._why_not_live(console_session, account, now) is not None:
            return None
        if now - utc(console_session.last_seen_at) >= TOUCH_EVERY:
            async with self._db.write() as session:
                await session.execute(
                    sa.update(ConsoleSession)
                    .where(ConsoleSession.id == sid, ConsoleSession.ended_at.is_(None))
                    .values(last_seen_at=now)
                )
        return Principal(
            account_id=account.id,
            email=account.email,
            name=account.name,
            role=account.role,
            session_id=sid,
            csrf_token=console_session.csrf_token,
            second_factor_pending=console_session.second_factor_pending,
            must_enrol_2fa=self._require_2fa and account.totp_enabled_at is None,
            locale=account.locale,
        )

    def _why_not_live(self, s: ConsoleSession, account: Account, now: datetime) -> str | None:
        if s.ended_at is not None:
            return s.ended_reason or "ended"
        if account.disabled_at is not None:
            return "disabled"
        created = utc(s.created_at)
        if account.password_changed_at is not None and utc(account.password_changed_at) > created:
            return "password_changed"
        if s.second_factor_pending and now - created >= SECOND_FACTOR_WITHIN:
            return "expired"
        return self._policy.expired(created_at=created, last_seen_at=utc(s.last_seen_at), now=now)

    # --- logging out ------------------------------------------------------------------------

    async def logout(self, cookie: str) -> None:
        if not cookie or len(cookie) > COOKIE_MAX_CHARS:
            return
        now = self.now()
        sid = session_id_of(cookie)
        async with self._db.write() as session:
            row = (
                await session.execute(
                    sa.select(ConsoleSession.account_id, Account.email)
                    .join(Account, Account.id == ConsoleSession.account_id)
                    .where(ConsoleSession.id == sid, ConsoleSession.ended_at.is_(None))
                )
            ).one_or_none()
            if row is None:
                return
            await session.execute(
                sa.update(ConsoleSession)
                .where(ConsoleSession.id == sid)
                .values(ended_at=now, ended_reason="logout")
            )
            audit_console(session, at=now, action="logout", actor=actor(row.email))

    async def logout_everywhere(self, account_id: str, *, actor: str) -> int:
        """End every session of the account (the caller's too): how many were live."""
        now = self.now()
        async with self._db.write() as session:
            count = await end_sessions(session, account_id, now=now, reason="logout_everywhere")
            audit_console(
                session,
                at=now,
                action="logout_everywhere",
                actor=actor,
                detail=f"account {account_id}: {count} session(s) ended",
            )
        return count

    async def sessions(
        self, account_id: str, *, current: str | None = None, limit: int = 50
    ) -> list[SessionView]:
        """The account's sessions, newest first (``current``: the asking session's id). One
        that timed out shows as ended then, with the reason."""
        now = self.now()
        async with self._db.read() as session:
            rows = (
                (
                    await session.execute(
                        sa.select(ConsoleSession)
                        .where(ConsoleSession.account_id == account_id)
                        .order_by(ConsoleSession.created_at.desc(), ConsoleSession.id)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
        views = []
        for s in rows:
            ended_at = utc(s.ended_at) if s.ended_at is not None else None
            reason = s.ended_reason
            if ended_at is None:
                created, seen = utc(s.created_at), utc(s.last_seen_at)
                # Whichever came first: no request for ``idle``, or ``absolute`` since login.
                idle_end = seen + self._policy.idle
                absolute_end = created + self._policy.absolute
                if min(idle_end, absolute_end) <= now:
                    if idle_end < absolute_end:
                        ended_at, reason = idle_end, "idle"
                    else:
                        ended_at, reason = absolute_end, "expired"
            views.append(
                SessionView(
                    id_prefix=s.id[:8],
                    created_at=utc(s.created_at),
                    last_seen_at=utc(s.last_seen_at),
                    user_agent=s.user_agent,
                    client=s.client,
                    current=s.id == current,
                    ended_at=ended_at,
                    ended_reason=reason,
                )
            )
        return views

    # --- the brake --------------------------------------------------------------------------

    async def confirm_password(self, account_id: str, password: str, *, client: str) -> bool:
        """Whether ``password`` is the logged-in account's own, asked again before a sensitive
        change (a new password, turning the second factor off). Braked like a login, on the
        same keys: a session left open on a shared computer cannot be used to guess the
        password at hashing speed. :class:`LoginRefused` while locked out."""
        client = clean_client(client)
        now = self.now()
        async with self._db.read() as session:
            account = await session.get(Account, account_id)
        if account is None:
            return False
        keys = ("account:" + digest(account.email), "client:" + digest(client))
        locked = await self._locked_for(keys, now)
        if locked is not None:
            raise LoginRefused(retry_after=locked)
        bounded = 0 < len(password) <= PASSWORD_MAX_LENGTH
        good = await self._passwords.verify(account.password_hash, password if bounded else "-")
        if good and bounded and account.disabled_at is None:
            return True
        retry_after = await self._failed(keys, now, account=account, address=account.email)
        if retry_after is not None:
            raise LoginRefused(retry_after=retry_after)
        return False

    async def _locked_for(self, keys: tuple[str, ...], now: datetime) -> int | None:
        """Seconds until every key is free again, or None when none is locked."""
        async with self._db.read() as session:
            rows = (
                await session.execute(
                    sa.select(LoginThrottle.locked_until).where(LoginThrottle.key.in_(keys))
                )
            ).scalars()
            until = [utc(u) for u in rows if u is not None and utc(u) > now]
        if not until:
            return None
        return max(1, int((max(until) - now).total_seconds() + 0.999))

    async def _failed(
        self, keys: tuple[str, ...], now: datetime, *, account: Account | None, address: str
    ) -> int | None:
        """Count a failure against every key, lock those that reached the limit, audit it:
        seconds locked when this failure locked a key, else None."""
        window = timedelta(seconds=self._throttle.window)
        lockout = timedelta(seconds=self._throttle.lockout)
        locked_now = False
        async with self._db.write() as session:
            for key in sorted(keys):  # one order: two failures at once never deadlock
                await run(
                    session,
                    _THROTTLE_ROW,
                    {"key": key, "failures": 0, "window_started_at": now, "locked_until": None},
                )
                row = (
                    await session.execute(
                        sa.select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()
                    )
                ).scalar_one()
                if now - utc(row.window_started_at) >= window:
                    row.failures, row.window_started_at = 0, now
                row.failures += 1
                if row.failures >= self._throttle.max_failures:
                    # Locked; the count starts again when the lockout ends.
                    row.locked_until = now + lockout
                    row.failures, row.window_started_at = 0, now
                    locked_now = True
            if account is not None:
                who, detail = actor(account.email), f"account {account.id}"
            else:
                # Not an account: the address typed is not written, only enough of its digest
                # to see the same one tried again.
                who, detail = "anonymous", f"unknown account {digest(address.lower())[:12]}"
            audit_console(session, at=now, action="login_failed", actor=who, detail=detail)
        log.info("console login refused", extra={"locked": locked_now})
        return int(lockout.total_seconds()) if locked_now else None


# --- recovery codes (shared with gateway.services.accounts) ---------------------------------

RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_recovery_code() -> str:
    """``xxxxx-xxxxx``: 10 characters of a 31-letter alphabet (49 bits), easy to type."""
    chars = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10))
    return f"{chars[:5]}-{chars[5:]}"


def recovery_digest(code: str) -> str | None:
    """The stored form of a recovery code as typed (case, spaces and dashes ignored)."""
    if len(code) > 32:
        return None
    cleaned = "".join(c for c in code.lower() if c not in " -\t")
    if len(cleaned) != 10 or any(c not in RECOVERY_ALPHABET for c in cleaned):
        return None
    return digest("recovery:" + cleaned)


def load_codes(stored: str | None) -> list[str]:
    if not stored:
        return []
    value = json.loads(stored)
    return [str(v) for v in value] if isinstance(value, list) else []


def dump_codes(digests: list[str]) -> str:
    return json.dumps(digests)
