"""Bulk actions on a selection of links (gateway.services.link_bulk_actions) on both databases:
the plan says what would happen and changes nothing; the run acts only on the eligible links
(read again), through the same services as the API, each change audited with the actor, and one
entry for the whole run."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from gateway.adapters.db.models import AuditEntry, Link
from gateway.dev.demo_mail import MailSink
from gateway.domain.errors import ValidationFailed
from gateway.services.email import EmailNotConfigured
from gateway.services.link_bulk_actions import MAX_SELECTION, LinkBulkActions
from gateway.services.links import IssuedLink
from gateway.web.keys import ADMIN, DATABASE, LINKS, LISTING, MAILER, PAYMENTS
from tests.admin.support import AdminHarness, start_admin_harness

ACTOR = "admin:treasurer@riverside.example"


@pytest.fixture
async def h(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str, mail_sink: MailSink
) -> AdminHarness:
    return await start_admin_harness(
        aiohttp_server, aiohttp_client, database_url, smtp_port=mail_sink.port
    )


def bulk(h: AdminHarness) -> LinkBulkActions:
    app = h.app
    return LinkBulkActions(
        app[DATABASE], app[LISTING], app[ADMIN], app[LINKS], app[MAILER], app[PAYMENTS], h.clock
    )


async def a_mix(h: AdminHarness) -> dict[str, IssuedLink]:
    links = {
        "issued": await h.issue(ref="M-1", email="one@example.com"),
        "opened": await h.issue(ref="M-2", email="two@example.com"),
        "paid": await h.issue(ref="M-3", email="three@example.com"),
        "revoked": await h.issue(ref="M-4", email="four@example.com"),
        "pending": await h.issue(ref="M-5", email="five@example.com"),
    }
    await h.get(links["opened"])
    await h.flush_opens()
    await h.pay_flow(links["paid"])
    await h.app[LINKS].revoke(links["revoked"].id, actor="test", reason="left")
    assert (await h.post(links["pending"])).status == 303
    return links


async def entries(h: AdminHarness, action: str) -> list[AuditEntry]:
    async with h.app[DATABASE].read() as session:
        rows = await session.execute(
            sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
        return list(rows.scalars())


class TestPlan:
    async def test_says_what_is_skipped_and_why_and_changes_nothing(self, h: AdminHarness) -> None:
        links = await a_mix(h)
        ids = [link.id for link in links.values()] + ["lk_AAAAAAAAAAAA"]
        resend = await bulk(h).plan("resend", ids)
        assert resend.selected == 6
        assert resend.eligible == (links["issued"].id, links["opened"].id, links["pending"].id)
        assert resend.skipped == {"paid": 1, "revoked": 1, "not_found": 1}
        revoke = await bulk(h).plan("revoke", ids)
        assert revoke.eligible == resend.eligible
        assert revoke.skipped == {"paid": 1, "revoked": 1, "not_found": 1}
        assert await entries(h, "link.revoked") != []  # (the one revoked by a_mix)
        assert len(await entries(h, "link.revoked")) == 1
        assert await entries(h, "bulk.revoke") == []

    async def test_the_same_id_twice_counts_once(self, h: AdminHarness) -> None:
        link = await h.issue()
        plan = await bulk(h).plan("revoke", [link.id, link.id])
        assert plan.selected == 1 and plan.eligible == (link.id,)

    @pytest.mark.parametrize(
        ("action", "ids", "field"),
        [
            ("delete", ["lk_AAAAAAAAAAAA"], "action"),
            ("revoke", [], "links"),
            ("revoke", ["lk_AAAAAAAAAAAA", "' OR 1=1 --"], "links"),
            ("revoke", [f"lk_{i:012d}" for i in range(MAX_SELECTION + 1)], "links"),
        ],
    )
    async def test_bad_requests_are_refused(
        self, h: AdminHarness, action: str, ids: list[str], field: str
    ) -> None:
        with pytest.raises(ValidationFailed) as refused:
            await bulk(h).plan(action, ids)
        assert field in refused.value.errors


class TestRun:
    async def test_revoke_acts_on_the_eligible_only_each_audited(self, h: AdminHarness) -> None:
        links = await a_mix(h)
        ids = [link.id for link in links.values()]
        outcome = await bulk(h).run("revoke", ids, actor=ACTOR, reason="season cancelled")
        wanted = {links[k].id for k in ("issued", "opened", "pending")}
        assert set(outcome.done) == wanted
        assert outcome.skipped == {"paid": 1, "revoked": 1}
        async with h.app[DATABASE].read() as session:
            revoked = dict(
                (
                    await session.execute(
                        sa.select(Link.id, Link.revoked_by).where(Link.revoked_at.is_not(None))
                    )
                ).all()
            )
        assert set(revoked) == wanted | {links["revoked"].id}
        assert {revoked[i] for i in wanted} == {ACTOR}
        by_actor = [e for e in await entries(h, "link.revoked") if e.actor == ACTOR]
        assert {e.link_id for e in by_actor} == wanted
        assert {e.detail for e in by_actor} == {"season cancelled"}
        (summary,) = await entries(h, "bulk.revoke")
        assert summary.actor == ACTOR and summary.link_id is None
        assert summary.detail is not None
        assert summary.detail.startswith("5 selected, 3 done, skipped: 1 paid, 1 revoked")
        # The pending attempt was canceled and the payer's page says revoked.
        assert (await h.get(links["pending"])).status == 410
        # Again: nothing left to do.
        again = await bulk(h).run("revoke", ids, actor=ACTOR)
        assert again.done == () and again.skipped == {"paid": 1, "revoked": 4}

    async def test_send_again_emails_the_eligible_only(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        links = await a_mix(h)
        ids = [link.id for link in links.values()]
        outcome = await bulk(h).run("resend", ids, actor=ACTOR)
        assert set(outcome.done) == {links[k].id for k in ("issued", "opened", "pending")}
        assert outcome.failed == {}
        recipients = sorted(r for m in mail_sink.messages for r in m.recipients)
        assert recipients == ["five@example.com", "one@example.com", "two@example.com"]
        (summary,) = await entries(h, "bulk.resend")
        assert summary.detail is not None and summary.detail.startswith("5 selected, 3 done")

    async def test_a_reason_is_checked_before_anything_changes(self, h: AdminHarness) -> None:
        link = await h.issue()
        with pytest.raises(ValidationFailed):
            await bulk(h).run("revoke", [link.id], actor=ACTOR, reason="x" * 201)
        with pytest.raises(ValidationFailed):
            await bulk(h).run("revoke", [link.id], actor=ACTOR, reason="bad\x00")
        assert (await h.app[LISTING].status_of(link.id)) == "issued"


async def test_send_again_without_mail_is_refused(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str
) -> None:
    h = await start_admin_harness(aiohttp_server, aiohttp_client, database_url)
    link = await h.issue()
    with pytest.raises(EmailNotConfigured):
        await bulk(h).plan("resend", [link.id])
