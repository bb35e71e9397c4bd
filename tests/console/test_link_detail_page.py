"""The link detail page (issue 15 item 8), on SQLite and PostgreSQL, through HTTP as a logged-in
treasurer and viewer: what it shows, send again, revoke with a reason and a confirmation, the
corrected link that replaces this one, and a viewer who sees everything (emails masked) but can
do nothing, the buttons absent AND the POSTs refused."""

from __future__ import annotations

import html

import sqlalchemy as sa

from gateway.adapters.db.models import AuditEntry, Link
from gateway.dev.demo_mail import MailSink
from gateway.web.keys import DATABASE, TIMELINE
from tests.console.support import ConsoleClient, ConsoleHarness
from tests.harness import session_id_from

PAYER = "parent@example.com"


async def audit_count(console: ConsoleHarness) -> int:
    async with console.app[DATABASE].read() as session:
        return int(
            (await session.execute(sa.select(sa.func.count()).select_from(AuditEntry))).scalar_one()
        )


async def link_row(console: ConsoleHarness, link_id: str) -> Link:
    async with console.app[DATABASE].read() as session:
        found = await session.get(Link, link_id)
    assert found is not None
    return found


async def test_the_page_shows_items_total_payer_page_and_history(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    link = await console.issue(("Spring fee=150.00", "Team kit=25.00x2"))
    before = await audit_count(console)
    page = await treasurer.page(f"/links/{link.id}")
    assert await audit_count(console) == before, "GET never writes"
    text = html.unescape(page)
    assert "Spring fee" in text and "Team kit" in text
    assert "$200.00" in text and "$50.00" in text  # the total and a line, CLDR-formatted
    assert "Issued" in text  # the status
    # The payer's page opens in a new tab; the address is in a read-only input to copy.
    # (from=console: a treasurer's look is not counted as the payer opening it)
    assert f'href="{link.url}?from=console" target="_blank" rel="noopener noreferrer"' in page
    assert f'id="link-url" type="text" readonly value="{link.url}"' in page
    assert 'data-copy="link-url"' in page and "/static/console-detail." in page
    # The history and the treasurer's actions.
    assert "Link created for 200.00 USD" in text
    assert PAYER in text
    assert f"/admin/links/{link.id}/send" in page
    assert f"/admin/links/{link.id}/revoke" in page
    assert f"/admin/links/{link.id}/correct" in page
    assert "refund" not in text.lower().split("history")[0], "no refund button yet"

    # A bot's previews and the payer's opens, each with the last time when repeated.
    console.clock.advance(60)
    for _ in range(2):
        assert (await console.get(link, headers={"User-Agent": "WhatsApp/2.23.20.0 A"})).ok
        assert (await console.get(link)).ok
        console.clock.advance(60)
    await console.flush_opens()
    text = html.unescape(await treasurer.page(f"/links/{link.id}"))
    assert "Link preview fetched by WhatsApp, 2 times in all" in text
    assert "Opened by the payer, 2 times in all" in text
    assert text.count("last: ") == 2


async def test_unknown_link_is_a_404(treasurer: ConsoleClient) -> None:
    assert (await treasurer.get("/links/lnk_nothing_here")).status == 404
    assert (await treasurer.get("/links/bad%20id!")).status == 404


async def test_revoke_needs_a_reason_and_a_confirmation_then_shows_in_the_history(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    link = await console.issue()
    before = await audit_count(console)
    refused = await treasurer.post(f"/links/{link.id}/revoke", {"reason": ""})
    assert refused.status == 422
    body = html.unescape(await refused.text())
    assert "There is a problem" in body
    assert "Say why the link is revoked" in body and "Tick the box to confirm" in body
    assert (await link_row(console, link.id)).revoked_at is None
    assert await audit_count(console) == before, "a refused form changes nothing"

    done = await treasurer.post(
        f"/links/{link.id}/revoke", {"reason": "Wrong amount", "confirm": "yes"}
    )
    assert done.status == 303
    assert done.headers["Location"] == f"/admin/links/{link.id}?notice=revoked"
    row = await link_row(console, link.id)
    assert row.revoked_at is not None and row.revoke_reason == "Wrong amount"
    assert row.revoked_by == "admin:treasurer@riverside.example"
    page = html.unescape(await treasurer.page(f"/links/{link.id}?notice=revoked"))
    assert "The payment link has been revoked." in page
    assert "Link revoked: Wrong amount" in page
    assert "by treasurer@riverside.example" in page
    # Revoked: no more revoke form nor send button.
    assert f"/admin/links/{link.id}/revoke" not in page
    assert f"/admin/links/{link.id}/send" not in page


async def test_send_again_emails_the_payer_and_a_revoked_link_is_refused(
    console: ConsoleHarness, treasurer: ConsoleClient, mail_sink: MailSink
) -> None:
    link = await console.issue()
    sent = await treasurer.post(f"/links/{link.id}/send")
    assert sent.status == 303 and sent.headers["Location"].endswith("?notice=sent")
    assert len(mail_sink.to(PAYER)) == 1
    page = html.unescape(await treasurer.page(f"/links/{link.id}"))
    assert "Payment link emailed" in page
    assert "by treasurer@riverside.example" in page

    await treasurer.post(f"/links/{link.id}/revoke", {"reason": "Duplicate", "confirm": "yes"})
    refused = await treasurer.post(f"/links/{link.id}/send")
    assert refused.status == 409
    assert "Only a link that can still be paid is emailed." in html.unescape(await refused.text())
    assert len(mail_sink.to(PAYER)) == 1


async def test_a_corrected_link_replaces_this_one(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    link = await console.issue(("Spring fee=150.00", "Team kit=25.00x2"), ref="2026/p7")
    form = html.unescape(await treasurer.page(f"/links/{link.id}/correct"))
    # Prefilled with the link's payer and items.
    assert "Spring fee=150.00\nTeam kit=25.00x2" in form
    assert 'value="Sam Rivera"' in form and f'value="{PAYER}"' in form

    fields = {
        "name": "Sam Rivera",
        "email": PAYER,
        "description": "Spring season",
        "ref": "2026/p7",
        "items": "Spring fee=120.00\nTeam kit=25.00x2",
        "valid_days": "30",
        "reason": "Sibling discount",
    }
    # Bad input: every problem named, nothing changed.
    before = await audit_count(console)
    bad = await treasurer.post(
        f"/links/{link.id}/correct", {**fields, "items": "Spring fee=abc", "email": "nope"}
    )
    assert bad.status == 422
    body = html.unescape(await bad.text())
    assert 'href="#items"' in body and 'href="#email"' in body and 'href="#confirm"' in body
    for days in ("0", "-3", "nan", "abc", "100000"):
        refused = await treasurer.post(
            f"/links/{link.id}/correct", {**fields, "valid_days": days, "confirm": "yes"}
        )
        assert refused.status == 422, days
        assert 'href="#valid_days"' in await refused.text(), days
    assert await audit_count(console) == before
    assert (await link_row(console, link.id)).revoked_at is None

    done = await treasurer.post(f"/links/{link.id}/correct", {**fields, "confirm": "yes"})
    assert done.status == 303, await done.text()
    location = done.headers["Location"]
    assert location.endswith("?notice=replaced")
    new_id = location.split("/admin/links/")[1].split("?")[0]
    assert new_id != link.id
    new = await link_row(console, new_id)
    assert new.replaces_id == link.id and new.amount_total == 17000 and new.ref == "2026/p7"
    assert new.created_by == "admin:treasurer@riverside.example"
    old = await link_row(console, link.id)
    assert old.revoked_at is not None and old.revoke_reason == "Sibling discount"
    # Both histories tell it.
    old_page = html.unescape(await treasurer.page(f"/links/{link.id}"))
    assert f"Replaced by link {new_id}" in old_page
    new_page = html.unescape(await treasurer.page(location))
    assert f"Issued in place of link {link.id}" in new_page
    assert "A corrected link has been issued" in new_page


async def test_a_paid_link_is_not_corrected(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    link = await console.issue()
    response = await console.post(link)
    console.emulator.pay(session_id_from(response.headers["Location"]))
    await console.emulator.deliver_webhooks()
    timeline = await console.app[TIMELINE].for_link(link.id)
    assert timeline.state == "paid"
    page = await treasurer.page(f"/links/{link.id}")
    assert f"/admin/links/{link.id}/correct" not in page
    assert (await treasurer.get(f"/links/{link.id}/correct")).status == 409
    refused = await treasurer.post(
        f"/links/{link.id}/correct",
        {
            "name": "Sam Rivera",
            "email": PAYER,
            "items": "Spring fee=1.00",
            "valid_days": "30",
            "confirm": "yes",
        },
    )
    assert refused.status == 409
    assert (await link_row(console, link.id)).revoked_at is None


async def test_a_viewer_sees_everything_masked_and_can_do_nothing(
    console: ConsoleHarness, viewer: ConsoleClient, mail_sink: MailSink
) -> None:
    link = await console.issue()
    page = html.unescape(await viewer.page(f"/links/{link.id}"))
    assert PAYER not in page
    assert "p•••@e•••.com" in page
    assert "Link created for 150.00 USD" in page
    for action in ("send", "revoke", "correct"):
        assert f"/admin/links/{link.id}/{action}" not in page
    before = await audit_count(console)
    for path, data in (
        ("send", {}),
        ("revoke", {"reason": "x", "confirm": "yes"}),
        ("correct", {"name": "A", "email": PAYER, "items": "Fee=1.00", "confirm": "yes"}),
    ):
        refused = await viewer.post(f"/links/{link.id}/{path}", data)
        assert refused.status == 403, path
    assert (await viewer.get(f"/links/{link.id}/correct")).status == 403
    assert await audit_count(console) == before
    assert (await link_row(console, link.id)).revoked_at is None
    assert mail_sink.to(PAYER) == []


async def test_a_post_without_the_csrf_token_is_refused(
    console: ConsoleHarness, treasurer: ConsoleClient
) -> None:
    link = await console.issue()
    refused = await treasurer.post(
        f"/links/{link.id}/revoke", {"reason": "x", "confirm": "yes"}, csrf=False
    )
    assert refused.status == 403
    assert (await link_row(console, link.id)).revoked_at is None


async def test_a_viewer_sees_addresses_masked_in_the_history_too(
    console: ConsoleHarness, treasurer: ConsoleClient, viewer: ConsoleClient
) -> None:
    link = await console.issue()
    await treasurer.post(
        f"/links/{link.id}/revoke",
        {"reason": "Asked by other.parent@example.org", "confirm": "yes"},
    )
    seen = html.unescape(await treasurer.page(f"/links/{link.id}"))
    assert "Link revoked: Asked by other.parent@example.org" in seen
    assert "by treasurer@riverside.example" in seen
    masked = html.unescape(await viewer.page(f"/links/{link.id}"))
    assert "other.parent@example.org" not in masked and "treasurer@riverside.example" not in masked
    assert "Link revoked: Asked by o•••@e•••.org" in masked
    assert "by t•••@r•••.example" in masked
