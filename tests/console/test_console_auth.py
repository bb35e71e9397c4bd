"""Console logins and sessions (issue 15 items 3-4), on SQLite and PostgreSQL with the injected
clock: a new session id at every login, idle and absolute timeouts, logout, the lockout per
account and per address with one answer for all, the second factor, and no password anywhere."""

from __future__ import annotations

import asyncio
import hashlib
import logging

import pyotp
import pytest
import sqlalchemy as sa

from gateway.adapters.db.models import Account, ConsoleSession, LoginThrottle
from gateway.domain.accounts import Permission, Role
from gateway.services.console_auth import LoginRefused, ThrottlePolicy, clean_user_agent
from tests.console.accounts_support import (
    AGENT,
    CLIENT,
    PASSWORD,
    AccountsKit,
    clock,
    db,
    kit,
)

__all__ = ["clock", "db", "kit"]

ANA = "ana@riverside.example"


async def session_row(kit: AccountsKit, cookie: str) -> ConsoleSession | None:
    async with kit.db.read() as session:
        return await session.get(ConsoleSession, hashlib.sha256(cookie.encode()).hexdigest())


async def test_login_makes_a_new_session_each_time_and_resume_finds_the_account(
    kit: AccountsKit,
) -> None:
    account_id = await kit.active(ANA, Role.ADMIN)
    first = await kit.login(ANA)
    second = await kit.login(" Ana@Riverside.example ")
    assert first != second and len(first) >= 43
    principal = await kit.auth.resume(first)
    assert principal is not None
    assert (principal.account_id, principal.email, principal.role) == (account_id, ANA, "admin")
    assert principal.can(Permission.MANAGE_ACCOUNTS)
    assert principal.actor == f"admin:{ANA}"
    assert not principal.second_factor_pending and not principal.must_enrol_2fa
    # The row's id is the cookie's digest; the cookie itself is stored nowhere.
    row = await session_row(kit, first)
    assert row is not None and row.id == principal.session_id and row.id != first
    assert row.user_agent == AGENT and row.client == CLIENT
    async with kit.db.read() as session:
        ids = (await session.execute(sa.select(ConsoleSession.id))).scalars().all()
    assert first not in ids and second not in ids
    assert [e.actor for e in await kit.audit("login")] == [f"admin:{ANA}"] * 2
    assert (await kit.accounts.get(account_id)).last_login_at is not None


async def test_unknown_cookie_and_garbage_resume_to_none(kit: AccountsKit) -> None:
    await kit.active(ANA)
    assert await kit.auth.resume("") is None
    assert await kit.auth.resume("x" * 10_000) is None
    assert await kit.auth.resume("not-a-session") is None


async def test_idle_and_absolute_timeouts_with_the_injected_clock(kit: AccountsKit) -> None:
    await kit.active(ANA)
    cookie = await kit.login(ANA)
    kit.clock.advance(29 * 60)
    assert await kit.auth.resume(cookie) is not None  # and last seen moves on
    kit.clock.advance(29 * 60)
    assert await kit.auth.resume(cookie) is not None
    kit.clock.advance(30 * 60)
    assert await kit.auth.resume(cookie) is None  # idle 30 min
    # Absolute: requests every 20 minutes keep it alive until 12 h after login, not after.
    cookie = await kit.login(ANA)
    for _ in range(35):
        kit.clock.advance(20 * 60)
        assert await kit.auth.resume(cookie) is not None
    kit.clock.advance(20 * 60)  # 12 h after login
    assert await kit.auth.resume(cookie) is None
    views = await kit.auth.sessions((await kit.accounts.find(ANA)).id)
    assert [v.ended_reason for v in views] == ["expired", "idle"]


async def test_last_seen_is_written_at_most_once_a_minute(kit: AccountsKit) -> None:
    await kit.active(ANA)
    cookie = await kit.login(ANA)
    row = await session_row(kit, cookie)
    assert row is not None
    logged_in_at = row.last_seen_at
    kit.clock.advance(59)
    await kit.auth.resume(cookie)
    row = await session_row(kit, cookie)
    assert row is not None and row.last_seen_at == logged_in_at
    kit.clock.advance(1)
    await kit.auth.resume(cookie)
    row = await session_row(kit, cookie)
    assert row is not None and row.last_seen_at > logged_in_at


async def test_logout_ends_the_session_a_stolen_cookie_stops_working(kit: AccountsKit) -> None:
    await kit.active(ANA)
    cookie = await kit.login(ANA)
    other = await kit.login(ANA)
    await kit.auth.logout(cookie)
    assert await kit.auth.resume(cookie) is None
    assert await kit.auth.resume(other) is not None
    await kit.auth.logout(cookie)  # again: nothing more
    row = await session_row(kit, cookie)
    assert row is not None and row.ended_reason == "logout"
    assert len(await kit.audit("logout")) == 1


