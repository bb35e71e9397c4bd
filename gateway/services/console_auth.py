"""Console logins and sessions (issue 15). STUB: the accounts helper fills it in.

Sessions are rows (``console_sessions``) behind an opaque random cookie whose SHA-256 is the
row's id; see gateway/domain/accounts.py for the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.adapters.db.engine import Database
from gateway.clock import Clock
from gateway.domain.accounts import Permission, SessionPolicy, actor, can
from gateway.domain.errors import GatewayError


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures: int = 5
    window: float = 900.0
    lockout: float = 900.0


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a console request is from: the account behind a live session."""

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


class ConsoleAuth:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        policy: SessionPolicy,
        throttle: ThrottlePolicy,
        require_2fa: bool,
    ) -> None:
        self._db = db
        self._clock = clock
        self._policy = policy
        self._throttle = throttle
        self._require_2fa = require_2fa

    async def resume(self, cookie: str) -> Principal | None:
        raise NotImplementedError
