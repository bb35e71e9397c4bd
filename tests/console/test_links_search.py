"""The console's search box and list filters (gateway.services.link_search, link_listing) on
both databases: each kind of query is read as what it is and finds exactly its links, a forged
or cut URL finds nothing and says why, and the status filters, date range and orders work with
it, by cursor in the default order and by offset in the others."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.adapters.db.models import Link, Order
from gateway.domain.errors import ValidationFailed
from gateway.services import link_listing
from gateway.services.link_listing import (
    MAX_SORTED_OFFSET,
    LinkFilter,
    LinkListing,
    status_condition,
)
from gateway.services.link_search import MAX_QUERY, LinkMatch, LinkSearch, Understood
from gateway.services.links import IssuedLink
from gateway.web.keys import DATABASE, LISTING, TOKENS
from tests.admin.support import AdminHarness, start_admin_harness
from tests.harness import forge, session_id_from

SLACKBOT = {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> AdminHarness:
    return await start_admin_harness(aiohttp_server, aiohttp_client, database_url)


@pytest.fixture(params=["few", "walk"])
def drive(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a search runs: looking only at its few matches, and (as if they were many)
    walking the links newest first."""
    if request.param == "walk":
        monkeypatch.setattr(link_listing, "DRIVE_CAP", 0)
    return str(request.param)


def searcher(h: AdminHarness) -> LinkSearch:
    return LinkSearch(h.app[DATABASE], h.app[TOKENS])


async def find(h: AdminHarness, query: str, **filters: Any) -> tuple[Understood, list[str]]:
    understood = await searcher(h).understand(query)
    assert understood is not None
    if understood.match is None:
        return understood, []
    page = await h.app[LISTING].list(LinkFilter(match=understood.match, **filters))
    return understood, [s.link.id for s in page.links]


async def family(h: AdminHarness) -> dict[str, str]:
    return {key: link.id for key, link in (await family_links(h)).items()}


async def family_links(h: AdminHarness) -> dict[str, IssuedLink]:
    """Four links a minute apart (oldest first): two U12 refs, one U14, one with a name only."""
    ids = {}
    for key, ref, email, name, fee in (
        ("maya", "U12-001", "Sam.Rivera@Example.com", "Sam Rivera", "150.00"),
        ("leo", "U12-002", "jo.okafor@example.org", "Jo Okafor", "90.00"),
        ("ana", "U14-001", "ana@club.example", "Ana Núñez", "120.00"),
        ("kit", "KIT/7", "riverside.parent@example.net", "Pat Kim", "25.00"),
    ):
        link = await h.issue(items=[f"Fee={fee}"], ref=ref, email=email, name=name)
        ids[key] = link
        h.clock.advance(60)
    return ids


