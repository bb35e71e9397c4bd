"""The console's auth pages (issue 15 items 1-5 and 11): logging in and out, the lockout, the
second factor (set up and used, with codes pyotp computes from the secret the page shows), the
account page (password, language, sessions, log out everywhere), set-password links, and the
issue's security tests: cross-site and CSRF-less POSTs refused, a stolen cookie dead after
logout and the timeouts, a disabled account's sessions ended at once, no password in clear in
the database or the logs. On SQLite and PostgreSQL, time moved with the FakeClock."""

from __future__ import annotations

import html as htmllib
import logging
import re
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from aiohttp import ClientResponse
from yarl import URL

from gateway.adapters.db.models import Account, AccountToken, AuditEntry, ConsoleSession
from gateway.domain.accounts import Role
from gateway.domain.locales import OFFERED
from gateway.logs import _QUIET as QUIET_LOGGERS
from gateway.web.console.base import COOKIE
from gateway.web.keys import ACCOUNTS, DATABASE
from tests.admin.support import start_admin_harness
from tests.console.support import (
    PASSWORD,
    ConsoleClient,
    ConsoleHarness,
    csrf_of,
    token_of,
)

NEW_PASSWORD = "a different rare phrase 42"


# --- helpers ----------------------------------------------------------------------------------


def cookie_of(person: ConsoleClient) -> str:
    for morsel in person.client.session.cookie_jar:
        if morsel.key == COOKIE:
            return morsel.value
    raise AssertionError("no console cookie")


async def thief(console: ConsoleHarness, cookie: str) -> Any:
    """Another client that only has the cookie (copied out of a victim's browser)."""
    client = await console.new_client()
    client.session.cookie_jar.update_cookies({COOKIE: cookie})
    return client


async def logged_in(client: Any, path: str = "/admin/account") -> bool:
    response = await client.get(path, allow_redirects=False)
    if response.status == 200:
        return True
    assert response.status == 303, response.status
    assert response.headers["Location"].startswith("/admin/login"), response.headers
    return False


async def login_post(client: Any, email: str, password: str, **data: str) -> ClientResponse:
    response: ClientResponse = await client.post(
        "/admin/login",
        data={"email": email, "password": password, **data},
        allow_redirects=False,
    )
    return response


def gateway_logs(caplog: pytest.LogCaptureFixture) -> str:
    """Every log record the gateway writes, in full. The libraries gateway.logs silences (SQL
    parameters at DEBUG, the test server's access lines: ``gateway serve`` runs without an
    access log) are left out: they never reach a deployed gateway's output."""
    kept = [r for r in caplog.records if not r.name.startswith(_SILENCED)]
    return "\n".join(f"{r.getMessage()} {r.__dict__!r}" for r in kept)


_SILENCED = tuple(QUIET_LOGGERS)


def text_of(html: str) -> str:
    """The page's text, tags dropped and whitespace folded (for sentences across lines)."""
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def secret_on(html: str) -> str:
    found = re.search(r'id="secret">([A-Z2-7 ]+)<', html)
    assert found, "no secret on the page"
    return found.group(1).replace(" ", "")


def recovery_codes_on(html: str) -> list[str]:
    block = re.search(r'<ol class="codes mono">(.*?)</ol>', html, re.S)
    assert block, "no recovery codes on the page"
    return re.findall(r"<li>([a-z0-9-]+)</li>", block.group(1))


async def enrol(console: ConsoleHarness, person: ConsoleClient) -> tuple[str, list[str]]:
    """Set up the second factor through the pages: (secret, recovery codes)."""
    response = await person.post("/account/2fa", {"action": "begin"})
    assert response.status == 200, await response.text()
    page = await response.text()
    assert "<svg" in page  # the QR code, inline
    secret = secret_on(page)
    code = pyotp.TOTP(secret).at(console.clock.now())
    response = await person.post("/account/2fa", {"action": "confirm", "code": code})
    assert response.status == 200, await response.text()
    codes = recovery_codes_on(await response.text())
    assert len(codes) == 10 and len(set(codes)) == 10
    return secret, codes


