"""The console's links list page (gateway.web.console.links) on both databases: search, filters,
orders and pages as a treasurer sees them; bulk actions asked then done; the CSV export; and a
viewer who sees no action, masked emails, and whose POST and export are refused."""

from __future__ import annotations

import csv
import html
import io
import re
from urllib.parse import urlencode

import sqlalchemy as sa

from gateway.adapters.db.models import AuditEntry, Link
from gateway.services.links import IssuedLink
from gateway.web.keys import DATABASE, LINKS
from tests.console.support import ConsoleClient, ConsoleHarness
from tests.harness import forge

TREASURER = "admin:treasurer@riverside.example"


async def three(console: ConsoleHarness) -> dict[str, IssuedLink]:
    """Three links a minute apart (oldest first)."""
    links = {}
    for key, ref, email, name in (
        ("maya", "U12-001", "Sam.Rivera@Example.com", "Sam Rivera"),
        ("leo", "U12-002", "jo@example.org", "Jo Okafor"),
        ("ana", "U14-001", "ana@club.example", "Ana Núñez"),
    ):
        links[key] = await console.issue(ref=ref, email=email, name=name)
        console.clock.advance(60)
    return links


def listed(page: str) -> list[str]:
    """The link ids in the page's table, in order."""
    return re.findall(r'href="/admin/links/(lk_[A-Za-z0-9_-]{12})"', page)


