"""The console's New link page (issue 15 item 9) on SQLite and PostgreSQL: the check step shows
what the server parsed, ambiguous money is refused next to its field, the confirm creates one
link (and emails it when asked), a ref with a live link gives that link back unless allowed,
and a viewer can do none of it."""

from __future__ import annotations

import html
import re
from typing import Any

from gateway.dev.demo_mail import MailSink
from tests.console.support import ConsoleClient, ConsoleHarness

FORM = {
    "name": "Sam Rivera",
    "email": "sam.parent@example.com",
    "item-1-label": "Spring fee",
    "item-1-amount": "150.00",
    "item-2-label": "Kit",
    "item-2-amount": "120.00",
    "currency": "usd",
    "ref": "FAM-0042",
    "valid_days": "30",
    "locale": "",
}
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def text_of(page: str) -> str:
    """The page's text, tags removed and whitespace folded (what a person reads)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def confirm_form(page: str) -> dict[str, str]:
    """The check step's "Create link" form: its hidden fields, as a browser would post them."""
    start = page.index('name="confirm"')
    form_start = page.rindex("<form", 0, start)
    form_end = page.index("</form>", start)
    fields = dict(_HIDDEN.findall(page[form_start:form_end]))
    return {name: html.unescape(value) for name, value in fields.items()}


async def links(console: ConsoleHarness) -> list[dict[str, Any]]:
    response = await console.api("GET", "/links")
    assert response.status == 200
    return list((await response.json())["links"])


async def check(person: ConsoleClient, **changes: str) -> tuple[int, str]:
    response = await person.post("/links/new", {**FORM, **changes})
    return response.status, await response.text()


