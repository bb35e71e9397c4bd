"""The accounts pages (issue 15 item 1, admins only): the list, inviting by email (the link in
the mail sets the password), changing a role, disabling and enabling, sending a reset; the last
admin kept; viewers and treasurers neither see the pages nor may post to them. On SQLite and
PostgreSQL, with a real SMTP sink."""

from __future__ import annotations

import html as htmllib
import re
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.adapters.db.models import Account, AuditEntry
from gateway.dev.demo_mail import MailSink
from gateway.domain.accounts import Role
from gateway.web.keys import ACCOUNTS, DATABASE, OUTBOX
from tests.admin.support import start_admin_harness
from tests.console.support import PASSWORD, ConsoleClient, ConsoleHarness

NEW_PASSWORD = "a different rare phrase 42"
_LINK = re.compile(r"https?://[^\s\"<>]+/admin/(?:invitation|reset)/[A-Za-z0-9._-]+")


def text_of(html: str) -> str:
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def account_of(console: ConsoleHarness, email: str) -> Account:
    async with console.app[DATABASE].read() as session:
        row: Account = (
            await session.execute(sa.select(Account).where(Account.email == email))
        ).scalar_one()
        return row


async def audit_actions(console: ConsoleHarness) -> list[tuple[str, str]]:
    async with console.app[DATABASE].read() as session:
        rows = await session.execute(
            sa.select(AuditEntry.action, AuditEntry.actor).order_by(AuditEntry.id)
        )
        return [(r.action, r.actor) for r in rows]


async def mailed_link(console: ConsoleHarness, sink: MailSink, address: str) -> str:
    """The set-password link in the last email to ``address`` (the outbox sends it)."""
    if not sink.to(address):
        await console.app[OUTBOX].send_due()
    messages = sink.to(address)
    assert messages, f"no email to {address}"
    found = _LINK.search(messages[-1].text())
    assert found, messages[-1].text()
    return found.group(0)


async def test_admin_invites_someone_who_sets_a_password_from_the_email(
    console: ConsoleHarness, admin: ConsoleClient, mail_sink: MailSink
) -> None:
    page = await admin.page("/accounts")
    assert admin.email in text_of(page)
    response = await admin.post(
        "/accounts",
        {"email": "Kim@Riverside.example", "name": "Kim Lee", "role": "viewer", "locale": "es"},
    )
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == "/admin/accounts?notice=invited"
    text = text_of(await admin.page("/accounts?notice=invited"))
    assert "The invitation has been sent." in text
    assert "kim@riverside.example Kim Lee Viewer Invited Off Never" in text
    assert ("account.invited", f"admin:{admin.email}") in await audit_actions(console)
    url = await mailed_link(console, mail_sink, "kim@riverside.example")
    path = url[url.index("/admin/") :]
    client = await console.new_client()
    response = await client.post(
        path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, allow_redirects=False
    )
    assert response.status == 303
    kim = await console.login("kim@riverside.example", NEW_PASSWORD)
    assert "Lector" in text_of(await kim.page("/account"))  # invited in Spanish
    text = text_of(await admin.page("/accounts"))
    assert "kim@riverside.example Kim Lee Viewer Active Off" in text


async def test_the_invitation_form_names_every_problem_and_invites_no_one(
    console: ConsoleHarness, admin: ConsoleClient, mail_sink: MailSink
) -> None:
    before = len(await console.app[ACCOUNTS].list())
    cases: list[tuple[dict[str, str], list[str]]] = [
        ({"email": "", "role": "viewer"}, ["email"]),
        ({"email": "not an address", "role": "viewer"}, ["email"]),
        ({"email": "kim@riverside.example", "role": "owner"}, ["role"]),
        ({"email": "kim@riverside.example", "role": "viewer", "locale": "xx"}, ["locale"]),
        ({"email": admin.email.upper(), "role": "viewer"}, ["email"]),
        ({"email": "kim@riverside.example", "role": "viewer", "name": "x" * 300}, ["name"]),
    ]
    for form, fields in cases:
        response = await admin.post("/accounts", form)
        assert response.status == 400, (form, response.status)
        page = await response.text()
        assert 'class="error-summary"' in page
        for name in fields:
            assert f'id="{name}-error"' in page, (form, name)
        # What was typed is kept (except what the form refused outright).
        if form["email"]:
            assert htmllib.escape(form["email"], quote=True) in page
    assert len(await console.app[ACCOUNTS].list()) == before
    assert not mail_sink.to("kim@riverside.example")
    page = text_of(await (await admin.post("/accounts", cases[4][0])).text())
    assert "already exists" in page