async def entries(console: ConsoleHarness, action: str) -> list[AuditEntry]:
    async with console.app[DATABASE].read() as session:
        rows = await session.execute(
            sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
        return list(rows.scalars())


async def revoked_ids(console: ConsoleHarness) -> set[str]:
    async with console.app[DATABASE].read() as session:
        rows = await session.execute(sa.select(Link.id).where(Link.revoked_at.is_not(None)))
        return set(rows.scalars())


class TestTheList:
    async def test_search_by_email_and_by_pasted_url(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        links = await three(console)
        page = await treasurer.page("/links?" + urlencode({"q": "sam.rivera@example.com"}))
        assert listed(page) == [links["maya"].id]
        assert "Payer email sam.rivera@example.com" in html.unescape(page)
        assert "Sam.Rivera@Example.com" in page  # a treasurer sees the address
        page = await treasurer.page("/links?" + urlencode({"q": links["leo"].url}))
        assert listed(page) == [links["leo"].id]
        assert "Payment URL of link" in page
        page = await treasurer.page("/links?" + urlencode({"q": "U12-"}))
        assert listed(page) == [links["leo"].id, links["maya"].id]
        assert "Reference prefix &#39;U12-&#39;" in page or "Reference prefix 'U12-'" in page

    async def test_a_forged_url_finds_nothing_and_says_why(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        links = await three(console)
        forged = links["ana"].url.replace(links["ana"].token, forge(links["ana"].token))
        page = await treasurer.page("/links?" + urlencode({"q": forged}))
        assert listed(page) == []
        assert "not made by this gateway" in page

    async def test_status_filter_order_and_pages(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        ids = []
        for i in range(55):
            ids.append((await console.issue(ref=f"P-{i:03d}", items=[f"Fee={i + 1}.00"])).id)
            console.clock.advance(1)
        first = await treasurer.page("/links")
        assert listed(first) == ids[::-1][:50]
        assert "55 links" in first
        next_url = html.unescape(re.search(r'href="([^"]+)" rel="next"', first)[1])  # type: ignore[index]
        second = await treasurer.page(next_url)
        assert listed(second) == ids[::-1][50:]
        by_amount = await treasurer.page("/links?sort=amount_asc")
        assert listed(by_amount) == ids[:50]
        next_url = html.unescape(re.search(r'href="([^"]+)" rel="next"', by_amount)[1])  # type: ignore[index]
        assert "offset=50" in next_url
        assert listed(await treasurer.page(next_url)) == ids[50:]
        await console.app[LINKS].revoke(ids[3], actor="test")
        revoked = await treasurer.page("/links?status=revoked")
        assert listed(revoked) == [ids[3]]

    async def test_bad_filters_are_named_and_the_page_is_a_400(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        await three(console)
        response = await treasurer.get(
            "/links?" + urlencode({"status": "lost", "from": "2026-13-40", "sort": "random"})
        )
        assert response.status == 400
        page = await response.text()
        assert 'class="error-summary"' in page
        for name in ("status", "from", "sort"):
            assert f'href="#{name}"' in page
        assert listed(page) == []
        response = await treasurer.get("/links?" + urlencode({"q": "x" * 400}))
        assert response.status == 400
        response = await treasurer.get("/links?cursor=not-a-cursor")
        assert response.status == 400


class TestBulkActions:
    async def test_revoke_asks_first_then_acts_on_the_eligible(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        links = await three(console)
        await console.pay_flow(links["ana"])
        ids = [link.id for link in links.values()]
        back = urlencode({"q": "U1"})
        response = await treasurer.post(
            "/links/actions", {"action": "revoke", "link": ids, "back": back}
        )
        assert response.status == 200
        page = html.unescape(await response.text())
        assert "3 selected" in page and "1 skipped" in page and "(paid)" in page
        assert "Revoke 2 links" in page
        assert await revoked_ids(console) == set()  # asking changes nothing
        response = await treasurer.post(
            "/links/actions",
            {"action": "revoke", "link": ids, "back": back, "confirm": "yes", "reason": "moved"},
        )
        assert response.status == 303
        assert response.headers["Location"].startswith("/admin/links?q=U1")
        assert await revoked_ids(console) == {links["maya"].id, links["leo"].id}
        actors = {e.actor for e in await entries(console, "link.revoked")}
        assert actors == {TREASURER}
        (summary,) = await entries(console, "bulk.revoke")
        assert summary.actor == TREASURER

    async def test_send_again_asks_with_the_count(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        links = await three(console)
        await console.app[LINKS].revoke(links["ana"].id, actor="test")
        ids = [link.id for link in links.values()]
        response = await treasurer.post("/links/actions", {"action": "resend", "link": ids})
        page = html.unescape(await response.text())
        assert "3 selected" in page and "(revoked)" in page and "Send again to 2 payers" in page
        response = await treasurer.post(
            "/links/actions", {"action": "resend", "link": ids, "confirm": "yes"}
        )
        assert response.status == 303
        sent = await entries(console, "bulk.resend")
        assert len(sent) == 1 and sent[0].detail is not None
        assert sent[0].detail.startswith("3 selected, 2 done")

    async def test_nothing_ticked_is_named_on_the_list(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        await three(console)
        response = await treasurer.post("/links/actions", {"action": "revoke"})
        assert response.status == 400
        page = await response.text()
        assert 'href="#selection"' in page and "select at least one link" in page


class TestExport:
    async def test_the_current_filter_as_csv_audited(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        links = await three(console)
        response = await treasurer.get("/links/export.csv?" + urlencode({"q": "U12-"}))
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        assert "attachment" in response.headers["Content-Disposition"]
        text = (await response.read()).decode("utf-8").lstrip("\ufeff")
        rows = list(csv.reader(io.StringIO(text)))
        assert [r[0] for r in rows[1:]] == [links["leo"].id, links["maya"].id]
        assert "Sam.Rivera@Example.com" in text
        (entry,) = await entries(console, "export")
        assert entry.actor == TREASURER and entry.detail is not None
        assert "2 rows (complete)" in entry.detail

    async def test_a_cross_site_request_is_refused(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        await three(console)
        response = await treasurer.get(
            "/links/export.csv", headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert response.status == 403
        assert await entries(console, "export") == []


class TestViewer:
    async def test_sees_no_action_masked_emails_and_is_refused(
        self, console: ConsoleHarness, viewer: ConsoleClient
    ) -> None:
        links = await three(console)
        page = await viewer.page("/links")
        assert len(listed(page)) == 3
        assert 'name="action"' not in page and 'type="checkbox"' not in page
        assert "export.csv" not in page
        assert "Sam.Rivera@Example.com" not in page and "S•••@E•••.com" in page
        response = await viewer.post(
            "/links/actions",
            {"action": "revoke", "link": [links["maya"].id], "confirm": "yes"},
        )
        assert response.status == 403
        assert await revoked_ids(console) == set()
        assert (await viewer.get("/links/export.csv")).status == 403
        assert await entries(console, "export") == []

    async def test_finds_by_a_whole_address_only(
        self, console: ConsoleHarness, viewer: ConsoleClient
    ) -> None:
        # Masked addresses stay masked: matching their start one character more at a time
        # would spell them out.
        links = await three(console)
        page = await viewer.page("/links?" + urlencode({"q": "sam.rivera@example.com"}))
        assert listed(page) == [links["maya"].id]
        for start in ("sam.rivera@exa", "sam.r", "name:sam.r"):
            page = await viewer.page("/links?" + urlencode({"q": start}))
            assert listed(page) == [], start
        page = await viewer.page("/links?" + urlencode({"q": "sam.rivera@exa"}))
        assert "whole email address only" in page
        page = await viewer.page("/links?" + urlencode({"q": "Rivera"}))
        assert listed(page) == [links["maya"].id]  # names are not masked
