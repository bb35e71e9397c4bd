"""The Activity page: the audit trail with who did what, for admins only."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.services.audit import audit
from gateway.web.keys import DATABASE
from tests.console.support import ConsoleClient, ConsoleHarness


class TestActivity:
    async def test_logins_and_account_changes_show_with_their_actor(
        self, console: ConsoleHarness, admin: ConsoleClient
    ) -> None:
        failed = await console.new_client()
        await failed.post(
            "/admin/login",
            data={"email": "admin@riverside.example", "password": "wrong password here"},
        )

        html = await admin.page("/activity")

        assert "Logged in" in html
        assert "Failed login" in html
        assert "admin:admin@riverside.example" in html
        assert "wrong password here" not in html

    async def test_the_kind_filter_keeps_only_that_kind(
        self, console: ConsoleHarness, admin: ConsoleClient
    ) -> None:
        await console.api(
            "POST",
            "/links",
            json={
                "email": "sam@example.com",
                "name": "Sam Rivera",
                "description": "Spring fee",
                "currency": "usd",
                "items": ["Fee=150.00"],
            },
        )

        signins = await admin.page("/activity?kind=signins")
        links = await admin.page("/activity?kind=links")

        assert "Logged in" in signins and "Link issued" not in signins
        assert "Link issued" in links and "Logged in" not in links

    async def test_older_entries_are_on_the_next_page(
        self, console: ConsoleHarness, admin: ConsoleClient
    ) -> None:
        async with console.app[DATABASE].write() as session:
            for n in range(60):
                audit(
                    session,
                    at=datetime.fromtimestamp(console.clock.now(), UTC),
                    link_id=None,
                    action="settings",
                    actor="cli",
                    detail=f"change {n}",
                )

        first = await admin.page("/activity")
        assert first.count("<tr>") == 1 + 50  # the header row and a full page
        assert "Older" in first
        before = first.split("before=")[1].split('"')[0]
        second = await admin.page(f"/activity?before={before}")
        assert "Newest" in second

    async def test_only_admins_see_it(
        self, treasurer: ConsoleClient, viewer: ConsoleClient
    ) -> None:
        assert (await treasurer.get("/activity")).status == 403
        assert (await viewer.get("/activity")).status == 403
        assert "/admin/activity" not in await treasurer.page("/account")