class TestWhatAQueryIs:
    async def test_email_any_case_finds_exactly_its_link(self, h: AdminHarness, drive: str) -> None:
        ids = await family(h)
        understood, found = await find(h, "  sam.rivera@EXAMPLE.com ")
        assert understood.kind == "email"
        assert "sam.rivera@EXAMPLE.com" in understood.label
        assert found == [ids["maya"]]

    async def test_part_of_an_email_is_a_prefix(self, h: AdminHarness, drive: str) -> None:
        ids = await family(h)
        understood, found = await find(h, "JO.OKAFOR@exa")
        assert understood.kind == "email_prefix"
        assert found == [ids["leo"]]

    async def test_a_reference_prefix_is_read_as_one(self, h: AdminHarness, drive: str) -> None:
        ids = await family(h)
        understood, found = await find(h, "U12-")
        assert understood.kind == "reference"
        assert understood.label == "Reference prefix 'U12-'"
        assert found == [ids["leo"], ids["maya"]]  # newest first
        # A reference is matched as typed: case counts.
        understood, found = await find(h, "ref:u12-")
        assert understood.kind == "reference" and found == []

    async def test_a_name_is_found_by_any_part_in_any_case(
        self, h: AdminHarness, drive: str
    ) -> None:
        ids = await family(h)
        understood, found = await find(h, "rIVER")
        assert understood.kind == "name"
        # The name "Sam Rivera", and the email that starts with "river".
        assert found == [ids["kit"], ids["maya"]]
        understood, found = await find(h, "name:okafor")
        assert understood.kind == "name" and found == [ids["leo"]]

    async def test_like_wildcards_are_plain_characters(self, h: AdminHarness) -> None:
        await family(h)
        for query in ("%", "_", "ref:U1_"):
            _, found = await find(h, query)
            assert found == [], query

    async def test_a_link_id(self, h: AdminHarness) -> None:
        ids = await family(h)
        understood, found = await find(h, ids["ana"])
        assert understood.kind == "link_id" and found == [ids["ana"]]
        _, found = await find(h, "lk_AAAAAAAAAAAA")  # the shape of an id, no such link
        assert found == []

    async def test_a_pasted_payment_url_or_token_finds_its_link(self, h: AdminHarness) -> None:
        await family(h)
        link = await h.issue(ref="URL-1")
        understood, found = await find(h, f"<{link.url}?utm_source=mail>")
        assert understood.kind == "payment_url" and found == [link.id]
        assert link.id in understood.label
        understood, found = await find(h, link.token)
        assert understood.kind == "token" and found == [link.id]

    async def test_a_forged_or_cut_url_finds_nothing_and_says_why(self, h: AdminHarness) -> None:
        link = await h.issue(ref="URL-1")
        forged = await searcher(h).understand(link.url.replace(link.token, forge(link.token)))
        assert forged is not None
        assert forged.kind == "payment_url" and forged.match is None
        assert forged.problem is not None and "not made by this gateway" in forged.problem
        cut = await searcher(h).understand(link.url[:-10])
        assert cut is not None and cut.match is None
        assert cut.problem is not None and "cut short" in cut.problem
        elsewhere = await searcher(h).understand("https://example.org/somewhere")
        assert elsewhere is not None and elsewhere.match is None

    async def test_an_old_but_genuine_token_still_names_its_link(self, h: AdminHarness) -> None:
        link = await h.issue(ref="OLD", valid_for=3600)
        h.clock.advance(400 * 86400)  # past tokens.max_age
        _, found = await find(h, link.url)
        assert found == [link.id]

    async def test_stripe_ids(self, h: AdminHarness) -> None:
        await family(h)
        link = await h.issue(ref="PAID-1")
        session_id = await h.pay_flow(link)
        understood, found = await find(h, session_id)
        assert understood.kind == "stripe_session" and found == [link.id]
        async with h.app[DATABASE].read() as session:
            intent = (
                await session.execute(
                    sa.select(Order.payment_intent_id).where(Order.link_id == link.id)
                )
            ).scalar_one()
        assert intent and intent.startswith("pi_")
        understood, found = await find(h, intent)
        assert understood.kind == "payment_intent" and found == [link.id]
        _, found = await find(h, "cs_test_nosuchsession")
        assert found == []
        charge = await searcher(h).understand("ch_3PxyzABC")
        assert charge is not None and charge.kind == "charge" and charge.match is None
        assert charge.problem is not None and "Support page" in charge.problem

    async def test_bad_queries_are_refused_and_empty_is_no_search(self, h: AdminHarness) -> None:
        with pytest.raises(ValidationFailed) as too_long:
            await searcher(h).understand("a" * (MAX_QUERY + 1))
        assert "q" in too_long.value.errors
        with pytest.raises(ValidationFailed):
            await searcher(h).understand("Sam\x00Rivera")
        assert await searcher(h).understand("   ") is None


class TestFiltersWithSearch:
    async def test_status_and_search_together(self, h: AdminHarness, drive: str) -> None:
        links = await family_links(h)
        ids = {key: link.id for key, link in links.items()}
        response = await h.post(links["maya"])  # a pending attempt
        assert response.status == 303
        understood = await searcher(h).understand("U12-")
        assert understood is not None
        listing: LinkListing = h.app[LISTING]
        pending = await listing.list(LinkFilter(status="pending", match=understood.match))
        assert [s.link.id for s in pending.links] == [ids["maya"]]
        issued = await listing.list(LinkFilter(status="issued", match=understood.match))
        assert [s.link.id for s in issued.links] == [ids["leo"]]
        assert issued.total == 1 and issued.total_exact

    async def test_bot_previews_only(self, h: AdminHarness, drive: str) -> None:
        previewed = await h.issue(ref="P-1")
        await h.get(previewed, headers=SLACKBOT)
        both = await h.issue(ref="P-2")
        await h.get(both, headers=SLACKBOT)
        await h.get(both)  # a person opened it too
        await h.issue(ref="P-3")  # nobody
        paid = await h.issue(ref="P-4")
        await h.get(paid, headers=SLACKBOT)
        await h.pay_flow(paid)
        await h.flush_opens()
        page = await h.app[LISTING].list(LinkFilter(status="previewed"))
        assert [s.link.id for s in page.links] == [previewed.id]
        assert page.links[0].status == "issued" and page.links[0].previews

    async def test_paid_twice(self, h: AdminHarness) -> None:
        link = await h.issue(ref="D-1")
        first = await h.post(link)
        second_session = session_id_from(first.headers["Location"])
        # Another tab's session paid after the first payment.
        h.clock.advance(3 * 3600)
        await h.pay_flow(link)
        h.emulator.sessions[second_session]["status"] = "open"  # the other tab pays it too
        h.emulator.pay(second_session)
        await h.emulator.deliver_webhooks()
        page = await h.app[LISTING].list(LinkFilter(status="duplicate"))
        assert [s.link.id for s in page.links] == [link.id] and page.links[0].duplicate

    async def test_date_range(self, h: AdminHarness) -> None:
        ids = await family(h)
        created = datetime.fromtimestamp(h.clock.now(), UTC) - timedelta(seconds=4 * 60)
        page = await h.app[LISTING].list(
            LinkFilter(
                created_from=created + timedelta(seconds=60),
                created_to=created + timedelta(seconds=180),
            )
        )
        assert [s.link.id for s in page.links] == [ids["ana"], ids["leo"]]