async def test_logout_everywhere(kit: AccountsKit) -> None:
    account_id = await kit.active(ANA)
    cookies = [await kit.login(ANA) for _ in range(3)]
    assert await kit.auth.logout_everywhere(account_id, actor=f"admin:{ANA}") == 3
    for cookie in cookies:
        assert await kit.auth.resume(cookie) is None
    views = await kit.auth.sessions(account_id)
    assert {v.ended_reason for v in views} == {"logout_everywhere"}


async def test_wrong_password_unknown_email_and_invited_account_get_one_answer(
    kit: AccountsKit,
) -> None:
    await kit.active(ANA)
    await kit.accounts.add("new@riverside.example", Role.VIEWER, actor="cli")  # no password
    for email, password in [
        (ANA, "wrong password here"),
        ("nobody@riverside.example", PASSWORD),
        ("new@riverside.example", PASSWORD),
        ("not an email", PASSWORD),
        (ANA, ""),
        (ANA, "x" * 100_000),
        ("a" * 100_000, PASSWORD),
    ]:
        with pytest.raises(LoginRefused) as refused:
            await kit.auth.login(
                email, password, client=f"198.51.100.{len(email) % 200}", user_agent=""
            )
        assert str(refused.value) == "login refused"


async def test_failed_logins_are_audited_without_password_or_unknown_address(
    kit: AccountsKit, caplog: pytest.LogCaptureFixture
) -> None:
    account_id = await kit.active(ANA)
    caplog.set_level(logging.DEBUG, logger="gateway")
    secret = "my wrong but secret guess"
    for email in (ANA, "ghost@riverside.example"):
        with pytest.raises(LoginRefused):
            await kit.auth.login(email, secret, client=CLIENT, user_agent=AGENT)
    failed = await kit.audit("login_failed")
    assert [e.actor for e in failed] == [f"admin:{ANA}", "anonymous"]
    assert failed[0].detail == f"account {account_id}"
    assert failed[0].link_id is None
    everything = " ".join(f"{e.actor} {e.detail}" for e in await kit.audit()) + caplog.text
    assert secret not in everything and "ghost" not in everything
    assert PASSWORD not in caplog.text


async def test_lockout_per_account_engages_answers_the_same_and_ends(kit: AccountsKit) -> None:
    await kit.active(ANA)
    for i in range(4):  # from different addresses: the account's count alone
        with pytest.raises(LoginRefused) as refused:
            await kit.auth.login(ANA, "wrong password", client=f"192.0.2.{i}", user_agent="")
        assert refused.value.retry_after is None
    with pytest.raises(LoginRefused) as refused:
        await kit.auth.login(ANA, "wrong password", client="192.0.2.9", user_agent="")
    assert refused.value.retry_after == 900
    # Now even the right password, from a fresh address, is refused the same way.
    kit.clock.advance(60)
    with pytest.raises(LoginRefused) as refused:
        await kit.login(ANA, client="192.0.2.200")
    assert refused.value.retry_after == 840
    # Another account from the same addresses is not locked.
    await kit.active("bea@riverside.example")
    assert await kit.login("bea@riverside.example", client="192.0.2.9")
    kit.clock.advance(840)
    assert await kit.auth.resume(await kit.login(ANA, client="192.0.2.200")) is not None


async def test_lockout_per_address_engages_across_accounts_and_ends(kit: AccountsKit) -> None:
    await kit.active(ANA)
    for i in range(5):
        with pytest.raises(LoginRefused):
            await kit.auth.login(
                f"guess{i}@riverside.example", PASSWORD, client=CLIENT, user_agent=""
            )
    with pytest.raises(LoginRefused) as refused:
        await kit.login(ANA, client=CLIENT)  # the right password, from the locked address
    assert refused.value.retry_after == 900
    assert await kit.login(ANA, client="198.51.100.1")  # elsewhere: fine
    async with kit.db.read() as session:
        keys = (await session.execute(sa.select(LoginThrottle.key))).scalars().all()
    assert all(CLIENT not in k and "guess" not in k for k in keys)
    kit.clock.advance(900)
    assert await kit.login(ANA, client=CLIENT)


async def test_failures_outside_the_window_do_not_add_up(db: object, clock: object) -> None:
    kit = AccountsKit(db, clock, throttle=ThrottlePolicy(max_failures=3, window=60, lockout=600))  # type: ignore[arg-type]
    await kit.active(ANA)
    for _ in range(6):
        with pytest.raises(LoginRefused) as refused:
            await kit.auth.login(ANA, "wrong password", client=CLIENT, user_agent="")
        assert refused.value.retry_after is None
        kit.clock.advance(31)  # two failures per window at most
    assert await kit.login(ANA)