async def account_row(console: ConsoleHarness, email: str) -> Account:
    async with console.app[DATABASE].read() as session:
        row: Account = (
            await session.execute(sa.select(Account).where(Account.email == email))
        ).scalar_one()
        return row


# --- logging in -------------------------------------------------------------------------------


async def test_login_page_answers_a_wrong_password_and_an_unknown_address_alike(
    console: ConsoleHarness,
) -> None:
    await console.add_account("sam@riverside.example")
    client = await console.new_client()
    page = await (await client.get("/admin/login")).text()
    assert "Forgot your password?" in page and "gateway users reset" in page
    wrong = await login_post(client, "sam@riverside.example", "not the password at all")
    unknown = await login_post(client, "nobody@riverside.example", PASSWORD)
    assert wrong.status == unknown.status == 400
    assert COOKIE not in wrong.cookies and COOKIE not in unknown.cookies

    def refusal(html: str) -> str:
        found = re.search(r'<p class="error" id="email-error">(.*?)</p>', html, re.S)
        assert found
        return found.group(1)

    assert refusal(await wrong.text()) == refusal(await unknown.text())
    # Empty fields: each named next to its field, nothing tried.
    empty = await login_post(client, "", "")
    body = await empty.text()
    assert empty.status == 400
    assert "Enter your email address" in body and "Enter your password" in body


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/admin/links?status=paid", "/admin/links?status=paid"),
        ("//evil.example/admin/", "/admin/"),
        ("https://evil.example/admin/", "/admin/"),
        ("/admin/\\evil.example", "/admin/"),
        ("/pay/anything", "/admin/"),
    ],
)
async def test_login_goes_to_next_only_within_the_console(
    console: ConsoleHarness, given: str, expected: str
) -> None:
    await console.add_account("sam@riverside.example")
    client = await console.new_client()
    page = await (await client.get("/admin/login", params={"next": given})).text()
    assert 'name="next"' in page
    response = await login_post(client, "sam@riverside.example", PASSWORD, next=given)
    assert response.status == 303
    assert response.headers["Location"] == expected


async def test_a_page_asked_for_before_login_is_reached_after_it(console: ConsoleHarness) -> None:
    await console.add_account("sam@riverside.example")
    client = await console.new_client()
    response = await client.get("/admin/account", allow_redirects=False)
    assert response.status == 303
    login_url = response.headers["Location"]
    assert login_url.startswith("/admin/login?next=")
    page = await (await client.get(login_url)).text()
    assert 'value="/admin/account"' in page
    response = await login_post(client, "sam@riverside.example", PASSWORD, next="/admin/account")
    assert response.headers["Location"] == "/admin/account"


async def test_lockout_after_repeated_failures_then_free_again(console: ConsoleHarness) -> None:
    await console.add_account("sam@riverside.example")
    client = await console.new_client()
    statuses = []
    for _ in range(5):
        response = await login_post(client, "sam@riverside.example", "wrong guess number")
        statuses.append(response.status)
    assert statuses == [400, 400, 400, 400, 429]
    # Locked: even the right password is refused, with the same sentence and a Retry-After.
    response = await login_post(client, "sam@riverside.example", PASSWORD)
    assert response.status == 429
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= 900
    body = text_of(await response.text())
    assert "Too many attempts" in body
    assert "The email address or the password is wrong" in body
    assert COOKIE not in response.cookies
    console.clock.advance(retry_after + 1)
    response = await login_post(client, "sam@riverside.example", PASSWORD)
    assert response.status == 303


async def test_login_as_a_disabled_account_is_refused(
    console: ConsoleHarness, admin: ConsoleClient
) -> None:
    account_id = await console.add_account("sam@riverside.example")
    response = await admin.post(f"/accounts/{account_id}/disable")
    assert response.status == 303
    client = await console.new_client()
    response = await login_post(client, "sam@riverside.example", PASSWORD)
    assert response.status == 400
    assert COOKIE not in response.cookies