class TestOrders:
    async def test_each_order_and_its_offset_pages(self, h: AdminHarness) -> None:
        ids = await family(h)
        listing: LinkListing = h.app[LISTING]
        expected = {
            "created_desc": ["kit", "ana", "leo", "maya"],
            "created_asc": ["maya", "leo", "ana", "kit"],
            "amount_desc": ["maya", "ana", "leo", "kit"],
            "amount_asc": ["kit", "leo", "ana", "maya"],
            "name": ["ana", "leo", "kit", "maya"],  # Ana, Jo, Pat, Sam
        }
        for sort, keys in expected.items():
            first = await listing.list(LinkFilter(sort=sort, limit=3))
            assert [s.link.id for s in first.links] == [ids[k] for k in keys[:3]], sort
            assert first.next_offset == 3 and first.total == 4
            if sort != "created_desc":
                assert first.next_cursor is None  # offset pages
            rest = await listing.list(LinkFilter(sort=sort, limit=3, offset=3))
            assert [s.link.id for s in rest.links] == [ids[keys[3]]], sort
            assert rest.next_offset is None

    async def test_orders_with_a_search(self, h: AdminHarness, drive: str) -> None:
        ids = await family(h)
        understood = await searcher(h).understand("U1")
        assert understood is not None
        page = await h.app[LISTING].list(LinkFilter(match=understood.match, sort="amount_asc"))
        assert [s.link.id for s in page.links] == [ids["leo"], ids["ana"], ids["maya"]]

    async def test_bad_orders_and_pages_are_refused(self, h: AdminHarness) -> None:
        listing: LinkListing = h.app[LISTING]
        first = await listing.list(LinkFilter(limit=1))
        for bad in (
            LinkFilter(sort="random"),
            LinkFilter(sort="amount_desc", offset=MAX_SORTED_OFFSET + 1),
            LinkFilter(sort="name", cursor="abc"),
            LinkFilter(limit=0),
            LinkFilter(status="lost"),
        ):
            with pytest.raises(ValidationFailed):
                await listing.list(bad)
        assert first.total == 0


class TestJsonApi:
    async def test_q_and_sort_on_the_admin_api(self, h: AdminHarness) -> None:
        links = await family_links(h)
        response = await h.api("GET", "/links", params={"q": "U12-", "sort": "amount_asc"})
        assert response.status == 200, await response.text()
        data = await response.json()
        assert [x["id"] for x in data["links"]] == [links["leo"].id, links["maya"].id]
        assert data["search"] == {
            "kind": "reference",
            "understood": "Reference prefix 'U12-'",
            "problem": None,
        }
        forged = links["ana"].url.replace(links["ana"].token, forge(links["ana"].token))
        response = await h.api("GET", "/links", params={"q": forged})
        data = await response.json()
        assert data["links"] == [] and data["total"] == 0
        assert data["search"]["kind"] == "payment_url" and data["search"]["problem"]
        response = await h.api("GET", "/links", params={"q": "Ana", "status": "previewed"})
        assert response.status == 200 and (await response.json())["links"] == []
        for params in ({"sort": "random"}, {"q": "x" * 400}, {"status": "nope"}):
            response = await h.api("GET", "/links", params=params)
            assert response.status == 422, params
            assert (await response.json())["error"]["code"] == "validation_failed"
        response = await h.api("GET", "/links")
        assert "search" not in await response.json()


class TestForAViewer:
    async def test_no_match_on_the_start_of_an_address(self, h: AdminHarness) -> None:
        ids = await family(h)
        viewer = searcher(h)
        whole = await viewer.understand("SAM.RIVERA@example.com", emails=False)
        assert whole is not None and whole.match is not None
        part = await viewer.understand("sam.rivera@ex", emails=False)
        assert part is not None and part.match is None and part.problem
        name = await viewer.understand("river", emails=False)
        assert name is not None and name.match is not None
        page = await h.app[LISTING].list(LinkFilter(match=name.match))
        # The name "Sam Rivera" only: not riverside.parent@..., whose address starts with it.
        assert [s.link.id for s in page.links] == [ids["maya"]]


@pytest.mark.parametrize(
    "match",
    [
        LinkMatch(ref_prefix="U12-"),
        LinkMatch(email="a@example.com"),
        LinkMatch(email_prefix="a@ex"),
        LinkMatch(name="Sam"),
        LinkMatch(name="Sam", name_emails=False),
    ],
)
@pytest.mark.parametrize("sqlite", [True, False])
def test_search_and_previewed_conditions_are_compiled_once(match: LinkMatch, sqlite: bool) -> None:
    # A statement without a cache key is compiled anew on every call.
    now = datetime(2026, 4, 1, tzinfo=UTC)
    condition = sa.and_(match.condition(sqlite=sqlite), status_condition("previewed", now))
    assert sa.select(Link.id).where(condition)._generate_cache_key() is not None