async def test_role_changes_and_the_last_admin_is_kept(
    console: ConsoleHarness, admin: ConsoleClient
) -> None:
    me = await account_of(console, admin.email)
    # The only admin: demoting or disabling themself is refused, with the service's reason.
    for path, form in (
        (f"/accounts/{me.id}/role", {"role": "viewer"}),
        (f"/accounts/{me.id}/disable", {}),
    ):
        response = await admin.post(path, form)
        assert response.status == 409, path
        page = text_of(await response.text())
        assert "last active admin" in page
    assert (await account_of(console, admin.email)).role == "admin"
    assert (await account_of(console, admin.email)).disabled_at is None
    # Another admin makes it possible.
    other_id = await console.add_account("deputy@riverside.example", Role.TREASURER)
    response = await admin.post(f"/accounts/{other_id}/role", {"role": "admin"})
    assert response.status == 303
    assert response.headers["Location"] == f"/admin/accounts/{other_id}?notice=account_updated"
    assert "Admin" in text_of(await admin.page(f"/accounts/{other_id}"))
    response = await admin.post(f"/accounts/{me.id}/role", {"role": "treasurer"})
    assert response.status == 303
    # Now a treasurer: the accounts pages are closed to this session at its next request.
    response = await admin.get("/accounts")
    assert response.status == 403
    assert ("account.role_changed", f"admin:{admin.email}") in await audit_actions(console)
    bad = await (await console.login("deputy@riverside.example")).post(
        f"/accounts/{me.id}/role", {"role": "superuser"}
    )
    assert bad.status == 400


async def test_disable_enable_and_reset_from_the_account_page(
    console: ConsoleHarness, admin: ConsoleClient, mail_sink: MailSink
) -> None:
    sam_id = await console.add_account("sam@riverside.example", Role.TREASURER, name="Sam")
    sam = await console.login("sam@riverside.example")
    page = text_of(await admin.page(f"/accounts/{sam_id}"))
    assert "Sam" in page and "Treasurer" in page and "Active" in page
    response = await admin.post(f"/accounts/{sam_id}/reset")
    assert response.status == 303
    url = await mailed_link(console, mail_sink, "sam@riverside.example")
    assert "/admin/reset/" in url
    # The current password works until the link is used.
    assert (await sam.get("/account", allow_redirects=False)).status == 200
    response = await admin.post(f"/accounts/{sam_id}/disable")
    assert response.status == 303
    assert (await sam.get("/account", allow_redirects=False)).status == 303
    page = text_of(await admin.page(f"/accounts/{sam_id}"))
    assert "Disabled" in page and "Enable account" in page
    # A disabled account gets no reset, and its link no longer works.
    response = await admin.post(f"/accounts/{sam_id}/reset")
    assert response.status == 409
    assert "disabled" in text_of(await response.text())
    client = await console.new_client()
    response = await client.get(url[url.index("/admin/") :])
    assert response.status == 410
    response = await admin.post(f"/accounts/{sam_id}/enable")
    assert response.status == 303
    await console.login("sam@riverside.example")
    actions = [a for a, _ in await audit_actions(console)]
    for expected in ("account.reset_issued", "account.disabled", "account.enabled"):
        assert expected in actions
    assert (await admin.get("/accounts/ac_doesnotexist")).status == 404
    assert (await admin.post("/accounts/ac_doesnotexist/disable")).status == 404
    assert (await admin.get("/accounts/" + "x" * 300)).status == 404


@pytest.mark.parametrize("role", ["viewer", "treasurer"])
async def test_viewers_and_treasurers_see_no_accounts_and_cannot_post(
    console: ConsoleHarness, role: str
) -> None:
    admin_id = await console.add_account("boss@riverside.example", Role.ADMIN)
    person = await console.as_role(role)
    page = await person.page("/account")
    assert 'href="/admin/accounts"' not in page
    assert (await person.get("/accounts")).status == 403
    assert (await person.get(f"/accounts/{admin_id}")).status == 403
    before = await audit_actions(console)
    for path, form in (
        ("/accounts", {"email": "kim@riverside.example", "role": "admin"}),
        (f"/accounts/{admin_id}/role", {"role": "viewer"}),
        (f"/accounts/{admin_id}/disable", {}),
        (f"/accounts/{admin_id}/enable", {}),
        (f"/accounts/{admin_id}/reset", {}),
    ):
        response = await person.post(path, form)
        assert response.status == 403, path
        assert "Your role does not allow this" in await response.text()
    assert await audit_actions(console) == before
    boss = await account_of(console, "boss@riverside.example")
    assert boss.role == "admin" and boss.disabled_at is None
    assert len(await console.app[ACCOUNTS].list()) == 2


async def test_admins_see_the_accounts_link(admin: ConsoleClient) -> None:
    assert 'href="/admin/accounts"' in await admin.page("/account")


async def test_without_mail_the_link_is_shown_once_to_the_admin(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str
) -> None:
    console = await start_admin_harness(
        aiohttp_server, aiohttp_client, database_url, harness=ConsoleHarness
    )
    assert isinstance(console, ConsoleHarness)
    try:
        admin = await console.as_role("admin")
        page = text_of(await admin.page("/accounts"))
        assert "Mail is not set up" in page
        response = await admin.post(
            "/accounts", {"email": "kim@riverside.example", "role": "treasurer"}
        )
        assert response.status == 200
        page = await response.text()
        found = _LINK.search(page)
        assert found and "/admin/invitation/" in found.group(0)
        assert "shown only this once" in text_of(page)
        client = await console.new_client()
        path = found.group(0)[found.group(0).index("/admin/") :]
        response = await client.post(
            path, data={"password": PASSWORD, "confirm": PASSWORD}, allow_redirects=False
        )
        assert response.status == 303
        await console.login("kim@riverside.example")
    finally:
        await console.close_clients()