async def test_a_disabled_accounts_sessions_end_at_once_and_it_cannot_log_in(
    kit: AccountsKit,
) -> None:
    await kit.active("boss@riverside.example", Role.ADMIN)
    account_id = await kit.active(ANA)
    cookies = [await kit.login(ANA) for _ in range(2)]
    await kit.accounts.disable(account_id, actor="admin:boss@riverside.example")
    for cookie in cookies:
        assert await kit.auth.resume(cookie) is None
    with pytest.raises(LoginRefused):
        await kit.login(ANA)
    await kit.accounts.enable(account_id, actor="admin:boss@riverside.example")
    for cookie in cookies:
        assert await kit.auth.resume(cookie) is None  # ended, not paused
    assert await kit.auth.resume(await kit.login(ANA)) is not None


async def test_password_change_ends_other_sessions_and_keeps_the_asking_one(
    kit: AccountsKit,
) -> None:
    account_id = await kit.active(ANA)
    asking, other = await kit.login(ANA), await kit.login(ANA)
    principal = await kit.auth.resume(asking)
    assert principal is not None
    kit.clock.advance(5)
    await kit.accounts.change_password(
        account_id, PASSWORD, "a brand new sentence 42", keep_session=principal.session_id
    )
    assert await kit.auth.resume(other) is None
    assert await kit.auth.resume(asking) is not None
    with pytest.raises(LoginRefused):
        await kit.login(ANA)
    await kit.login(ANA, "a brand new sentence 42")


async def test_sessions_made_before_the_password_changed_never_resume(kit: AccountsKit) -> None:
    account_id = await kit.active(ANA)
    cookie = await kit.login(ANA)
    kit.clock.advance(5)
    # The row left live (as if written by an older version): the account's time decides.
    async with kit.db.write() as session:
        await session.execute(
            sa.update(Account)
            .where(Account.id == account_id)
            .values(password_changed_at=kit.accounts.now())
        )
    assert await kit.auth.resume(cookie) is None


async def test_require_2fa_marks_the_principal_until_enrolled(db: object, clock: object) -> None:
    kit = AccountsKit(db, clock, require_2fa=True)  # type: ignore[arg-type]
    account_id = await kit.active(ANA)
    principal = await kit.auth.resume(await kit.login(ANA))
    assert principal is not None and principal.must_enrol_2fa
    enrolment = await kit.accounts.begin_totp(account_id)
    code = pyotp.TOTP(enrolment.secret).at(int(kit.clock.now()))
    await kit.accounts.confirm_totp(account_id, code, actor=f"admin:{ANA}")
    result = await kit.auth.login(ANA, PASSWORD, client=CLIENT, user_agent=AGENT)
    principal = await kit.auth.resume(result.cookie)
    assert principal is not None and not principal.must_enrol_2fa
    assert principal.second_factor_pending and result.second_factor_needed


async def stored_secret(kit: AccountsKit, account_id: str) -> str:
    async with kit.db.read() as session:
        account = await session.get(Account, account_id)
    assert account is not None and account.totp_secret is not None
    return account.totp_secret


async def test_second_factor_totp_rotates_the_session_and_refuses_a_replayed_code(
    kit: AccountsKit,
) -> None:
    account_id = await kit.active(ANA)
    await kit.accounts.begin_totp(account_id)
    secret = await stored_secret(kit, account_id)  # the app's copy, as pyotp computes it
    codes = await kit.accounts.confirm_totp(
        account_id, pyotp.TOTP(secret).at(int(kit.clock.now())), actor=f"admin:{ANA}"
    )
    assert len(codes) == 10
    kit.clock.advance(30)
    result = await kit.auth.login(ANA, PASSWORD, client=CLIENT, user_agent=AGENT)
    assert result.second_factor_needed
    pending = await kit.auth.resume(result.cookie)
    assert pending is not None and pending.second_factor_pending
    with pytest.raises(LoginRefused):
        await kit.auth.second_factor(result.cookie, "000000", client=CLIENT)
    code = pyotp.TOTP(secret).at(int(kit.clock.now()))
    cookie = await kit.auth.second_factor(result.cookie, code, client=CLIENT)
    assert cookie != result.cookie
    assert await kit.auth.resume(result.cookie) is None  # the pre-2FA session is over
    principal = await kit.auth.resume(cookie)
    assert principal is not None and not principal.second_factor_pending
    # The same code again, within its window, on a fresh login: refused.
    again = await kit.auth.login(ANA, PASSWORD, client=CLIENT, user_agent=AGENT)
    with pytest.raises(LoginRefused):
        await kit.auth.second_factor(again.cookie, code, client=CLIENT)
    kit.clock.advance(30)
    await kit.auth.second_factor(
        again.cookie, pyotp.TOTP(secret).at(int(kit.clock.now())), client=CLIENT
    )


