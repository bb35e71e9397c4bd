"""The Stripe-down page has a way forward without the browser's reload, and without
``checkout.contact_email`` the start-up log says so and pages name the organisation instead
(issue 11 item 5)."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from gateway.app import create_app
from gateway.web.keys import LINKS
from tests import harness
from tests.harness import Harness, start_harness

HOUR = 3600
ORG = "Riverside Youth Basketball"
CONTACT = "treasurer@riverside.example"


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str) -> Harness:
    return await start_harness(aiohttp_server, aiohttp_client, sqlite_url)


async def text_of(response: Any) -> str:
    return re.sub(r"\s+", " ", await response.text())


# --- item 5: the Stripe-down page, and pages without a contact address -------------------------


class TestStripeDown:
    async def test_the_503_page_has_a_try_again_form_that_posts_to_the_link(
        self, h: Harness
    ) -> None:
        link = await h.issue()
        h.emulator.faults.update({"drop_next": 1})  # Stripe unreachable, once
        down = await h.post(link)
        assert down.status == 503
        body = await text_of(down)
        reference = re.search(r"Reference: <code>([^<]+)</code>", body)
        assert reference and reference[1]
        # No action: the form posts to the page's own address, the link that was pressed.
        form = re.search(
            r"<form method=\"post\"[^>]*>\s*<button type=\"submit\"[^>]*>Try again", body
        )
        assert form, body
        # No inline script: the only one is pay.js, from our origin (CSP script-src 'self').
        assert not re.search(r"<script(?![^>]*\ssrc=)", body) and "onclick" not in body
        # Pressing it (the same POST again) gets the parent to Stripe once Stripe is back.
        again = await h.post(link)
        assert again.status == 303 and "/checkout/cs_" in again.headers["Location"]


class TestContactAddress:
    def app_with(self, sqlite_url: str, contact_email: str) -> None:
        settings = harness.test_settings(
            sqlite_url, "http://127.0.0.1:9", contact_email=contact_email
        )
        create_app(settings, background_tasks=False)

    def test_an_unset_contact_address_is_a_start_up_warning(
        self, sqlite_url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING, logger="gateway.app"):
            self.app_with(sqlite_url, "")
        (record,) = [r for r in caplog.records if "contact_email" in r.getMessage()]
        assert record.levelno == logging.WARNING and ORG in record.getMessage()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="gateway.app"):
            self.app_with(sqlite_url, CONTACT)
        assert not [r for r in caplog.records if "contact_email" in r.getMessage()]

    async def test_pages_that_send_the_parent_to_someone_name_the_organisation(
        self, h: Harness
    ) -> None:
        paid = await h.issue(ref="paid")
        await h.pay_flow(paid)
        assert f"contact {ORG}." in await text_of(await h.get(paid))
        withdrawn = await h.issue(ref="withdrawn")
        await h.app[LINKS].revoke(withdrawn.id, actor="test", reason="test")
        body = await text_of(await h.get(withdrawn))
        assert f"please contact {ORG}." in body and "contact them" not in body
        expired = await h.issue(ref="expired", valid_for=HOUR)
        h.clock.advance(2 * HOUR)
        assert f"ask {ORG} for a new one" in await text_of(await h.get(expired))
        assert "mailto:" not in body
