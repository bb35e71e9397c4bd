"""``POST /admin/api/links`` on both databases: amounts read one unambiguous way and shown
back, what Stripe would refuse refused at issue time, one live link per ref, and input that
used to answer 500 (deep JSON, lone surrogates, NUL bytes) answered with a 4xx that changes
nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.adapters.db.models import Link
from gateway.dev.demo_mail import MailSink
from gateway.web.keys import DATABASE
from tests.admin.support import AdminHarness, start_admin_harness

NEW = {"email": "ana@example.com", "name": "Ana Lopez", "ref": "2026-04/p1"}


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> AdminHarness:
    return await start_admin_harness(aiohttp_server, aiohttp_client, database_url)


async def count_links(h: AdminHarness) -> int:
    async with h.app[DATABASE].read() as session:
        return int(
            (await session.execute(sa.select(sa.func.count()).select_from(Link))).scalar_one()
        )


async def create(h: AdminHarness, **body: Any) -> tuple[int, Any]:
    response = await h.api("POST", "/links", json={**NEW, **body})
    return response.status, await response.json()


class TestAmounts:
    @pytest.mark.parametrize(
        ("amount", "suggestion"),
        [("150,00", "150.00"), ("85,50", "85.50"), ("1,500", "1500.00"), ("1.500,00", "1500.00")],
    )
    async def test_an_ambiguous_amount_is_refused_with_how_to_write_it(
        self, h: AdminHarness, amount: str, suggestion: str
    ) -> None:
        status, body = await create(h, items=[f"Fee={amount}"], currency="eur")
        assert status == 422
        message = body["error"]["fields"]["items[0]"]
        assert "ambiguous" in message and suggestion in message
        assert await count_links(h) == 0

    async def test_the_answer_shows_the_parsed_amounts(self, h: AdminHarness) -> None:
        status, body = await create(
            h, items=["Fee=1,500.00", {"description": "Kit", "amount": "25.50", "quantity": 2}]
        )
        assert status == 201, body
        assert body["status"] == "created" and body["existing"] is False
        assert body["total"] == body["amount_display"] == "1,551.00 USD"
        assert [(i["description"], i["amount_display"], i["quantity"]) for i in body["items"]] == [
            ("Fee", "1,500.00 USD", 1),
            ("Kit", "25.50 USD", 2),
        ]
        assert (body["name"], body["payer_email"]) == ("Ana Lopez", "ana@example.com")

    @pytest.mark.parametrize(
        ("body", "field", "message"),
        [
            ({"items": ["Fee=0.30"]}, "total", "below Stripe's minimum charge of 0.50 USD"),
            ({"items": ["Fee=0.29"], "currency": "gbp"}, "total", "0.30 GBP"),
            ({"items": ["Fee=49"], "currency": "jpy"}, "total", "50 JPY"),
            ({"items": ["Fee=10"], "currency": "xyz"}, "currency", "not a currency Stripe"),
            ({"items": ["Fee=12.345"], "currency": "kwd"}, "items[0]", "the third must be 0"),
            ({"items": ["Fee=5.50"], "currency": "isk"}, "items[0]", "whole units"),
        ],
    )
    async def test_what_stripe_would_refuse_is_refused_before_the_parent_presses_pay(
        self, h: AdminHarness, body: dict[str, Any], field: str, message: str
    ) -> None:
        status, answer = await create(h, **body)
        assert status == 422
        assert message in answer["error"]["fields"][field]
        assert await count_links(h) == 0


class TestOneLiveLinkPerRef:
    async def test_the_same_ref_returns_the_existing_link(self, h: AdminHarness) -> None:
        status, first = await create(h, items=["Fee=150.00"])
        assert status == 201
        status, second = await create(h, items=["Fee=160.00"], name="Ana López")
        assert status == 200
        assert (second["id"], second["url"]) == (first["id"], first["url"])
        assert second["existing"] is True and second["status"] == "existing"
        # What is shown is the link that exists, and what differs from the request.
        assert second["total"] == "150.00 USD"
        assert second["differs"] == ["name", "amount"]
        assert await count_links(h) == 1

    async def test_allow_duplicate_ref_issues_a_second_one(self, h: AdminHarness) -> None:
        _, first = await create(h, items=["Fee=150.00"])
        status, second = await create(h, items=["Fee=150.00"], allow_duplicate_ref=True)
        assert status == 201 and second["id"] != first["id"]
        assert await count_links(h) == 2
        status, body = await create(h, items=["Fee=1"], allow_duplicate_ref="yes")
        assert status == 422 and "allow_duplicate_ref" in body["error"]["fields"]

    async def test_a_revoked_links_ref_is_issued_again(self, h: AdminHarness) -> None:
        _, first = await create(h, items=["Fee=150.00"])
        await h.api("POST", f"/links/{first['id']}/revoke", json={"reason": "wrong amount"})
        status, second = await create(h, items=["Fee=140.00"])
        assert status == 201 and second["id"] != first["id"]

    async def test_links_without_a_ref_are_never_matched(self, h: AdminHarness) -> None:
        for _ in range(2):
            status, _ = await create(h, items=["Fee=150.00"], ref="")
            assert status == 201
        assert await count_links(h) == 2

    async def test_two_requests_at_the_same_moment_issue_one_link(self, h: AdminHarness) -> None:
        answers = await asyncio.gather(*(create(h, items=["Fee=150.00"]) for _ in range(4)))
        assert sorted(status for status, _ in answers) == [200, 200, 200, 201]
        assert len({body["id"] for _, body in answers}) == 1
        assert await count_links(h) == 1


class TestCreateAndSend:
    async def test_send_emails_a_new_link_and_not_an_existing_one_twice(
        self, aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str, mail_sink: MailSink
    ) -> None:
        h = await start_admin_harness(
            aiohttp_server, aiohttp_client, sqlite_url, smtp_port=mail_sink.port
        )
        status, body = await create(h, items=["Fee=150.00"], send=True)
        assert status == 201 and body["email"] == {"sent": True, "error": None}
        assert len(mail_sink.to("ana@example.com")) == 1
        status, again = await create(h, items=["Fee=150.00"], send=True)
        assert status == 200 and again["id"] == body["id"]
        assert again["email"]["sent"] is False and "resend" in again["email"]["skipped"]
        assert len(mail_sink.messages) == 1


class TestInputThatUsedToAnswer500:
    @pytest.mark.parametrize("path", ["/links", "/links/bulk"])
    async def test_json_nested_50000_deep_is_a_400(self, h: AdminHarness, path: str) -> None:
        body = ("[" * 50_000 + "]" * 50_000).encode()
        response = await h.api(
            "POST", path, data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status == 400, await response.text()
        assert "nested too deeply" in (await response.json())["error"]["message"]
        assert await count_links(h) == 0

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"name": "\ud800"}, "name"),
            ({"name": "Ana\x00Lopez"}, "name"),
            ({"description": "Spring \x1b[31m"}, "description"),
            ({"ref": "2026\ud800"}, "ref"),
            ({"ref": "2026\n04"}, "ref"),
            ({"email": "ana\x00@example.com"}, "email"),
            ({"items": ["Fee\ud800=10.00"]}, "items[0]"),
            ({"items": [{"description": "Kit\x00", "amount": "10"}]}, "items[0]"),
            ({"name": {"first": "Ana"}}, "name"),
            ({"name": ["Ana"]}, "name"),
        ],
    )
    async def test_text_that_is_not_storable_is_a_422(
        self, h: AdminHarness, body: dict[str, Any], field: str
    ) -> None:
        status, answer = await create(h, **{"items": ["Fee=150.00"], **body})
        assert status == 422, answer
        assert field in answer["error"]["fields"]
        assert await count_links(h) == 0

    async def test_a_revoke_reason_and_a_ref_prefix_are_checked_too(self, h: AdminHarness) -> None:
        _, link = await create(h, items=["Fee=150.00"])
        response = await h.api("POST", f"/links/{link['id']}/revoke", json={"reason": "\ud800"})
        assert response.status == 422
        detail = await (await h.api("GET", f"/links/{link['id']}")).json()
        assert detail["revoked_at"] is None
        response = await h.api("GET", "/links", params={"ref_prefix": "2026\x00"})
        assert response.status == 422


async def stored_locales(h: AdminHarness) -> list[str | None]:
    async with h.app[DATABASE].read() as session:
        return list((await session.execute(sa.select(Link.locale).order_by(Link.ref))).scalars())


class TestLocale:
    @pytest.mark.parametrize(
        ("given", "stored"), [("es", "es"), ("pt_br", "pt-BR"), ("PT-br", "pt-BR"), ("FR", "fr")]
    )
    async def test_an_offered_locale_is_stored_as_written_by_the_catalogs_and_shown_back(
        self, h: AdminHarness, given: str, stored: str
    ) -> None:
        status, body = await create(h, items=["Fee=150.00"], locale=given)
        assert status == 201, body
        assert body["locale"] == stored
        assert await stored_locales(h) == [stored]
        detail = await (await h.api("GET", f"/links/{body['id']}")).json()
        assert detail["locale"] == stored
        page = await (await h.api("GET", "/links")).json()
        assert [row["locale"] for row in page["links"]] == [stored]

    @pytest.mark.parametrize("given", ["de", "pt-PT", "english", "es-MX", 7])
    async def test_a_locale_not_offered_is_a_422_naming_the_offered_ones_and_creates_nothing(
        self, h: AdminHarness, given: Any
    ) -> None:
        status, body = await create(h, items=["Fee=150.00"], locale=given)
        assert status == 422, body
        assert body["error"]["code"] == "validation_failed"
        message = body["error"]["fields"]["locale"]
        assert "offered: en, es, pt-BR, fr" in message
        assert await count_links(h) == 0

    async def test_every_problem_is_reported_together_with_the_locale(
        self, h: AdminHarness
    ) -> None:
        status, body = await create(h, items=["Fee=abc"], email="nope", locale="de")
        assert status == 422
        assert {"email", "items[0]", "locale"} <= set(body["error"]["fields"])

    @pytest.mark.parametrize("body", [{}, {"locale": None}, {"locale": ""}, {"locale": "  "}])
    async def test_without_a_locale_none_is_stored_and_the_json_says_null(
        self, h: AdminHarness, body: dict[str, Any]
    ) -> None:
        status, created = await create(h, items=["Fee=150.00"], **body)
        assert status == 201, created
        assert created["locale"] is None
        assert await stored_locales(h) == [None]
        detail = await (await h.api("GET", f"/links/{created['id']}")).json()
        assert "locale" in detail and detail["locale"] is None

    async def test_an_existing_link_shows_its_own_locale_and_a_different_one_differs(
        self, h: AdminHarness
    ) -> None:
        _, first = await create(h, items=["Fee=150.00"], locale="es")
        status, again = await create(h, items=["Fee=150.00"], locale="fr")
        assert status == 200 and again["id"] == first["id"]
        assert again["locale"] == "es" and again["differs"] == ["locale"]
        # Asking for no locale asks for nothing: the same link, no difference.
        status, same = await create(h, items=["Fee=150.00"])
        assert status == 200 and same["locale"] == "es" and "differs" not in same
        assert await stored_locales(h) == ["es"]