async def test_a_recovery_code_works_once(kit: AccountsKit) -> None:
    account_id = await kit.active(ANA)
    await kit.accounts.begin_totp(account_id)
    secret = await stored_secret(kit, account_id)
    codes = await kit.accounts.confirm_totp(
        account_id, pyotp.TOTP(secret).at(int(kit.clock.now())), actor=f"admin:{ANA}"
    )
    async with kit.db.read() as session:
        account = await session.get(Account, account_id)
    assert account is not None and account.recovery_codes is not None
    assert all(code not in account.recovery_codes for code in codes)  # digests only
    first = await kit.auth.login(ANA, PASSWORD, client=CLIENT, user_agent=AGENT)
    assert await kit.auth.second_factor(first.cookie, codes[3].upper(), client=CLIENT)
    second = await kit.auth.login(ANA, PASSWORD, client=CLIENT, user_agent=AGENT)
    with pytest.raises(LoginRefused):
        await kit.auth.second_factor(second.cookie, codes[3], client=CLIENT)
    assert await kit.auth.second_factor(second.cookie, codes[4], client=CLIENT)
    assert await kit.accounts.recovery_codes_left(account_id) == 8


async def test_a_pending_session_cannot_answer_without_a_second_factor_enrolled(
    kit: AccountsKit,
) -> None:
    await kit.active(ANA)
    cookie = await kit.login(ANA)
    with pytest.raises(LoginRefused):
        await kit.auth.second_factor(cookie, "123456", client=CLIENT)


def test_user_agent_is_bounded_and_sanitised() -> None:
    assert clean_user_agent("Mozilla/5.0\r\nX-Evil: 1\x00\x1b[31m") == "Mozilla/5.0 X-Evil: 1[31m"
    assert len(clean_user_agent("A" * 100_000)) == 200


async def enrolled(kit: AccountsKit) -> tuple[str, str]:
    """An account with TOTP on: (its id, the app's secret)."""
    account_id = await kit.active(ANA)
    await kit.accounts.begin_totp(account_id)
    secret = await stored_secret(kit, account_id)
    await kit.accounts.confirm_totp(
        account_id, pyotp.TOTP(secret).at(int(kit.clock.now())), actor=f"admin:{ANA}"
    )
    kit.clock.advance(30)
    return account_id, secret


async def test_wrong_second_factor_codes_lock_out_like_passwords(kit: AccountsKit) -> None:
    _, secret = await enrolled(kit)
    login = await kit.auth.login(ANA, PASSWORD, client=CLIENT, user_agent=AGENT)
    for _ in range(4):
        with pytest.raises(LoginRefused) as refused:
            await kit.auth.second_factor(login.cookie, "000000", client=CLIENT)
        assert refused.value.retry_after is None
    with pytest.raises(LoginRefused) as refused:
        await kit.auth.second_factor(login.cookie, "000000", client=CLIENT)
    assert refused.value.retry_after == 900
    with pytest.raises(LoginRefused):  # the right code, during the lockout
        await kit.auth.second_factor(
            login.cookie, pyotp.TOTP(secret).at(int(kit.clock.now())), client=CLIENT
        )
    assert len(await kit.audit("login_failed")) == 5


async def test_a_second_factor_is_owed_within_ten_minutes(kit: AccountsKit) -> None:
    _, secret = await enrolled(kit)
    login = await kit.auth.login(ANA, PASSWORD, client=CLIENT, user_agent=AGENT)
    kit.clock.advance(9 * 60)
    assert await kit.auth.resume(login.cookie) is not None
    kit.clock.advance(60)
    assert await kit.auth.resume(login.cookie) is None
    with pytest.raises(LoginRefused):
        await kit.auth.second_factor(
            login.cookie, pyotp.TOTP(secret).at(int(kit.clock.now())), client=CLIENT
        )


async def test_one_code_sent_twice_at_once_logs_in_once(kit: AccountsKit) -> None:
    _, secret = await enrolled(kit)
    first = await kit.auth.login(ANA, PASSWORD, client=CLIENT, user_agent=AGENT)
    second = await kit.auth.login(ANA, PASSWORD, client=CLIENT, user_agent=AGENT)
    code = pyotp.TOTP(secret).at(int(kit.clock.now()))
    results = await asyncio.gather(
        kit.auth.second_factor(first.cookie, code, client=CLIENT),
        kit.auth.second_factor(second.cookie, code, client=CLIENT),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["LoginRefused", "str"]
