"""services.link_corrections (the console's "Issue a corrected link"), on SQLite and PostgreSQL
with the Stripe emulator: the old link's open checkout is closed at Stripe before the new link
exists, a revoked link can be corrected, a paid one never, and nothing changes on a refusal."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.dev.demo_mail import MailSink
from gateway.domain.errors import NotFound
from gateway.domain.links import NewLink, validate_new_link
from gateway.services.link_corrections import LinkNotCorrectable, correct_link
from gateway.web.keys import LINKS, LISTING, PAYMENTS, TIMELINE
from tests.admin.support import AdminHarness, mail_sink, start_admin_harness
from tests.harness import session_id_from

__all__ = ["mail_sink"]

ACTOR = "admin:jane@riverside.example"


@pytest.fixture
async def h(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str, mail_sink: MailSink
) -> AdminHarness:
    return await start_admin_harness(
        aiohttp_server, aiohttp_client, database_url, smtp_port=mail_sink.port
    )


def corrected(amount: str = "120.00") -> NewLink:
    return validate_new_link(
        email="parent@example.com",
        name="Sam Rivera",
        description="Spring season",
        currency="usd",
        items=[f"Spring fee={amount}"],
        ref="2026-04/p1",
        valid_for=30 * 86400,
        max_valid_for=366 * 86400,
    )


async def correct(h: AdminHarness, link_id: str, new: NewLink, reason: str = "") -> Any:
    return await correct_link(
        link_id,
        new,
        links=h.app[LINKS],
        listing=h.app[LISTING],
        provider=h.app[PAYMENTS],
        actor=ACTOR,
        reason=reason,
    )


async def test_the_open_checkout_of_the_old_link_is_closed_at_stripe(h: AdminHarness) -> None:
    link = await h.issue()
    session_id = session_id_from((await h.post(link)).headers["Location"])
    done = await correct(h, link.id, corrected(), reason="Sibling discount")
    assert done.revoked_now and done.old_id == link.id
    (order,) = await h.orders(link)
    assert order.status == "canceled" and order.cancel_reason == "revoked"
    assert h.emulator.sessions[session_id]["status"] == "expired"
    # The new link is payable, replaces the old one, and says so in both timelines.
    new = await h.app[TIMELINE].for_link(done.new.id)
    assert (new.state, new.total, new.link.replaces_id) == ("payable", "120.00 USD", link.id)
    old = await h.app[TIMELINE].for_link(link.id)
    assert old.state == "revoked" and old.replaced_by == (done.new.id,)
    assert old.link.revoke_reason == "Sibling discount"


async def test_a_revoked_link_can_be_corrected_and_keeps_its_reason(h: AdminHarness) -> None:
    link = await h.issue()
    await h.app[LINKS].revoke(link.id, actor=ACTOR, reason="Wrong amount")
    done = await correct(h, link.id, corrected())
    assert not done.revoked_now
    old = await h.app[TIMELINE].for_link(link.id)
    assert old.link.revoke_reason == "Wrong amount"
    assert old.replaced_by == (done.new.id,)


async def test_a_paid_link_is_refused_and_nothing_changes(h: AdminHarness) -> None:
    link = await h.issue()
    await h.pay_flow(link)
    with pytest.raises(LinkNotCorrectable) as refused:
        await correct(h, link.id, corrected())
    assert refused.value.status == "paid"
    got = await h.app[TIMELINE].for_link(link.id)
    assert got.link.revoked_at is None and got.replaced_by == ()


async def test_an_unknown_link_is_not_found(h: AdminHarness) -> None:
    with pytest.raises(NotFound):
        await correct(h, "lk_nothing", corrected())
