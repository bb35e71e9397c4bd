"""What the accounts and login tests share: a database (SQLite and PostgreSQL), the injected
clock, and the services built as the wiring builds them (a cheaper argon2id for speed, except
where a test checks the real parameters)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher, Type

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import AuditEntry
from gateway.adapters.passwords import Passwords
from gateway.adapters.totp import Totp
from gateway.dev.clock import FakeClock
from gateway.domain.accounts import Role, SessionPolicy
from gateway.services.accounts import AccountLinks, Accounts
from gateway.services.console_auth import ConsoleAuth, ThrottlePolicy
from gateway.services.outbox import Outbox
from tests.outbox.support import db

__all__ = ["AccountsKit", "db", "kit", "token_of"]

PASSWORD = "long enough and rare 7"
OTHER_PASSWORD = "another rare sentence 9"
SECRET_KEYS = ("accounts-test-key-newest", "accounts-test-key-older")
PUBLIC_URL = "https://pay.riverside.example"
CLIENT = "203.0.113.7"
AGENT = "Mozilla/5.0 (test)"


def fast_passwords() -> Passwords:
    return Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID))


def token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


class AccountsKit:
    def __init__(
        self,
        db: Database,
        clock: FakeClock,
        *,
        outbox: Outbox | None = None,
        require_2fa: bool = False,
        throttle: ThrottlePolicy | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.passwords = fast_passwords()
        self.totp = Totp("Riverside Youth Basketball")
        self.links = AccountLinks(SECRET_KEYS, PUBLIC_URL)
        self.outbox = outbox or Outbox(db, clock, mailer=None, composers={}, domain="example.com")
        self.accounts = Accounts(
            db,
            clock,
            self.outbox,
            public_url=PUBLIC_URL,
            links=self.links,
            passwords=self.passwords,
            totp=self.totp,
        )
        self.auth = ConsoleAuth(
            db,
            clock,
            policy=SessionPolicy(),
            throttle=throttle or ThrottlePolicy(max_failures=5, window=900.0, lockout=900.0),
            require_2fa=require_2fa,
            passwords=self.passwords,
            totp=self.totp,
        )

    async def active(
        self, email: str, role: Role = Role.TREASURER, password: str = PASSWORD
    ) -> str:
        invitation = await self.accounts.add(email, role, actor="cli")
        await self.accounts.accept(token_of(invitation.url), password)
        return invitation.account.id

    async def login(self, email: str, password: str = PASSWORD, client: str = CLIENT) -> str:
        result = await self.auth.login(email, password, client=client, user_agent=AGENT)
        return result.cookie

    async def audit(self, action: str | None = None) -> list[AuditEntry]:
        async with self.db.read() as session:
            statement = sa.select(AuditEntry).order_by(AuditEntry.id)
            if action is not None:
                statement = statement.where(AuditEntry.action == action)
            return list((await session.execute(statement)).scalars())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def kit(db: Database, clock: FakeClock) -> AccountsKit:
    return AccountsKit(db, clock)
