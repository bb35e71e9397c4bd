"""A gateway wired to the Stripe emulator over loopback HTTP, with helpers that read like the
flows they drive. Both sides share one FakeClock, so tests move time instead of sleeping."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer, unused_port

from gateway.adapters.db.models import AuditEntry, Order
from gateway.app import create_app
from gateway.config import Settings, load_settings
from gateway.dev.clock import FakeClock
from gateway.dev.emulator import StripeEmulator, create_emulator_app
from gateway.domain.links import validate_new_link
from gateway.services.links import IssuedLink
from gateway.web.keys import DATABASE, LINKS, OPENS

IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36"
)
BROWSER_HEADERS = {"User-Agent": IPHONE_SAFARI, "Accept-Language": "en-US,en;q=0.9"}
WEBHOOK_SECRET = "whsec_test_harness"
TOKEN_SECRET = "test-secret-key-not-for-production"


def test_settings(database_url: str, emulator_url: str, **checkout: Any) -> Settings:
    base = load_settings(path=None, env={})
    return base.replace(
        database=dataclasses.replace(base.database, url=database_url),
        tokens=dataclasses.replace(base.tokens, secret_keys=(TOKEN_SECRET,)),
        stripe=dataclasses.replace(
            base.stripe,
            api_key="sk_test_harness",
            webhook_secret=WEBHOOK_SECRET,
            api_base=emulator_url,
            timeout=2.0,
            max_retries=0,
        ),
        checkout=dataclasses.replace(
            base.checkout, org_name="Riverside Youth Basketball", **checkout
        ),
    )


class Harness:
    def __init__(
        self,
        clock: FakeClock,
        emulator: StripeEmulator,
        emulator_server: TestServer,
        client: TestClient[Any, Any],
    ) -> None:
        self.clock = clock
        self.emulator = emulator
        self.emulator_server = emulator_server
        self.client = client
        self.app = client.app
        assert self.app is not None

    # --- admin side ------------------------------------------------------------------------
    async def send_raw(self, data: bytes) -> bytes:
        """Send bytes as they are (no client library to tidy them) and read the whole answer."""
        server = self.client.server
        reader, writer = await asyncio.open_connection(server.host, server.port)
        try:
            writer.write(data)
            await writer.drain()
            return await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()

    async def issue(
        self,
        items: Sequence[str] = ("Spring fee=150.00",),
        *,
        ref: str = "2026-04/p1",
        valid_for: float = 30 * 86400,
        email: str = "parent@example.com",
        name: str = "Sam Rivera",
        locale: str | None = None,
    ) -> IssuedLink:
        new = validate_new_link(
            email=email,
            name=name,
            description="Spring season",
            currency="usd",
            items=list(items),
            ref=ref,
            valid_for=valid_for,
            max_valid_for=366 * 86400,
            locale=locale,
        )
        return await self.app[LINKS].issue(new, actor="test")

    # --- payer side ------------------------------------------------------------------------
    def path(self, link: IssuedLink | str) -> str:
        token = link if isinstance(link, str) else link.token
        return f"/pay/{token}"

    async def get(
        self, link: IssuedLink | str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> ClientResponse:
        return await self.client.get(self.path(link), headers=headers or BROWSER_HEADERS, **kwargs)

    async def head(
        self, link: IssuedLink | str, headers: dict[str, str] | None = None
    ) -> ClientResponse:
        return await self.client.head(self.path(link), headers=headers or BROWSER_HEADERS)

    async def post(
        self, link: IssuedLink | str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> ClientResponse:
        return await self.client.post(
            self.path(link), headers=headers or BROWSER_HEADERS, allow_redirects=False, **kwargs
        )

    async def pay_flow(self, link: IssuedLink) -> str:
        """Press Pay and pay on the emulator; returns the session id."""
        response = await self.post(link)
        assert response.status == 303, await response.text()
        session_id = session_id_from(response.headers["Location"])
        self.emulator.pay(session_id)
        await self.emulator.deliver_webhooks()
        return session_id

    # --- looking inside --------------------------------------------------------------------
    async def orders(self, link: IssuedLink | str) -> list[Order]:
        link_id = link if isinstance(link, str) else link.id
        async with self.app[DATABASE].read() as session:
            rows = await session.execute(
                sa.select(Order)
                .where(Order.link_id == link_id)
                .order_by(Order.created_at, Order.id)
            )
            return list(rows.scalars())

    async def all_orders(self) -> list[Order]:
        async with self.app[DATABASE].read() as session:
            return list((await session.execute(sa.select(Order))).scalars())

    async def audit(self, link: IssuedLink) -> list[AuditEntry]:
        async with self.app[DATABASE].read() as session:
            rows = await session.execute(
                sa.select(AuditEntry).where(AuditEntry.link_id == link.id).order_by(AuditEntry.id)
            )
            return list(rows.scalars())

    async def flush_opens(self) -> None:
        await self.app[OPENS].flush()

    def stripe_posts(
        self, path_prefix: str = "/v1/checkout/sessions"
    ) -> list[tuple[str, str, str | None]]:
        return [r for r in self.emulator.request_log if r[0] == "POST" and r[1] == path_prefix]


def session_id_from(url: str) -> str:
    match = re.search(r"(cs_[A-Za-z0-9_]+)", url)
    assert match, url
    return match[1]


HarnessT = TypeVar("HarnessT", bound="Harness")


async def start_harness(
    aiohttp_server: Any,
    aiohttp_client: Any,
    database_url: str,
    *,
    harness: type[HarnessT] = Harness,  # type: ignore[assignment]
    configure: Callable[[Settings], Settings] = lambda settings: settings,
    **checkout: Any,
) -> HarnessT:
    """The emulator, then the gateway on a port chosen first, so that its public URL and the
    emulator's webhook URL are right from the start. ``configure`` adjusts the settings."""
    clock = FakeClock()
    emulator = StripeEmulator(clock=clock, webhook_mode="manual", webhook_secret=WEBHOOK_SECRET)
    emulator_server = await aiohttp_server(create_emulator_app(emulator))
    emulator_url = str(emulator_server.make_url("")).rstrip("/")
    emulator.public_url = emulator_url
    port = unused_port()
    public = f"http://127.0.0.1:{port}"
    settings = test_settings(database_url, emulator_url, **checkout)
    settings = dataclasses.replace(
        settings, server=dataclasses.replace(settings.server, public_url=public)
    )
    emulator.webhooks.url = f"{public}/stripe/webhook"
    app = create_app(configure(settings), clock=clock, background_tasks=False)
    client = await aiohttp_client(app, server_kwargs={"port": port, "host": "127.0.0.1"})
    return harness(clock, emulator, emulator_server, client)


def forge(token: str) -> str:
    """Change one character in the middle of the signature. (Not the last one: base64's last
    character carries unused bits, so changing it can leave the signature valid.)"""
    i = len(token) - 10
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