class TestCheckStep:
    async def test_the_form_is_there_with_the_default_currency(
        self, treasurer: ConsoleClient
    ) -> None:
        page = await treasurer.page("/links/new")
        assert 'name="item-5-amount"' in page  # five rows without JavaScript
        assert '<option value="usd" selected>' in page
        assert "console-new." in page  # the page's script and styles

    async def test_check_shows_what_the_server_parsed_and_creates_nothing(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        status, page = await check(treasurer)
        assert status == 200
        text = text_of(page)
        assert "You are asking Sam Rivera for $270.00:" in text
        assert "Spring fee: $150.00" in text and "Kit: $120.00" in text
        form = confirm_form(page)
        assert form["confirm"] == "1" and form["item-1-amount"] == "150.00"
        assert "Create link" in text
        assert await links(console) == []

    async def test_a_quantity_and_thousands_are_read_and_shown(
        self, treasurer: ConsoleClient
    ) -> None:
        status, page = await check(
            treasurer, **{"item-2-amount": "25.50x2", "item-1-amount": "1,500.00"}
        )
        assert status == 200
        text = text_of(page)
        assert "You are asking Sam Rivera for $1,551.00:" in text
        assert "Kit: $51.00 (2 × $25.50)" in text

    async def test_an_ambiguous_amount_is_refused_next_to_its_field(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        status, page = await check(treasurer, **{"item-2-amount": "150,00"})
        assert status == 422
        assert "There is a problem" in page
        # In the summary, linking to the field, and next to the field itself.
        assert '<a href="#item-2-amount">' in page
        error = re.search(r'<p class="error" id="item-2-amount-error">(.*?)</p>', page, re.S)
        assert error is not None
        message = text_of(error.group(1))
        assert "ambiguous" in message and "150.00" in message and "1,500.00" in message
        assert 'aria-invalid="true"' in page
        assert 'name="confirm"' not in page  # nothing to confirm
        # What was typed is shown back as typed.
        assert 'value="150,00"' in page
        assert await links(console) == []

    async def test_every_problem_is_named_at_once(self, treasurer: ConsoleClient) -> None:
        status, page = await check(
            treasurer,
            email="",
            name="",
            **{"item-1-amount": "", "item-3-amount": "5"},
            currency="xyz",
            valid_days="soon",
        )
        assert status == 422
        for anchor in ("email", "name", "item-1-amount", "item-3-label", "currency", "valid_days"):
            assert f'<a href="#{anchor}">' in page, anchor

    async def test_below_stripes_minimum_is_refused(self, treasurer: ConsoleClient) -> None:
        status, page = await check(
            treasurer, **{"item-1-amount": "0.20", "item-2-label": "", "item-2-amount": ""}
        )
        assert status == 422
        assert "minimum charge of 0.50 USD" in text_of(page)

    async def test_the_pages_in_the_readers_language(self, treasurer: ConsoleClient) -> None:
        for language in ("es", "pt-BR", "fr"):
            response = await treasurer.client.post(
                "/admin/links/new",
                data={**FORM, "csrf": treasurer.csrf_token},
                headers={"Accept-Language": language},
            )
            assert response.status == 200, language
            page = await response.text()
            assert f'<html lang="{language}">' in page
            assert "Sam Rivera" in page and 'name="confirm"' in page


class TestCreate:
    async def test_confirm_creates_exactly_one_link_and_goes_to_it(
        self, console: ConsoleHarness, treasurer: ConsoleClient, mail_sink: MailSink
    ) -> None:
        _, page = await check(treasurer)
        response = await treasurer.post("/links/new", confirm_form(page))
        assert response.status == 303
        (link,) = await links(console)
        assert link["ref"] == "FAM-0042" and link["amount_total"] == 27000
        assert link["currency"] == "usd"
        location = response.headers["Location"]
        assert location.startswith(f"/admin/links/{link['id']}")
        assert location.endswith("notice=link_created")
        assert mail_sink.to("sam.parent@example.com") == []  # not asked to send
        # The audit trail names the person.
        detail = await (await console.api("GET", f"/links/{link['id']}")).json()
        actors = {entry["actor"] for entry in detail["audit"]}
        assert "admin:treasurer@riverside.example" in actors

    async def test_send_now_emails_the_link(
        self, console: ConsoleHarness, treasurer: ConsoleClient, mail_sink: MailSink
    ) -> None:
        _, page = await check(treasurer, send="1")
        assert "Create and email" in page
        response = await treasurer.post("/links/new", confirm_form(page))
        assert response.status == 303
        assert response.headers["Location"].endswith("notice=link_created_sent")
        (link,) = await links(console)
        assert link["email_delivery"]["sent_count"] == 1
        (mail,) = mail_sink.to("sam.parent@example.com")
        assert "/pay/" in mail.text()

    async def test_a_changed_meaning_is_checked_again_not_created(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        _, page = await check(treasurer)
        form = confirm_form(page)
        form["item-1-amount"] = "15000.00"  # not what was shown
        response = await treasurer.post("/links/new", form)
        assert response.status == 409
        assert "You are asking Sam Rivera for $15,120.00:" in text_of(await response.text())
        assert await links(console) == []

    async def test_a_ref_with_a_live_link_shows_that_link_unless_allowed(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        first = await console.api(
            "POST",
            "/links",
            json={
                "email": "sam.parent@example.com",
                "name": "Sam Rivera",
                "ref": "FAM-0042",
                "items": ["Spring fee=150.00"],
            },
        )
        existing_id = (await first.json())["id"]
        status, page = await check(treasurer)
        assert status == 200
        text = text_of(page)
        assert "The reference FAM-0042 already has a live payment link:" in text
        assert f'href="/admin/links/{existing_id}"' in page
        assert 'name="confirm"' not in page  # no create button until allowed
        assert 'name="allow_duplicate"' in page
        # Forcing a confirm without the tick creates nothing.
        forced = {**FORM, "confirm": "1", "digest": "x"}
        response = await treasurer.post("/links/new", forced)
        assert response.status in (200, 409)
        assert len(await links(console)) == 1
        # Ticked: the check offers the button, and the confirm makes a second link.
        _, page = await check(treasurer, allow_duplicate="1")
        form = confirm_form(page)
        assert form["allow_duplicate"] == "1"
        response = await treasurer.post("/links/new", form)
        assert response.status == 303
        refs = [link["ref"] for link in await links(console)]
        assert refs == ["FAM-0042", "FAM-0042"]


class TestLivePreview:
    async def test_the_preview_answers_the_servers_reading(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        response = await treasurer.client.post(
            "/admin/links/new/preview",
            data=FORM,
            headers={"X-CSRF-Token": treasurer.csrf_token},
        )
        assert response.status == 200
        body = await response.json()
        assert body["ok"] is True and body["total"] == "270.00 USD"
        assert "You are asking Sam Rivera for $270.00:" in text_of(body["html"])
        bad = await treasurer.client.post(
            "/admin/links/new/preview",
            data={**FORM, "item-1-amount": "150,00"},
            headers={"X-CSRF-Token": treasurer.csrf_token},
        )
        answer = await bad.json()
        assert answer["ok"] is False and "ambiguous" in answer["errors"]["item-1-amount"]
        assert await links(console) == []

    async def test_the_preview_needs_the_csrf_token(self, treasurer: ConsoleClient) -> None:
        response = await treasurer.client.post("/admin/links/new/preview", data=FORM)
        assert response.status == 403


class TestViewer:
    async def test_a_viewer_can_neither_see_the_form_nor_post_it(
        self, console: ConsoleHarness, viewer: ConsoleClient
    ) -> None:
        assert (await viewer.get("/links/new")).status == 403
        response = await viewer.post("/links/new", {**FORM, "confirm": "1"})
        assert response.status == 403
        preview = await viewer.client.post(
            "/admin/links/new/preview", data=FORM, headers={"X-CSRF-Token": viewer.csrf_token}
        )
        assert preview.status == 403
        assert 'href="/admin/links/new"' not in await viewer.page("/account")
        assert await links(console) == []

    async def test_a_post_without_the_csrf_token_creates_nothing(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        response = await treasurer.post("/links/new", {**FORM, "confirm": "1"}, csrf=False)
        assert response.status == 403
        assert await links(console) == []
