"""The console's Bulk upload page (issue 15 item 9) on SQLite and PostgreSQL: the preview shows
every row's payer, items, parsed total and problems and creates nothing; the confirm creates
exactly the previewed rows (and emails them when asked); the same file again creates nothing
new; files too large, unreadable or tampered with are refused with a clear page."""

from __future__ import annotations

import base64
import html
import io
import re
from typing import Any

from aiohttp import FormData

from gateway.dev.demo_mail import MailSink
from tests.console.support import ConsoleClient, ConsoleHarness

CSV = (
    "email,name,ref,items\n"
    "sam.parent@example.com,Sam Rivera,FAM-0042,Spring fee=150.00|Kit=120.00\n"
    "lee.parent@example.com,Lee Chen,FAM-0043,Spring fee=150.00\n"
    'not-an-email,Kim Ito,FAM-0044,"Spring fee=150,00"\n'
)
GOOD_CSV = "".join(CSV.splitlines(keepends=True)[:3])
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def text_of(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def confirm_form(page: str) -> dict[str, str]:
    start = page.index('name="confirm"')
    form_start = page.rindex("<form", 0, start)
    form_end = page.index("</form>", start)
    fields = dict(_HIDDEN.findall(page[form_start:form_end]))
    return {name: html.unescape(value) for name, value in fields.items()}


def rows_of(page: str) -> dict[str, str]:
    """The preview table's rows by row number: each row's text."""
    body = page[page.index("<tbody>") : page.index("</tbody>")]
    rows = {}
    for cells in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
        text = text_of(cells)
        rows[text.split(" ", 1)[0]] = text
    return rows


async def upload(
    person: ConsoleClient, content: bytes | str, *, send: bool = False, name: str = "club.csv"
) -> Any:
    form = FormData()
    form.add_field("csrf", person.csrf_token)
    if send:
        form.add_field("send", "1")
    data = content.encode() if isinstance(content, str) else content
    form.add_field("file", io.BytesIO(data), filename=name, content_type="text/csv")
    return await person.client.post("/admin/bulk", data=form, allow_redirects=False)


async def links(console: ConsoleHarness) -> list[dict[str, Any]]:
    response = await console.api("GET", "/links")
    assert response.status == 200
    return list((await response.json())["links"])


class TestPreview:
    async def test_the_page_explains_the_file(self, treasurer: ConsoleClient) -> None:
        page = await treasurer.page("/bulk")
        assert 'type="file"' in page and 'enctype="multipart/form-data"' in page
        assert "Spring fee=150.00|Kit=120.00" in page

    async def test_every_row_with_its_total_and_problems_nothing_created(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        response = await upload(treasurer, CSV)
        assert response.status == 200
        page = await response.text()
        rows = rows_of(page)
        assert set(rows) == {"2", "3", "4"}  # the spreadsheet's row numbers
        assert "Sam Rivera" in rows["2"] and "sam.parent@example.com" in rows["2"]
        assert "Spring fee: $150.00" in rows["2"] and "Kit: $120.00" in rows["2"]
        assert "$270.00" in rows["2"] and "Will be created" in rows["2"]
        assert "$150.00" in rows["3"]
        # Every problem of the bad row, the ambiguous amount saying how to write it.
        assert "Kim Ito" in rows["4"]
        assert "email: not an email address" in rows["4"]
        assert "ambiguous" in rows["4"] and "150.00" in rows["4"]
        text = text_of(page)
        assert "2 links to create" in text and "1 row with problems" in text
        assert "Create 2 links" in text and "will be skipped" in text
        assert await links(console) == []

    async def test_semicolons_and_windows_1252_as_a_spreadsheet_writes_them(
        self, treasurer: ConsoleClient
    ) -> None:
        content = "email;name;ref;amount\r\nana@example.com;José Núñez;R-1;80.00\r\n"
        response = await upload(treasurer, content.encode("cp1252"))
        assert response.status == 200
        page = await response.text()
        assert "José Núñez" in text_of(page)
        assert "read as Windows-1252" in text_of(page)
        assert "$80.00" in rows_of(page)["2"]

    async def test_an_unreadable_file_is_a_400_naming_the_problem(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        response = await upload(treasurer, "who,what\nx,y\n")
        assert response.status == 400
        page = await response.text()
        assert '<a href="#file">' in page and "missing column(s)" in text_of(page)
        workbook = await upload(treasurer, b"PK\x03\x04" + b"\x00" * 64, name="club.xlsx")
        assert workbook.status == 400
        assert "not a CSV" in text_of(await workbook.text())
        utf16 = await upload(treasurer, GOOD_CSV.encode("utf-16"))
        assert utf16.status == 400 and "UTF-16" in text_of(await utf16.text())
        assert await links(console) == []

    async def test_the_page_in_the_readers_language(self, treasurer: ConsoleClient) -> None:
        response = await treasurer.get("/bulk", headers={"Accept-Language": "es"})
        assert response.status == 200
        assert '<html lang="es">' in await response.text()
        preview = await upload(treasurer, CSV)
        assert preview.status == 200


class TestConfirm:
    async def test_confirm_creates_the_previewed_rows_then_a_reupload_creates_nothing(
        self, console: ConsoleHarness, treasurer: ConsoleClient, mail_sink: MailSink
    ) -> None:
        page = await (await upload(treasurer, CSV)).text()
        form = confirm_form(page)
        assert form["skip_invalid"] == "1"
        response = await treasurer.post("/bulk", form)
        assert response.status == 200
        done = await response.text()
        assert "2 links created" in text_of(done)
        rows = rows_of(done)
        assert "Created" in rows["2"] and "Created" in rows["3"] and "ambiguous" in rows["4"]
        made = await links(console)
        assert sorted(link["ref"] for link in made) == ["FAM-0042", "FAM-0043"]
        assert {link["amount_total"] for link in made} == {27000, 15000}
        assert mail_sink.messages == []  # not asked to email
        # The same confirm again (a second press, the back button): nothing new.
        again = await treasurer.post("/bulk", form)
        assert again.status in (200, 409)
        assert len(await links(console)) == 2
        # The same file uploaded again: every row already issued, nothing to create.
        page = await (await upload(treasurer, CSV)).text()
        rows = rows_of(page)
        assert "Already issued" in rows["2"] and "Already issued" in rows["3"]
        assert 'name="confirm"' not in page
        assert "Nothing to create" in text_of(page)
        assert len(await links(console)) == 2

    async def test_create_and_email_them(
        self, console: ConsoleHarness, treasurer: ConsoleClient, mail_sink: MailSink
    ) -> None:
        page = await (await upload(treasurer, GOOD_CSV, send=True)).text()
        assert "Create 2 links and email them" in text_of(page)
        form = confirm_form(page)
        form["send"] = "1"  # the ticked checkbox
        response = await treasurer.post("/bulk", form)
        assert response.status == 200
        assert "2 emails sent" in text_of(await response.text())
        assert len(mail_sink.to("sam.parent@example.com")) == 1
        assert len(mail_sink.to("lee.parent@example.com")) == 1
        assert len(await links(console)) == 2

    async def test_links_issued_since_the_preview_stop_the_confirm(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        page = await (await upload(treasurer, GOOD_CSV)).text()
        form = confirm_form(page)
        made = await console.api(
            "POST",
            "/links",
            json={
                "email": "lee.parent@example.com",
                "name": "Lee Chen",
                "ref": "FAM-0043",
                "items": ["Spring fee=150.00"],
            },
        )
        assert made.status == 201
        response = await treasurer.post("/bulk", form)
        assert response.status == 409
        text = text_of(await response.text())
        assert "Something changed since the preview" in text and "Create 1 link" in text
        assert len(await links(console)) == 1

    async def test_a_tampered_copy_is_refused(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        page = await (await upload(treasurer, GOOD_CSV)).text()
        form = confirm_form(page)
        other = GOOD_CSV.replace("150.00", "15.00")
        form["content"] = base64.b64encode(other.encode()).decode()
        response = await treasurer.post("/bulk", form)
        assert response.status == 400
        assert "did not come back intact" in text_of(await response.text())
        assert await links(console) == []


class TestBounds:
    async def test_a_file_over_the_pages_cap_is_a_413_saying_so(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        row = "sam.parent@example.com,Sam Rivera,FAM-{n},Spring fee=150.00\n"
        content = "email,name,ref,items\n" + "".join(row.format(n=n) for n in range(11000))
        assert 512 * 1024 < len(content) < 1024 * 1024
        response = await upload(treasurer, content)
        assert response.status == 413
        assert "larger than 512 KB" in text_of(await response.text())
        assert await links(console) == []

    async def test_a_2mb_file_is_refused_cleanly(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        content = b"email,name,ref,items\n" + b"x" * (2 * 1024 * 1024 + 10)
        response = await upload(treasurer, content)
        assert response.status == 413
        assert "too large" in text_of(await response.text())
        assert await links(console) == []
        # The session still works afterwards.
        assert "Bulk upload" in await treasurer.page("/bulk")

    async def test_a_viewer_cannot_upload(
        self, console: ConsoleHarness, viewer: ConsoleClient
    ) -> None:
        assert (await viewer.get("/bulk")).status == 403
        response = await upload(viewer, GOOD_CSV)
        assert response.status == 403
        assert await links(console) == []
