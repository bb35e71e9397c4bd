"""The console's home page (issue 15 item 6) through the real app, on SQLite and PostgreSQL:
figures per currency with amounts in the reader's format, Needs attention linking each item to
its link's page, the same for every role (a viewer included), and no write on GET."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from gateway.adapters.db.models import AuditEntry, Link, Order
from gateway.web.keys import DATABASE, OVERVIEW
from tests.console.support import ConsoleClient, ConsoleHarness


def figure(html: str, name: str) -> str:
    """The text of one figure card (the first currency's)."""
    found = re.search(rf'data-figure="{name}">(.*?)</div>', html, re.S)
    assert found, name
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()


async def table_counts(console: ConsoleHarness) -> dict[str, int]:
    async with console.app[DATABASE].read() as session:
        counts = {}
        for model in (Link, Order, AuditEntry):
            counts[model.__tablename__] = (
                await session.execute(sa.select(sa.func.count()).select_from(model))
            ).scalar_one()
        return counts


class TestOverviewPage:
    async def test_an_empty_gateway(self, console: ConsoleHarness, viewer: ConsoleClient) -> None:
        html = await viewer.page("/")
        assert "Nothing needs attention." in html
        assert html.count("No links were issued in this period.") == 2
        assert "<h1>Overview</h1>" in html

    async def test_figures_and_what_needs_attention(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        paid = await console.issue(["Spring fee=150.00"], ref="2027-01/paid")
        await console.pay_flow(paid)
        soon = await console.issue(["Kit=30.00"], ref="2027-01/soon", valid_for=2 * 86400)
        await console.issue(["Trip=20.00"], ref="2027-01/later")

        html = await treasurer.page("/")
        assert figure(html, "issued") == "Issued $200.00 3 links"
        assert figure(html, "paid") == "Paid $150.00 1 link"
        assert figure(html, "outstanding") == "Outstanding $50.00 2 links"
        assert figure(html, "refunded") == "Refunded $0.00 0 links"
        # Needs attention: the link expiring in two days, linked to its page.
        assert 'data-kind="expiring"' in html
        assert f'href="/admin/links/{soon.id}"' in html
        assert "2027-01/soon expires soon and has not been paid" in html
        assert "($30.00)" in html
        assert "2027-01/later" not in html

    async def test_a_duplicate_payment_and_more_than_are_shown(
        self, console: ConsoleHarness, admin: ConsoleClient
    ) -> None:
        now = datetime.fromtimestamp(console.clock.now(), UTC)
        links = [await console.issue(ref=f"2027-01/d{n}") for n in range(7)]
        async with console.app[DATABASE].write() as session:
            for n, link in enumerate(links):
                for number, duplicate_of in ((1, None), (2, f"ord_{n}_1")):
                    session.add(
                        Order(
                            id=f"ord_{n}_{number}",
                            link_id=link.id,
                            status="paid",
                            amount_total=15000,
                            currency="usd",
                            created_at=now,
                            updated_at=now,
                            paid_at=now - timedelta(minutes=n),
                            duplicate_of=duplicate_of,
                        )
                    )
        html = await admin.page("/")
        section = html.split('data-kind="duplicate"', 1)[1].split("</div>", 1)[0]
        assert section.count("was paid twice: refund the second payment") == 5
        assert "and 2 more" in section
        assert 'href="/admin/links?status=duplicate"' in section

    async def test_the_page_is_in_the_readers_language(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        await console.issue(["Spring fee=150.00"], ref="2027-01/es")
        response = await treasurer.get("/", headers={"Accept-Language": "es"})
        html = await response.text()
        assert response.headers["Content-Language"] == "es"
        # CLDR's Spanish amount: "150,00 US$".
        assert "150,00" in figure(html, "issued")

    async def test_a_get_writes_nothing(
        self, console: ConsoleHarness, viewer: ConsoleClient
    ) -> None:
        await console.issue(ref="2027-01/x", valid_for=86400)
        before = await table_counts(console)
        await viewer.page("/")
        assert await table_counts(console) == before

    async def test_without_a_login_it_asks_for_one(self, console: ConsoleHarness) -> None:
        response = await console.client.get("/admin/", allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"].startswith("/admin/login")

    async def test_figures_are_the_services(self, console: ConsoleHarness) -> None:
        figures = await console.app[OVERVIEW].figures("season")
        assert figures.empty