# --- the security tests ---------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
    ],
)
async def test_a_cross_site_post_is_refused_and_changes_nothing(
    console: ConsoleHarness, treasurer: ConsoleClient, headers: dict[str, str]
) -> None:
    response = await treasurer.post("/account/language", {"locale": "es"}, headers=headers)
    assert response.status == 403
    assert "another site" in await response.text()
    assert (await account_row(console, treasurer.email)).locale is None
    # A cross-site "log out everywhere" ends nothing either.
    response = await treasurer.post("/account/sessions/end", headers=headers)
    assert response.status == 403
    assert await logged_in(treasurer.client)
    # The same form from the console itself works.
    response = await treasurer.post("/account/language", {"locale": "es"})
    assert response.status == 303
    assert (await account_row(console, treasurer.email)).locale == "es"


async def test_a_post_without_the_csrf_token_is_refused(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    response = await treasurer.post("/account/language", {"locale": "fr"}, csrf=False)
    assert response.status == 403
    assert "The form has expired" in await response.text()
    response = await treasurer.post(
        "/account/language", {"locale": "fr", "csrf": "x" * 43}, csrf=False
    )
    assert response.status == 403
    response = await treasurer.post("/account/sessions/end", csrf=False)
    assert response.status == 403
    assert await logged_in(treasurer.client)
    assert (await account_row(console, treasurer.email)).locale is None
    # Another person's token is not this session's.
    other = await console.as_role("viewer")
    response = await treasurer.post(
        "/account/language", {"locale": "fr", "csrf": other.csrf_token}, csrf=False
    )
    assert response.status == 403


async def test_a_stolen_cookie_stops_working_after_logout(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    stolen = await thief(console, cookie_of(treasurer))
    assert await logged_in(stolen)  # the theft works while the session lives
    response = await treasurer.post("/logout")
    assert response.status == 303
    assert response.headers["Location"] == "/admin/login?notice=logged_out"
    assert not await logged_in(stolen)
    assert not await logged_in(treasurer.client)


async def test_a_stolen_cookie_stops_working_after_the_idle_timeout(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    stolen = await thief(console, cookie_of(treasurer))
    console.clock.advance(29 * 60)
    assert await logged_in(stolen)  # a request: the session was used 29 minutes in
    console.clock.advance(29 * 60)
    assert await logged_in(treasurer.client)
    console.clock.advance(30 * 60 + 1)
    response = await stolen.get("/admin/links", allow_redirects=False)
    assert response.status == 303
    assert "notice=session_expired" in response.headers["Location"]
    assert not await logged_in(treasurer.client)


async def test_a_stolen_cookie_stops_working_after_the_absolute_timeout(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    stolen = await thief(console, cookie_of(treasurer))
    for _ in range(11 * 3):  # used every 20 minutes: never idle
        console.clock.advance(20 * 60)
        assert await logged_in(stolen)
    console.clock.advance(60 * 60)  # 12 h 0 min after the login
    assert not await logged_in(stolen)
    assert not await logged_in(treasurer.client)


async def test_a_disabled_accounts_sessions_end_at_once(
    console: ConsoleHarness, admin: ConsoleClient, treasurer: ConsoleClient
) -> None:
    account = await account_row(console, treasurer.email)
    other_session = await console.login(treasurer.email)
    assert await logged_in(treasurer.client) and await logged_in(other_session.client)
    response = await admin.post(f"/accounts/{account.id}/disable")
    assert response.status == 303
    assert not await logged_in(treasurer.client)
    assert not await logged_in(other_session.client)
    async with console.app[DATABASE].read() as session:
        reasons = (
            await session.execute(
                sa.select(ConsoleSession.ended_reason).where(
                    ConsoleSession.account_id == account.id
                )
            )
        ).scalars()
        assert set(reasons) == {"disabled"}
    # Enabled again, the old sessions stay ended: a new login is needed.
    response = await admin.post(f"/accounts/{account.id}/enable")
    assert response.status == 303
    assert not await logged_in(treasurer.client)


async def test_passwords_are_never_stored_or_logged_in_clear(
    console: ConsoleHarness, admin: ConsoleClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    invitation = await console.app[ACCOUNTS].add("kim@riverside.example", Role.VIEWER, actor="test")
    token = token_of(invitation.url)
    client = await console.new_client()
    set_page = f"/admin/invitation/{token}"
    response = await client.post(
        set_page, data={"password": PASSWORD, "confirm": PASSWORD}, allow_redirects=False
    )
    assert response.status == 303
    response = await login_post(client, "kim@riverside.example", "a wrong password here")
    assert response.status == 400
    kim = await console.login("kim@riverside.example")
    response = await kim.post(
        "/account/password",
        {
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    )
    assert response.status == 303
    await console.login("kim@riverside.example", NEW_PASSWORD)
    row = await account_row(console, "kim@riverside.example")
    assert row.password_hash is not None and row.password_hash.startswith("$argon2id$")
    secrets_ = (PASSWORD, NEW_PASSWORD, "a wrong password here", token)
    async with console.app[DATABASE].read() as session:
        dumped = []
        for model in (Account, ConsoleSession, AccountToken, AuditEntry):
            for item in (await session.execute(sa.select(model))).scalars():
                dumped.append(repr({c.key: getattr(item, c.key) for c in model.__mapper__.columns}))
    stored = "\n".join(dumped)
    logged = gateway_logs(caplog)
    for secret in secrets_:
        assert secret not in stored
        assert secret not in logged


# --- the second factor ------------------------------------------------------------------------


async def test_two_factor_from_setup_to_login_with_a_code_and_a_recovery_code(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    page = await treasurer.page("/account/2fa")
    assert "Two-factor authentication is off" in text_of(page)
    # GET never writes: nothing begins until the button is pressed.
    assert (await account_row(console, treasurer.email)).totp_secret is None
    secret, codes = await enrol(console, treasurer)
    assert "Two-factor authentication is on" in text_of(await treasurer.page("/account/2fa"))
    account_page = text_of(await treasurer.page("/account"))
    assert "Two-factor authentication On" in account_page
    await treasurer.post("/logout")

    # The password alone only reaches the code page.
    client = await console.new_client()
    response = await login_post(client, treasurer.email, PASSWORD, next="/admin/links")
    assert response.status == 303
    assert response.headers["Location"] in (
        "/admin/login/code?next=/admin/links",
        "/admin/login/code?next=%2Fadmin%2Flinks",
    )
    half_cookie = response.cookies[COOKIE].value
    response = await client.get("/admin/account", allow_redirects=False)
    assert URL(response.headers["Location"]).path == "/admin/login/code"
    assert URL(response.headers["Location"]).query["next"] == "/admin/account"
    page = await (await client.get("/admin/login/code?next=/admin/links")).text()
    csrf = csrf_of(page)
    wrong = await client.post(
        "/admin/login/code",
        data={"code": "000000", "csrf": csrf, "next": "/admin/links"},
        allow_redirects=False,
    )
    assert wrong.status == 400
    assert "That code is not right" in await wrong.text()
    console.clock.advance(30)  # the enrolment's code is never accepted twice: the next one
    code = pyotp.TOTP(secret).at(console.clock.now())
    response = await client.post(
        "/admin/login/code",
        data={"code": code, "csrf": csrf, "next": "/admin/links"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/admin/links"
    assert response.cookies[COOKIE].value != half_cookie  # a new session
    assert await logged_in(client)
    # The half-logged-in cookie is dead.
    stale = await thief(console, half_cookie)
    assert not await logged_in(stale)
    # The same code again, on a second password login: refused (used once).
    other = await console.new_client()
    await login_post(other, treasurer.email, PASSWORD)
    csrf = csrf_of(await (await other.get("/admin/login/code")).text())
    response = await other.post(
        "/admin/login/code", data={"code": code, "csrf": csrf}, allow_redirects=False
    )
    assert response.status == 400
    # A recovery code works once.
    response = await other.post(
        "/admin/login/code", data={"code": codes[0].upper(), "csrf": csrf}, allow_redirects=False
    )
    assert response.status == 303
    assert response.headers["Location"] == "/admin/"
    third = await console.new_client()
    await login_post(third, treasurer.email, PASSWORD)
    csrf = csrf_of(await (await third.get("/admin/login/code")).text())
    response = await third.post(
        "/admin/login/code", data={"code": codes[0], "csrf": csrf}, allow_redirects=False
    )
    assert response.status == 400
    page = text_of(await (await other.get("/admin/account/2fa")).text())
    assert "You have 9 unused recovery codes" in page


async def test_new_recovery_codes_replace_the_old_ones(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    _, old = await enrol(console, treasurer)
    response = await treasurer.post("/account/2fa/codes")
    assert response.status == 200
    new = recovery_codes_on(await response.text())
    assert len(new) == 10 and not set(new) & set(old)
    await treasurer.post("/logout")
    client = await console.new_client()
    await login_post(client, treasurer.email, PASSWORD)
    csrf = csrf_of(await (await client.get("/admin/login/code")).text())
    response = await client.post(
        "/admin/login/code", data={"code": old[0], "csrf": csrf}, allow_redirects=False
    )
    assert response.status == 400
    response = await client.post(
        "/admin/login/code", data={"code": new[0], "csrf": csrf}, allow_redirects=False
    )
    assert response.status == 303


async def test_a_wrong_code_at_setup_leaves_it_off(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    response = await treasurer.post("/account/2fa", {"action": "begin"})
    secret = secret_on(await response.text())
    for code, message in (("", "Enter the code"), ("123", "not right"), ("12345x", "not right")):
        response = await treasurer.post("/account/2fa", {"action": "confirm", "code": code})
        assert response.status == 400
        page = await response.text()
        assert message in page
        assert secret_on(page) == secret  # the same QR code and key, to try again
        assert 'class="error-summary"' in page
    assert not (await account_row(console, treasurer.email)).totp_enabled_at


async def test_turning_two_factor_off_needs_the_password(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    await enrol(console, treasurer)
    response = await treasurer.post("/account/2fa/disable", {"password": "not my password!"})
    assert response.status == 400
    assert "That password is not right" in await response.text()
    assert (await account_row(console, treasurer.email)).totp_enabled_at is not None
    response = await treasurer.post("/account/2fa/disable", {"password": PASSWORD})
    assert response.status == 303
    assert response.headers["Location"] == "/admin/account?notice=2fa_disabled"
    assert (await account_row(console, treasurer.email)).totp_enabled_at is None
    async with console.app[DATABASE].read() as session:
        actors = (
            await session.execute(
                sa.select(AuditEntry.actor).where(AuditEntry.action == "account.totp_disabled")
            )
        ).scalars()
        assert list(actors) == [f"admin:{treasurer.email}"]
    assert "Two-factor authentication is off" in text_of(await treasurer.page("/account/2fa"))


async def test_require_2fa_makes_everyone_set_it_up_first(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str
) -> None:
    console = await start_admin_harness(
        aiohttp_server,
        aiohttp_client,
        database_url,
        harness=ConsoleHarness,
        admin={"require_2fa": True},
    )
    assert isinstance(console, ConsoleHarness)
    try:
        person = await console.as_role("treasurer")
        for path in ("/admin/", "/admin/links", "/admin/accounts"):
            response = await person.get(path, allow_redirects=False)
            assert response.status == 303
            held = URL(response.headers["Location"])
            assert (held.path, held.query["next"]) == ("/admin/account/2fa", path)
        page = text_of(await person.page("/account/2fa"))
        assert "Your organisation requires two-factor authentication" in page
        # A POST elsewhere is held too, and changes nothing.
        response = await person.post("/account/language", {"locale": "es"})
        assert response.status == 303
        assert response.headers["Location"] == "/admin/account/2fa"
        assert (await account_row(console, person.email)).locale is None
        secret, _ = await enrol(console, person)
        assert (await person.get("/", allow_redirects=False)).status == 200
        page = text_of(await person.page("/account/2fa"))
        assert "it cannot be turned off" in page and "Turn it off" not in page
        response = await person.post("/account/2fa/disable", {"password": PASSWORD})
        assert response.status == 403
        assert (await account_row(console, person.email)).totp_enabled_at is not None
        assert secret
    finally:
        await console.close_clients()


# --- the account page -------------------------------------------------------------------------


async def test_account_page_shows_the_person_and_their_sessions(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    other = await console.new_client()
    await other.post(
        "/admin/login",
        data={"email": treasurer.email, "password": PASSWORD},
        headers={"User-Agent": "Firefox on the office PC"},
        allow_redirects=False,
    )
    page = await treasurer.page("/account")
    text = text_of(page)
    assert treasurer.email in text and "Treasurer" in text
    assert "Firefox on the office PC" in text
    assert text.count("This session") == 1
    assert "127.0.0.1" in text
    assert "Log out everywhere" in text


async def test_log_out_everywhere_ends_every_session(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    other = await console.login(treasurer.email)
    viewer = await console.as_role("viewer")
    response = await treasurer.post("/account/sessions/end")
    assert response.status == 303
    assert response.headers["Location"] == "/admin/login?notice=logged_out_everywhere"
    assert not await logged_in(treasurer.client)
    assert not await logged_in(other.client)
    assert await logged_in(viewer.client)  # someone else's sessions are theirs


async def test_change_password_names_each_problem_and_keeps_this_session(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    other = await console.login(treasurer.email)
    cases = [
        ({"current_password": "", "new_password": "", "confirm_password": ""}, 3),
        (
            {
                "current_password": "not it at all",
                "new_password": NEW_PASSWORD,
                "confirm_password": NEW_PASSWORD,
            },
            1,
        ),
        (
            {
                "current_password": PASSWORD,
                "new_password": NEW_PASSWORD,
                "confirm_password": NEW_PASSWORD + "x",
            },
            1,
        ),
        ({"current_password": PASSWORD, "new_password": "short", "confirm_password": "short"}, 1),
        (
            {
                "current_password": PASSWORD,
                "new_password": "password123",
                "confirm_password": "password123",
            },
            1,
        ),
    ]
    for form, problems in cases:
        response = await treasurer.post("/account/password", form)
        assert response.status == 400, form
        page = await response.text()
        assert page.count('<p class="error"') == problems, (form, page)
        assert 'class="error-summary"' in page
    page = text_of(await (await treasurer.post("/account/password", cases[2][0])).text())
    assert "The two passwords are not the same" in page
    page = text_of(await (await treasurer.post("/account/password", cases[1][0])).text())
    assert "current password is not right" in page
    page = text_of(await (await treasurer.post("/account/password", cases[3][0])).text())
    assert "at least 10 characters" in page
    await console.login(treasurer.email)  # nothing changed so far
    response = await treasurer.post(
        "/account/password",
        {
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    )
    assert response.status == 303
    assert response.headers["Location"] == "/admin/account?notice=password_changed"
    assert await logged_in(treasurer.client)
    assert not await logged_in(other.client)
    client = await console.new_client()
    assert (await login_post(client, treasurer.email, PASSWORD)).status == 400
    assert (await login_post(client, treasurer.email, NEW_PASSWORD)).status == 303


async def test_the_console_follows_the_accounts_language(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    response = await treasurer.get("/account")
    assert response.headers["Content-Language"] == "en"
    response = await treasurer.post("/account/language", {"locale": "es"})
    assert response.status == 303
    response = await treasurer.get("/account")
    assert response.headers["Content-Language"] == "es"
    assert '<option value="es" lang="es" selected>' in await response.text()
    response = await treasurer.post("/account/language", {"locale": "xx"})
    assert response.status == 400
    assert (await account_row(console, treasurer.email)).locale == "es"
    response = await treasurer.post("/account/language", {"locale": ""})
    assert response.status == 303
    response = await treasurer.get("/account", headers={"Accept-Language": "fr"})
    assert response.headers["Content-Language"] == "fr"


# --- set-password links -----------------------------------------------------------------------


async def test_an_invitation_sets_the_password_once(
    console: ConsoleHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    invitation = await console.app[ACCOUNTS].add(
        "kim@riverside.example", Role.VIEWER, name="Kim", actor="test"
    )
    token = token_of(invitation.url)
    path = f"/admin/invitation/{token}"
    assert invitation.url.endswith(path)
    client = await console.new_client()
    response = await client.get(path)
    assert response.status == 200
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    page = text_of(await response.text())
    assert "Set up your account" in page and "kim@riverside.example" in page

    async def submit(password: str, confirm: str) -> ClientResponse:
        return await client.post(
            path, data={"password": password, "confirm": confirm}, allow_redirects=False
        )

    response = await submit(NEW_PASSWORD, NEW_PASSWORD + "!")
    assert response.status == 400
    assert "The two passwords are not the same" in await response.text()
    response = await submit("short", "short")
    assert response.status == 400
    page = await response.text()
    assert "at least 10 characters" in page and 'class="error-summary"' in page
    response = await submit("", "")
    assert response.status == 400
    assert (await account_row(console, "kim@riverside.example")).password_hash is None
    response = await submit(NEW_PASSWORD, NEW_PASSWORD)
    assert response.status == 303
    assert response.headers["Location"] == "/admin/login?notice=password_set"
    page = await (await client.get(response.headers["Location"])).text()
    assert "Your password is set" in page
    assert (await login_post(client, "kim@riverside.example", NEW_PASSWORD)).status == 303
    # Used: a clear page, not the form, and nothing changes.
    other = await console.new_client()
    response = await other.get(path)
    assert response.status == 410
    assert "already been used" in await response.text()
    response = await other.post(
        path, data={"password": PASSWORD, "confirm": PASSWORD}, allow_redirects=False
    )
    assert response.status == 410
    assert (await login_post(other, "kim@riverside.example", PASSWORD)).status == 400
    assert token not in gateway_logs(caplog)


async def test_reset_links_expired_and_unknown_links(console: ConsoleHarness) -> None:
    await console.add_account("sam@riverside.example")
    accounts = console.app[ACCOUNTS]
    reset = await accounts.reset("sam@riverside.example", actor="test", send=False)
    path = reset.url[reset.url.index("/admin/") :]
    assert path.startswith("/admin/reset/")
    client = await console.new_client()
    page = text_of(await (await client.get(path)).text())
    assert "Choose a new password" in page
    response = await client.post(
        path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, allow_redirects=False
    )
    assert response.status == 303
    assert (await login_post(client, "sam@riverside.example", NEW_PASSWORD)).status == 303
    # Expired: 410, the form is gone.
    late = await accounts.reset("sam@riverside.example", actor="test", send=False)
    late_path = late.url[late.url.index("/admin/") :]
    console.clock.advance(25 * 3600)
    response = await client.get(late_path)
    assert response.status == 410
    assert "expired" in await response.text()
    response = await client.post(
        late_path, data={"password": PASSWORD, "confirm": PASSWORD}, allow_redirects=False
    )
    assert response.status == 410
    # Unknown, forged, absurdly long: 404, never a 500.
    token = token_of(late.url)
    for bad in ("nonsense", token[:-2] + "xx", "a" * 5000, "at_x.%00"):
        for prefix in ("/admin/invitation/", "/admin/reset/"):
            response = await client.get(prefix + bad)
            assert response.status == 404, (prefix, bad)
            response = await client.post(
                prefix + bad, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
            )
            assert response.status == 404, (prefix, bad)


async def test_a_refused_post_to_a_set_password_link_logs_no_token(
    console: ConsoleHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    invitation = await console.app[ACCOUNTS].add("kim@riverside.example", Role.VIEWER, actor="t")
    token = token_of(invitation.url)
    client = await console.new_client()
    response = await client.post(
        f"/admin/invitation/{token}",
        data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        headers={"Sec-Fetch-Site": "cross-site"},
        allow_redirects=False,
    )
    assert response.status == 403
    assert (await account_row(console, "kim@riverside.example")).password_hash is None
    assert token not in gateway_logs(caplog)


async def test_a_cross_site_login_is_refused_and_makes_no_session(console: ConsoleHarness) -> None:
    await console.add_account("sam@riverside.example")
    client = await console.new_client()
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        response = await client.post(
            "/admin/login",
            data={"email": "sam@riverside.example", "password": PASSWORD},
            headers=headers,
            allow_redirects=False,
        )
        assert response.status == 403
        assert COOKIE not in response.cookies
    async with console.app[DATABASE].read() as session:
        count = await session.execute(sa.select(sa.func.count()).select_from(ConsoleSession))
        assert count.scalar_one() == 0


async def test_wrong_codes_lock_the_second_factor_too(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    secret, _ = await enrol(console, treasurer)
    await treasurer.post("/logout")
    client = await console.new_client()
    await login_post(client, treasurer.email, PASSWORD)
    csrf = csrf_of(await (await client.get("/admin/login/code")).text())
    statuses = []
    for _ in range(5):
        response = await client.post(
            "/admin/login/code", data={"code": "000000", "csrf": csrf}, allow_redirects=False
        )
        statuses.append(response.status)
    assert statuses[-1] == 429 and set(statuses[:-1]) == {400}
    assert int(response.headers["Retry-After"]) > 0
    assert "Too many attempts" in text_of(await response.text())
    console.clock.advance(30)
    response = await client.post(
        "/admin/login/code",
        data={"code": pyotp.TOTP(secret).at(console.clock.now()), "csrf": csrf},
        allow_redirects=False,
    )
    assert response.status == 429  # even the right code, while locked


@pytest.mark.parametrize("locale", OFFERED)
async def test_every_auth_page_renders_in_every_offered_language(
    console: ConsoleHarness, admin: ConsoleClient, locale: str
) -> None:
    accounts = console.app[ACCOUNTS]
    me = await account_row(console, admin.email)
    await accounts.set_locale(me.id, locale, actor="test")
    invitation = await accounts.add("kim@riverside.example", Role.VIEWER, actor="test")
    for path in ("/account", "/account/2fa", "/accounts", f"/accounts/{invitation.account.id}"):
        response = await admin.get(path)
        assert response.status == 200, path
        assert response.headers["Content-Language"] == locale
    response = await admin.post("/account/2fa", {"action": "begin"})
    assert response.status == 200
    secret = secret_on(await response.text())
    code = pyotp.TOTP(secret).at(console.clock.now())
    response = await admin.post("/account/2fa", {"action": "confirm", "code": code})
    assert response.status == 200 and len(recovery_codes_on(await response.text())) == 10
    assert (await admin.get("/account/2fa")).status == 200
    public = await console.new_client()
    headers = {"Accept-Language": locale}
    for path in ("/admin/login", f"/admin/invitation/{token_of(invitation.url)}", "/admin/reset/x"):
        response = await public.get(path, headers=headers)
        assert response.status in (200, 404), path
        assert response.headers["Content-Language"] == locale
    response = await login_post(public, admin.email, "wrong password here")
    assert response.status == 400


async def test_guessing_the_current_password_from_an_open_session_locks_out(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    # admin.login_max_failures is 5: the fifth wrong guess locks, whatever the form.
    statuses = []
    for n in range(6):
        response = await treasurer.post(
            "/account/password",
            {
                "current_password": f"not the password {n}",
                "new_password": "a brand new password 1",
                "confirm_password": "a brand new password 1",
            },
        )
        statuses.append(response.status)
    assert statuses == [400, 400, 400, 400, 429, 429]
    response = await treasurer.post("/account/2fa/disable", {"password": "still guessing here"})
    assert response.status in (400, 429)  # no 2FA yet: the form says so, or the brake holds
    # The right password is refused too until the lockout ends (no oracle).
    refused = await treasurer.post(
        "/account/password",
        {
            "current_password": PASSWORD,
            "new_password": "a brand new password 1",
            "confirm_password": "a brand new password 1",
        },
    )
    assert refused.status == 429
