"""The admin API's link and order endpoints on both databases: create, list with filters and
pages, show with orders, audit and opens, revoke, orders, reconcile, and its JSON errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from gateway.adapters.db.models import Link
from gateway.services import link_listing as admin_links
from gateway.services.checkout import link_view
from gateway.services.link_listing import STATUSES, admin_status, status_condition
from gateway.web.keys import DATABASE
from tests.admin.support import AdminHarness, start_admin_harness
from tests.harness import ANDROID_CHROME, session_id_from

SLACKBOT = {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> AdminHarness:
    return await start_admin_harness(aiohttp_server, aiohttp_client, database_url)


async def count_links(h: AdminHarness) -> int:
    async with h.app[DATABASE].read() as session:
        return int(
            (await session.execute(sa.select(sa.func.count()).select_from(Link))).scalar_one()
        )


class TestCreate:
    async def test_creates_a_link_that_a_payer_can_open(self, h: AdminHarness) -> None:
        response = await h.api(
            "POST",
            "/links",
            json={
                "email": "sam@example.com",
                "name": "Sam Rivera",
                "description": "Spring season",
                "items": [
                    "Spring fee, Maya=150.00",
                    {"description": "Kit", "amount": "25.50", "quantity": 2},
                ],
                "ref": "2026-04/family-7",
                "valid_for": "30d",
            },
        )
        assert response.status == 201, await response.text()
        data = await response.json()
        assert data["amount_total"] == 15000 + 2 * 2550
        assert data["url"].endswith("/pay/" + data["token"])
        page = await h.get(data["token"])
        assert page.status == 200 and "Sam Rivera" in await page.text()

    async def test_reports_every_bad_field_at_once_and_creates_nothing(
        self, h: AdminHarness
    ) -> None:
        response = await h.api(
            "POST",
            "/links",
            json={"email": "not-an-email", "name": "", "items": ["Fee=abc"], "currency": "zz"},
        )
        assert response.status == 422
        error = (await response.json())["error"]
        assert error["code"] == "validation_failed"
        assert {"email", "name", "currency"} <= set(error["fields"])
        assert await count_links(h) == 0

    @pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe"])
    async def test_a_body_that_is_not_an_object_is_a_400(
        self, h: AdminHarness, body: bytes
    ) -> None:
        response = await h.api(
            "POST", "/links", data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "bad_request"
        assert await count_links(h) == 0

    async def test_unknown_fields_are_refused(self, h: AdminHarness) -> None:
        response = await h.api(
            "POST",
            "/links",
            json={"email": "a@example.com", "name": "A", "items": ["Fee=1.00"], "amout": 3},
        )
        assert response.status == 422
        assert "amout" in (await response.json())["error"]["fields"]["row"]

    async def test_send_must_be_a_boolean(self, h: AdminHarness) -> None:
        body = {"email": "a@example.com", "name": "A", "items": ["Fee=1.00"], "send": "false"}
        response = await h.api("POST", "/links", json=body)
        assert response.status == 422
        assert "send" in (await response.json())["error"]["fields"]
        assert await count_links(h) == 0

    async def test_send_without_smtp_configured_is_a_409_and_creates_nothing(
        self, h: AdminHarness
    ) -> None:
        response = await h.api(
            "POST",
            "/links",
            json={"email": "a@example.com", "name": "A", "items": ["Fee=1.00"], "send": True},
        )
        assert response.status == 409
        assert (await response.json())["error"]["code"] == "email_not_configured"
        assert await count_links(h) == 0


class TestList:
    async def make_one_of_each(self, h: AdminHarness) -> dict[str, str]:
        """A link in every status the admin can filter on."""
        ids: dict[str, str] = {}
        ids["issued"] = (await h.issue(ref="s/issued")).id
        opened = await h.issue(ref="s/opened")
        await h.get(opened)
        ids["opened"] = opened.id
        pending = await h.issue(ref="s/pending")
        assert (await h.post(pending)).status == 303
        ids["pending"] = pending.id
        paid = await h.issue(ref="s/paid")
        await h.pay_flow(paid)
        ids["paid"] = paid.id
        processing = await h.issue(ref="s/processing")
        response = await h.post(processing)
        h.emulator.pay(session_id_from(response.headers["Location"]), "async")
        await h.emulator.deliver_webhooks()
        ids["processing"] = processing.id
        failed = await h.issue(ref="s/failed")
        response = await h.post(failed)
        session = session_id_from(response.headers["Location"])
        h.emulator.pay(session, "async")
        h.emulator.settle_async(session, succeed=False)
        await h.emulator.deliver_webhooks()
        ids["failed"] = failed.id
        revoked = await h.issue(ref="s/revoked")
        await h.api("POST", f"/links/{revoked.id}/revoke", json={"reason": "left"})
        ids["revoked"] = revoked.id
        expired = await h.issue(ref="s/expired", valid_for=3600)
        ids["expired"] = expired.id
        await h.flush_opens()
        return ids

    @pytest.mark.parametrize("drive_cap", [admin_links.DRIVE_CAP, 0])
    async def test_each_status_filter_finds_exactly_its_link(
        self, h: AdminHarness, monkeypatch: pytest.MonkeyPatch, drive_cap: int
    ) -> None:
        # Both ways a filter runs: looking only at the status's few candidates, and (with
        # "many" candidates) walking the links newest first.
        monkeypatch.setattr(admin_links, "DRIVE_CAP", drive_cap)
        ids = await self.make_one_of_each(h)
        h.clock.advance(2 * 3600)  # only the one-hour link is past its validity
        for status in STATUSES:
            if status == "duplicate":
                continue
            response = await h.api("GET", "/links", params={"status": status})
            assert response.status == 200
            data = await response.json()
            assert [x["id"] for x in data["links"]] == [ids[status]], status
            assert data["links"][0]["status"] == status
        response = await h.api("GET", "/links", params={"status": "duplicate"})
        assert (await response.json())["links"] == []

    async def test_sql_filter_and_displayed_status_agree(self, h: AdminHarness) -> None:
        await self.make_one_of_each(h)
        h.clock.advance(2 * 3600)
        now = datetime.fromtimestamp(h.clock.now(), UTC)
        async with h.app[DATABASE].read() as session:
            links = (
                (await session.execute(sa.select(Link).options(selectinload(Link.orders))))
                .scalars()
                .all()
            )
            for link in links:
                shown = admin_status(
                    link_view(link, [], link.orders, now).state, link.orders, link.open_count
                )
                # Both forms: probes (the page's) and joins (the count's on PostgreSQL).
                for joins in (False, True):
                    matching = [
                        s
                        for s in STATUSES[:-1]
                        if (
                            await session.execute(
                                sa.select(Link.id).where(
                                    Link.id == link.id, status_condition(s, now, joins=joins)
                                )
                            )
                        ).first()
                    ]
                    assert matching == [shown], (link.ref, joins)

    @pytest.mark.parametrize("status", STATUSES)
    def test_status_filters_are_compiled_once(self, status: str) -> None:
        # A statement without a cache key is compiled anew on every call (a millisecond or
        # more each, on every status filter): each condition must have one, and it must tell
        # the conditions apart (a key that ignored a column would reuse the wrong SQL).
        now = datetime(2026, 4, 1, tzinfo=UTC)
        for joins in (False, True):
            key = (
                sa.select(Link.id)
                .where(status_condition(status, now, joins=joins))
                ._generate_cache_key()
            )
            assert key is not None
            others = [
                sa.select(Link.id)
                .where(status_condition(s, now, joins=joins))
                ._generate_cache_key()
                for s in STATUSES
                if s != status
            ]
            assert all(other is not None and other.key != key.key for other in others)

    async def test_unknown_status_is_a_422(self, h: AdminHarness) -> None:
        response = await h.api("GET", "/links", params={"status": "pendingg"})
        assert response.status == 422
        assert "status" in (await response.json())["error"]["fields"]

    @pytest.mark.parametrize("drive_cap", [admin_links.DRIVE_CAP, 0])
    async def test_ref_prefix_and_pages(
        self, h: AdminHarness, monkeypatch: pytest.MonkeyPatch, drive_cap: int
    ) -> None:
        # Both ways: the prefix's few links looked at alone, and (with "many") a walk.
        monkeypatch.setattr(admin_links, "DRIVE_CAP", drive_cap)
        for n in range(5):
            await h.issue(ref=f"2026-04/p{n}")
            h.clock.advance(1)
        await h.issue(ref="2026-05/p0")
        seen: list[str] = []
        offset: int | None = 0
        while offset is not None:
            response = await h.api(
                "GET", "/links", params={"ref_prefix": "2026-04/", "limit": 2, "offset": offset}
            )
            data = await response.json()
            assert data["total"] == 5
            seen += [x["ref"] for x in data["links"]]
            offset = data["next_offset"]
        assert seen == [f"2026-04/p{n}" for n in reversed(range(5))]
        # LIKE wildcards in a prefix are literal, and case counts (SQLite's LIKE ignores it).
        for prefix in ("2026_04", "2026-04/P"):
            response = await h.api("GET", "/links", params={"ref_prefix": prefix})
            assert (await response.json())["total"] == 0, prefix

    async def test_date_range(self, h: AdminHarness) -> None:
        first = await h.issue(ref="d/1")
        h.clock.advance(86400 * 3)
        second = await h.issue(ref="d/2")
        start = datetime.fromtimestamp(h.clock.now(), UTC).date()
        response = await h.api("GET", "/links", params={"created_from": start.isoformat()})
        assert [x["id"] for x in (await response.json())["links"]] == [second.id]
        before = (start - timedelta(days=1)).isoformat()
        response = await h.api("GET", "/links", params={"created_to": before})
        assert [x["id"] for x in (await response.json())["links"]] == [first.id]
        response = await h.api("GET", "/links", params={"created_from": "yesterday"})
        assert response.status == 422

    @pytest.mark.parametrize("drive_cap", [admin_links.DRIVE_CAP, 0])
    async def test_cursor_pages_visit_every_link_once_even_at_the_same_instant(
        self, h: AdminHarness, monkeypatch: pytest.MonkeyPatch, drive_cap: int
    ) -> None:
        monkeypatch.setattr(admin_links, "DRIVE_CAP", drive_cap)
        rows = "".join(f"p{n}@example.com,P {n},c/{n},10\n" for n in range(7))
        await h.api(
            "POST",
            "/links/bulk",
            data="email,name,ref,amount\n" + rows,
            headers={"Content-Type": "text/csv"},
        )  # one transaction: seven links created at the very same instant
        h.clock.advance(1)
        await h.issue(ref="c/later")
        for params in ({}, {"status": "issued"}):
            seen: list[str] = []
            cursor: str | None = None
            while True:
                query = {"limit": "3", **params, **({"cursor": cursor} if cursor else {})}
                data = await (await h.api("GET", "/links", params=query)).json()
                assert (data["total"], data["total_exact"]) == (8, True)
                seen += [x["ref"] for x in data["links"]]
                cursor = data["next_cursor"]
                if cursor is None:
                    break
            assert seen[0] == "c/later" and sorted(seen[1:]) == [f"c/{n}" for n in range(7)]
            assert len(set(seen)) == 8
            # offset still works, and agrees with the cursor
            data = await (
                await h.api("GET", "/links", params={"limit": "3", "offset": "3", **params})
            ).json()
            assert [x["ref"] for x in data["links"]] == seen[3:6]

    async def test_the_count_stops_at_the_cap(
        self, h: AdminHarness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(admin_links, "COUNT_CAP", 2)
        for n in range(3):
            await h.issue(ref=f"cap/{n}")
        data = await (await h.api("GET", "/links", params={"limit": "1"})).json()
        assert (data["total"], data["total_exact"]) == (2, False)

    async def test_a_cursor_this_api_did_not_give_is_a_422(self, h: AdminHarness) -> None:
        for cursor in ("nope", "bm9wZQ", "MjAyNi0wNC0wMXxsa18x"):
            response = await h.api("GET", "/links", params={"cursor": cursor})
            assert response.status == 422, cursor
            assert "cursor" in (await response.json())["error"]["fields"]

    @pytest.mark.parametrize(
        "params", [{"limit": "0"}, {"limit": "501"}, {"offset": "-1"}, {"limit": "x"}]
    )
    async def test_bad_paging_is_a_422(self, h: AdminHarness, params: dict[str, str]) -> None:
        response = await h.api("GET", "/links", params=params)
        assert response.status == 422


class TestShow:
    async def test_orders_audit_opens_and_previews(self, h: AdminHarness) -> None:
        link = await h.issue()
        await h.get(link)
        await h.get(link, headers={"User-Agent": ANDROID_CHROME})
        await h.get(link, headers=SLACKBOT)
        await h.pay_flow(link)
        await h.flush_opens()
        response = await h.api("GET", f"/links/{link.id}")
        assert response.status == 200
        data = await response.json()
        assert data["status"] == "paid" and data["state"] == "paid"
        assert data["opens"]["count"] == 2 and data["opens"]["first_at"]
        assert sum(data["previews"].values()) == 1
        assert [o["status"] for o in data["orders"]] == ["paid"]
        assert data["audit"][0]["action"] == "link.issued"
        assert any(a["to"] == "paid" for a in data["audit"])
        assert data["url"] == link.url
        listed = await (await h.api("GET", "/links")).json()
        assert listed["links"][0]["opens"]["count"] == 2
        assert listed["links"][0]["previews"] == data["previews"]

    @pytest.mark.parametrize("link_id", ["lk_doesnotexist", "nope", "lk_" + "a" * 40])
    async def test_unknown_or_malformed_ids_are_404(self, h: AdminHarness, link_id: str) -> None:
        for method, path in (
            ("GET", f"/links/{link_id}"),
            ("POST", f"/links/{link_id}/revoke"),
            ("POST", f"/links/{link_id}/resend"),
        ):
            response = await h.api(method, path)
            assert response.status == 404, (method, path)
            assert (await response.json())["error"]["code"] == "not_found"


class TestRevoke:
    async def test_revoke_cancels_the_pending_attempt_and_the_page_says_withdrawn(
        self, h: AdminHarness
    ) -> None:
        link = await h.issue()
        assert (await h.post(link)).status == 303
        response = await h.api("POST", f"/links/{link.id}/revoke", json={"reason": "left the team"})
        assert await response.json() == {"id": link.id, "revoked": True, "changed": True}
        again = await h.api("POST", f"/links/{link.id}/revoke")
        assert (await again.json())["changed"] is False
        assert [o.status for o in await h.orders(link)] == ["canceled"]
        assert (await h.get(link)).status == 410
        detail = await (await h.api("GET", f"/links/{link.id}")).json()
        assert detail["revoke_reason"] == "left the team"
        assert detail["revoked_by"] == "admin:treasurer"

    async def test_an_overlong_reason_is_refused(self, h: AdminHarness) -> None:
        link = await h.issue()
        response = await h.api("POST", f"/links/{link.id}/revoke", json={"reason": "x" * 201})
        assert response.status == 422
        assert (await h.get(link)).status == 200


class TestOrdersAndReconcile:
    async def test_orders_by_status(self, h: AdminHarness) -> None:
        paid, pending = await h.issue(ref="o/1"), await h.issue(ref="o/2")
        await h.pay_flow(paid)
        await h.post(pending)
        data = await (await h.api("GET", "/orders", params={"status": "paid"})).json()
        assert [o["link_id"] for o in data["orders"]] == [paid.id]
        data = await (await h.api("GET", "/orders")).json()
        assert {o["link_id"] for o in data["orders"]} == {paid.id, pending.id}
        assert (await h.api("GET", "/orders", params={"status": "bogus"})).status == 422

    async def test_reconcile_runs_and_reports(self, h: AdminHarness) -> None:
        link = await h.issue()
        h.emulator.faults.update({"lose_next_webhooks": 100})
        await h.pay_flow(link)
        assert [o.status for o in await h.orders(link)] == ["pending"]
        response = await h.api("POST", "/reconcile")
        assert response.status == 200
        report = await response.json()
        assert report["ran"] is True and report["fixes"] >= 1
        assert [o.status for o in await h.orders(link)] == ["paid"]
        metrics = await (await h.client.get("/metrics")).text()
        assert 'gateway_reconcile_runs_total{result="ran"} 1.0' in metrics
