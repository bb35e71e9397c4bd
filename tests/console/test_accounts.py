"""Console accounts (issue 15 items 1-2), on SQLite and PostgreSQL with the injected clock:
set-password links (single use, 72 h, bound to the address, never stored), argon2id hashes and
no password in clear anywhere, the last admin kept (also against two demotions at once), the
invitation email built when sent, resets, roles, and every change audited."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pyotp
import pytest
import sqlalchemy as sa

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Account, AccountToken, AuditEntry, OutboxMessage
from gateway.adapters.mail import SmtpMailer
from gateway.adapters.passwords import Passwords
from gateway.config import Duration, EmailSettings, Settings
from gateway.dev.clock import FakeClock
from gateway.dev.demo_mail import MailSink
from gateway.domain.accounts import Role
from gateway.domain.errors import NotFound, ValidationFailed
from gateway.domain.outbox import Kind
from gateway.resources import resource_dir
from gateway.services.accounts import (
    AccountDisabled,
    AccountLinkInvalid,
    AccountLinks,
    Accounts,
    LastAdmin,
)
from gateway.services.console_auth import LoginRefused
from gateway.services.email import email_environments
from gateway.services.messages.invitations import AccountLinkComposer
from gateway.services.outbox import Outbox
from tests.admin.support import mail_sink
from tests.console.accounts_support import (
    OTHER_PASSWORD,
    PASSWORD,
    PUBLIC_URL,
    SECRET_KEYS,
    AccountsKit,
    clock,
    db,
    kit,
    token_of,
)

__all__ = ["clock", "db", "kit", "mail_sink"]

ANA = "ana@riverside.example"
BEA = "bea@riverside.example"
CLI = "cli"


async def account_row(db: Database, account_id: str) -> Account:
    async with db.read() as session:
        found = await session.get(Account, account_id)
    assert found is not None
    return found


async def test_add_makes_an_invited_account_and_a_link_that_sets_the_password(
    kit: AccountsKit,
) -> None:
    invitation = await kit.accounts.add(
        " Ana@Riverside.Example ", "Treasurer", name=" Ana  Lima ", actor=CLI
    )
    view = invitation.account
    assert (view.email, view.name, view.role, view.status) == (
        ANA,
        "Ana Lima",
        Role.TREASURER,
        "invited",
    )
    assert invitation.url.startswith(f"{PUBLIC_URL}/admin/invitation/")
    assert invitation.expires_at - kit.accounts.now() == timedelta(hours=72)
    info = await kit.accounts.inspect(token_of(invitation.url))
    assert (info.purpose, info.email) == ("invite", ANA)
    accepted = await kit.accounts.accept(token_of(invitation.url), PASSWORD)
    assert accepted.status == "active"
    assert await kit.auth.resume(await kit.login(ANA)) is not None
    assert [e.action for e in await kit.audit()][:2] == [
        "account.created",
        "account.invitation_accepted",
    ]
    assert (await kit.audit("account.created"))[0].actor == CLI


async def test_the_token_is_stored_nowhere_and_the_password_only_as_argon2id(
    db: Database, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gateway")
    real = AccountsKit(db, clock)
    real.accounts._passwords = Passwords()  # the production parameters
    invitation = await real.accounts.add(ANA, Role.ADMIN, actor=CLI)
    token = token_of(invitation.url)
    await real.accounts.accept(token, PASSWORD)
    row = await account_row(db, invitation.account.id)
    assert row.password_hash is not None
    assert row.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    values: list[str] = []
    async with db.read() as session:
        for table in (Account, AccountToken, AuditEntry, OutboxMessage):
            for r in (await session.execute(sa.select(table))).scalars():
                values.extend(str(v) for v in vars(r).values())
    dump = " ".join(values)
    assert PASSWORD not in dump and token not in dump
    assert PASSWORD not in caplog.text and token not in caplog.text


async def test_an_invitation_works_once(kit: AccountsKit) -> None:
    invitation = await kit.accounts.add(ANA, Role.VIEWER, actor=CLI)
    token = token_of(invitation.url)
    await kit.accounts.accept(token, PASSWORD)
    with pytest.raises(AccountLinkInvalid) as refused:
        await kit.accounts.accept(token, OTHER_PASSWORD)
    assert refused.value.reason == "used"
    with pytest.raises(LoginRefused):
        await kit.login(ANA, OTHER_PASSWORD)


async def test_two_accepts_at_once_one_wins(kit: AccountsKit) -> None:
    invitation = await kit.accounts.add(ANA, Role.VIEWER, actor=CLI)
    token = token_of(invitation.url)
    results = await asyncio.gather(
        kit.accounts.accept(token, PASSWORD),
        kit.accounts.accept(token, OTHER_PASSWORD),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["AccountLinkInvalid", "AccountView"]


async def test_an_invitation_expires_after_72_hours(kit: AccountsKit) -> None:
    first = await kit.accounts.add(ANA, Role.VIEWER, actor=CLI)
    second = await kit.accounts.add(BEA, Role.VIEWER, actor=CLI)
    kit.clock.advance(72 * 3600 - 1)
    await kit.accounts.accept(token_of(first.url), PASSWORD)
    kit.clock.advance(1)
    with pytest.raises(AccountLinkInvalid) as refused:
        await kit.accounts.accept(token_of(second.url), PASSWORD)
    assert refused.value.reason == "expired"
    assert (await kit.accounts.find(BEA)).status == "invited"


async def test_a_forged_or_altered_link_is_refused(kit: AccountsKit) -> None:
    invitation = await kit.accounts.add(ANA, Role.VIEWER, actor=CLI)
    token = token_of(invitation.url)
    row_id = token.split(".")[0]
    other_keys = AccountLinks(("someone else's key",), PUBLIC_URL)
    for bad in (row_id, token[:-2], other_keys.token(row_id), "x" * 10_000, ""):
        with pytest.raises(AccountLinkInvalid):
            await kit.accounts.accept(bad, PASSWORD)
    # Signed with an older key still listed: fine (keys rotate).
    older = AccountLinks(SECRET_KEYS[1:], PUBLIC_URL)
    await kit.accounts.accept(older.token(row_id), PASSWORD)


async def test_a_link_is_bound_to_the_address_it_was_issued_to(kit: AccountsKit) -> None:
    invitation = await kit.accounts.add(ANA, Role.VIEWER, actor=CLI)
    async with kit.db.write() as session:
        await session.execute(sa.update(AccountToken).values(email="mallory@elsewhere.example"))
    with pytest.raises(AccountLinkInvalid):
        await kit.accounts.accept(token_of(invitation.url), PASSWORD)


async def test_a_disabled_accounts_link_is_refused(kit: AccountsKit) -> None:
    await kit.active("boss@riverside.example", Role.ADMIN)
    invitation = await kit.accounts.add(ANA, Role.VIEWER, actor=CLI)
    await kit.accounts.disable(invitation.account.id, actor=CLI)
    with pytest.raises(AccountLinkInvalid) as refused:
        await kit.accounts.accept(token_of(invitation.url), PASSWORD)
    assert refused.value.reason == "disabled"
    with pytest.raises(AccountDisabled):
        await kit.accounts.reset(ANA, actor=CLI, send=False)


async def test_a_weak_password_is_refused_and_changes_nothing(kit: AccountsKit) -> None:
    invitation = await kit.accounts.add(ANA, Role.VIEWER, actor=CLI)
    token = token_of(invitation.url)
    for weak in ("short", "password123", "ana@riverside.example", "x" * 257):
        with pytest.raises(ValidationFailed) as refused:
            await kit.accounts.accept(token, weak)
        assert set(refused.value.errors) == {"password"}
    assert (await kit.accounts.find(ANA)).status == "invited"
    await kit.accounts.accept(token, PASSWORD)  # still usable


async def test_bad_input_names_every_field_and_duplicates_are_refused(kit: AccountsKit) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await kit.accounts.add("not an email", "boss", name="a\x00b", actor=CLI)
    assert set(refused.value.errors) == {"email", "role", "name"}
    await kit.accounts.add(ANA, Role.VIEWER, actor=CLI)
    with pytest.raises(ValidationFailed) as refused:
        await kit.accounts.add(ANA.upper(), Role.ADMIN, actor=CLI)
    assert set(refused.value.errors) == {"email"}
    assert len(await kit.accounts.list()) == 1


async def test_reset_link_sets_a_new_password_and_ends_sessions(kit: AccountsKit) -> None:
    account_id = await kit.active(ANA)
    cookie = await kit.login(ANA)
    reset = await kit.accounts.reset(ANA, actor=CLI, send=False)
    assert reset.url.startswith(f"{PUBLIC_URL}/admin/reset/") and reset.purpose == "reset"
    assert await kit.auth.resume(cookie) is not None  # nothing changes until it is used
    kit.clock.advance(5)
    await kit.accounts.accept(token_of(reset.url), OTHER_PASSWORD)
    assert await kit.auth.resume(cookie) is None
    with pytest.raises(LoginRefused):
        await kit.login(ANA, PASSWORD)
    await kit.login(ANA, OTHER_PASSWORD)
    assert (await kit.audit("account.password_reset"))[0].detail == f"account {account_id}"


async def test_a_reset_link_expires_and_voids_older_links(kit: AccountsKit) -> None:
    await kit.active(ANA)
    first = await kit.accounts.reset(ANA, actor=CLI, send=False)
    second = await kit.accounts.reset(ANA, actor=CLI, send=False)
    await kit.accounts.accept(token_of(second.url), OTHER_PASSWORD)
    with pytest.raises(AccountLinkInvalid):
        await kit.accounts.accept(token_of(first.url), PASSWORD)
    third = await kit.accounts.reset(ANA, actor=CLI, send=False)
    kit.clock.advance(24 * 3600)
    with pytest.raises(AccountLinkInvalid):
        await kit.accounts.accept(token_of(third.url), PASSWORD)


async def test_list_get_find_and_not_found(kit: AccountsKit) -> None:
    bea = await kit.active(BEA, Role.ADMIN)
    await kit.accounts.add(ANA, Role.VIEWER, actor=CLI)
    assert [(a.email, a.status) for a in await kit.accounts.list()] == [
        (ANA, "invited"),
        (BEA, "active"),
    ]
    assert (await kit.accounts.get(bea)).email == BEA
    assert (await kit.accounts.find(BEA.upper())).id == bea
    with pytest.raises(NotFound):
        await kit.accounts.get("ac_nobody")


async def test_the_last_admin_cannot_be_disabled_or_demoted(kit: AccountsKit) -> None:
    ana = await kit.active(ANA, Role.ADMIN)
    with pytest.raises(LastAdmin):
        await kit.accounts.disable(ana, actor=CLI)
    with pytest.raises(LastAdmin):
        await kit.accounts.set_role(ana, Role.TREASURER, actor=CLI)
    bea = await kit.active(BEA, Role.ADMIN)
    await kit.accounts.set_role(ana, Role.VIEWER, actor=CLI)
    with pytest.raises(LastAdmin):
        await kit.accounts.disable(bea, actor=CLI)
    # A disabled admin does not count.
    await kit.accounts.set_role(ana, Role.ADMIN, actor=CLI)
    await kit.accounts.disable(ana, actor=CLI)
    with pytest.raises(LastAdmin):
        await kit.accounts.set_role(bea, Role.VIEWER, actor=CLI)
    assert [e.detail for e in await kit.audit("account.role_changed")] == [
        f"{ANA} ({ana}): admin -> viewer",
        f"{ANA} ({ana}): viewer -> admin",
    ]


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    db: Database, clock: FakeClock
) -> None:
    kit = AccountsKit(db, clock)
    ana = await kit.active(ANA, Role.ADMIN)
    bea = await kit.active(BEA, Role.ADMIN)
    # Two app instances (each its own services), as two replicas would be.
    other = AccountsKit(db, clock)
    for _ in range(3):
        results = await asyncio.gather(
            kit.accounts.set_role(ana, Role.TREASURER, actor=f"admin:{BEA}"),
            other.accounts.disable(bea, actor=f"admin:{ANA}"),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["AccountView", "LastAdmin"]
        admins = [
            a for a in await kit.accounts.list() if a.role is Role.ADMIN and a.status == "active"
        ]
        assert len(admins) == 1
        await kit.accounts.enable(bea, actor=CLI)
        await kit.accounts.set_role(ana, Role.ADMIN, actor=CLI)


async def test_set_role_applies_at_the_next_request(kit: AccountsKit) -> None:
    await kit.active("boss@riverside.example", Role.ADMIN)
    ana = await kit.active(ANA, Role.ADMIN)
    cookie = await kit.login(ANA)
    await kit.accounts.set_role(ana, "viewer", actor=CLI)
    principal = await kit.auth.resume(cookie)
    assert principal is not None and principal.role == "viewer"
    with pytest.raises(ValidationFailed):
        await kit.accounts.set_role(ana, "owner", actor=CLI)


async def test_check_password(kit: AccountsKit) -> None:
    ana = await kit.active(ANA)
    assert await kit.accounts.check_password(ana, PASSWORD)
    assert not await kit.accounts.check_password(ana, OTHER_PASSWORD)
    assert not await kit.accounts.check_password(ana, "")
    assert not await kit.accounts.check_password(ana, PASSWORD + "x" * 300)


async def test_change_password_needs_the_current_one(kit: AccountsKit) -> None:
    ana = await kit.active(ANA)
    for current, new, field in [
        ("wrong current password", OTHER_PASSWORD, "current"),
        (PASSWORD, "password123", "new"),
        ("x" * 300, OTHER_PASSWORD, "current"),
    ]:
        with pytest.raises(ValidationFailed) as refused:
            await kit.accounts.change_password(ana, current, new)
        assert set(refused.value.errors) == {field}
    cookie = await kit.login(ANA)
    kit.clock.advance(1)
    await kit.accounts.change_password(ana, PASSWORD, OTHER_PASSWORD)
    assert await kit.auth.resume(cookie) is None  # no session kept: every one ends
    await kit.login(ANA, OTHER_PASSWORD)
    assert len(await kit.audit("account.password_changed")) == 1


async def test_totp_enrolment_confirm_disable_and_new_recovery_codes(kit: AccountsKit) -> None:
    ana = await kit.active(ANA)
    enrolment = await kit.accounts.begin_totp(ana)
    assert enrolment.uri.startswith("otpauth://totp/") and "issuer=Riverside" in enrolment.uri
    assert enrolment.qr_svg.startswith("<svg") and "<script" not in enrolment.qr_svg
    assert (await kit.accounts.totp_enrolment(ana)) == enrolment
    with pytest.raises(ValidationFailed):
        await kit.accounts.confirm_totp(ana, "000000", actor=f"admin:{ANA}")
    assert not (await kit.accounts.get(ana)).totp_enabled
    totp = pyotp.TOTP(enrolment.secret)
    codes = await kit.accounts.confirm_totp(
        ana, totp.at(int(kit.clock.now())), actor=f"admin:{ANA}"
    )
    assert len(set(codes)) == 10
    assert (await kit.accounts.get(ana)).totp_enabled
    with pytest.raises(ValidationFailed):
        await kit.accounts.begin_totp(ana)
    fresh = await kit.accounts.new_recovery_codes(ana, actor=f"admin:{ANA}")
    assert not set(fresh) & set(codes)
    login = await kit.auth.login(ANA, PASSWORD, client="192.0.2.1", user_agent="")
    with pytest.raises(LoginRefused):
        await kit.auth.second_factor(login.cookie, codes[0], client="192.0.2.1")  # replaced
    await kit.auth.second_factor(login.cookie, fresh[0], client="192.0.2.1")
    await kit.accounts.disable_totp(ana, actor=f"admin:{ANA}")
    result = await kit.auth.login(ANA, PASSWORD, client="192.0.2.1", user_agent="")
    assert not result.second_factor_needed
    actions = [e.action for e in await kit.audit()]
    assert {"account.totp_enabled", "account.recovery_codes", "account.totp_disabled"} <= set(
        actions
    )


# --- the invitation email -----------------------------------------------------------------


def settings_for(port: int) -> Settings:
    base = Settings()
    return base.replace(
        checkout=dataclasses.replace(
            base.checkout, org_name="Riverside Youth Basketball", default_locale="en"
        ),
        email=dataclasses.replace(
            base.email, host="127.0.0.1", port=port, from_address="club@riverside.example"
        ),
    )


def mailing_kit(db: Database, clock: FakeClock, port: int) -> AccountsKit:
    settings = settings_for(port)
    environments = email_environments(str(resource_dir("templates")), "Europe/Lisbon")
    composer = AccountLinkComposer(
        db, AccountLinks(SECRET_KEYS, PUBLIC_URL), settings, clock, environments
    )
    outbox = Outbox(
        db,
        clock,
        mailer=SmtpMailer(
            EmailSettings(
                host="127.0.0.1",
                port=port,
                from_address="club@riverside.example",
                timeout=Duration(5.0),
            )
        ),
        composers={Kind.INVITATION: composer, Kind.PASSWORD_RESET: composer},
        domain="riverside.example",
    )
    return AccountsKit(db, clock, outbox=outbox)


def body_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


async def test_invite_emails_a_link_built_when_sent_that_works_once(
    db: Database, clock: FakeClock, mail_sink: MailSink
) -> None:
    kit = mailing_kit(db, clock, mail_sink.port)
    invitation = await kit.accounts.invite(
        BEA, Role.TREASURER, name="Bea", actor=f"admin:{ANA}", locale="es"
    )
    assert invitation.emailed
    [sent] = mail_sink.messages
    assert sent.recipients == (BEA,)
    text = body_of(sent.message)
    assert invitation.url in text
    assert sent.message["Content-Language"] == "es"
    html = sent.message.get_body(("html",))
    assert html is not None and invitation.url in str(html.get_content())
    async with db.read() as session:
        row = (await session.execute(sa.select(OutboxMessage))).scalar_one()
    assert row.kind == "invitation" and row.state == "sent"
    assert token_of(invitation.url) not in row.payload
    assert json.loads(row.payload)["token_id"] == token_of(invitation.url).split(".")[0]
    await kit.accounts.accept(token_of(invitation.url), PASSWORD)
    assert (await kit.audit("account.invited"))[0].actor == f"admin:{ANA}"


async def test_an_email_for_a_link_used_or_expired_before_it_went_is_skipped(
    db: Database, clock: FakeClock, mail_sink: MailSink
) -> None:
    kit = mailing_kit(db, clock, mail_sink.port)
    await kit.active(ANA)
    # Owed, not sent yet (as when the SMTP server was down): the reset is used meanwhile.
    async with db.write() as session:
        account = (await session.execute(sa.select(Account))).scalar_one()
        row_id, _, outbox_id = await kit.accounts._issue(
            session, account, "reset", actor=CLI, now=kit.accounts.now(), send=True, locale="en"
        )
    await kit.accounts.accept(kit.links.token(row_id), OTHER_PASSWORD)
    assert outbox_id is not None
    delivery = await kit.outbox.send_one(outbox_id)
    assert delivery is not None and delivery.outcome == "skipped"
    assert mail_sink.messages == []


async def test_reset_by_email(db: Database, clock: FakeClock, mail_sink: MailSink) -> None:
    kit = mailing_kit(db, clock, mail_sink.port)
    await kit.active(ANA)
    reset = await kit.accounts.reset(ANA, actor=CLI, send=True)
    [sent] = mail_sink.messages
    assert reset.url in body_of(sent.message)
    assert "new password" in str(sent.message["Subject"])


async def test_invite_without_mail_still_gives_the_link(kit: AccountsKit) -> None:
    invitation = await kit.accounts.invite(BEA, Role.VIEWER, actor=f"admin:{ANA}", locale="en")
    assert not invitation.emailed
    await kit.accounts.accept(token_of(invitation.url), PASSWORD)


async def test_no_accounts_service_without_signing_keys() -> None:
    from gateway.config import ConfigError

    with pytest.raises(ConfigError):
        AccountLinks.from_settings(Settings())
    assert isinstance(AccountLinks.from_settings(Settings().replace(demo=True)).token("at_x"), str)
    _ = Accounts  # the class the wiring builds with these links


async def test_reset_of_an_account_that_never_set_a_password_invites_again(
    kit: AccountsKit,
) -> None:
    first = await kit.accounts.add(ANA, Role.VIEWER, actor=CLI)
    kit.clock.advance(73 * 3600)  # the invitation was lost and expired
    again = await kit.accounts.reset(ANA, actor=CLI, send=False)
    assert again.purpose == "invite" and "/admin/invitation/" in again.url
    assert again.expires_at - kit.accounts.now() == timedelta(hours=72)
    with pytest.raises(AccountLinkInvalid):
        await kit.accounts.accept(token_of(first.url), PASSWORD)
    await kit.accounts.accept(token_of(again.url), PASSWORD)
    assert len(await kit.audit("account.reinvited")) == 1


@pytest.mark.parametrize("reset", [False, True])
def test_the_email_renders_in_every_offered_language(reset: bool) -> None:
    from gateway.domain.locales import OFFERED

    settings = settings_for(25)
    environments = email_environments(str(resource_dir("templates")), "Europe/Lisbon")
    composer = AccountLinkComposer(
        None,  # type: ignore[arg-type]  # build() reads nothing
        AccountLinks(SECRET_KEYS, PUBLIC_URL),
        settings,
        FakeClock(),
        environments,
    )
    url = f"{PUBLIC_URL}/admin/invitation/at_x.sig"
    for locale in OFFERED:
        message = composer.build(
            url=url,
            recipient=BEA,
            name="Bea <b>",
            role="treasurer",
            expires_at=datetime(2026, 12, 10, 7, 0, tzinfo=UTC),
            reset=reset,
            inviter=ANA,
            locale=locale,
            now=datetime(2026, 12, 7, 7, 0, tzinfo=UTC),
        )
        assert url in body_of(message), locale
        html = message.get_body(("html",))
        assert html is not None
        content = str(html.get_content())
        assert url in content and "Bea &lt;b&gt;" in content and "<b>" not in content
        assert message["Content-Language"] == locale
