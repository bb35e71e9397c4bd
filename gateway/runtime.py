"""The services without the web server, for the CLI and scripts (built by ``gateway.wiring``,
as the app's are)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from gateway.adapters.db.engine import Database, create_database
from gateway.adapters.db.revision import upgrade_if_needed
from gateway.adapters.stripe_checkout import StripeCheckout
from gateway.adapters.tokens import TokenService
from gateway.clock import Clock, SystemClock
from gateway.config import Settings
from gateway.services.admin_links import AdminLinks
from gateway.services.checkout import CheckoutService
from gateway.services.email import LinkMailer
from gateway.services.link_listing import LinkListing
from gateway.services.links import LinkService
from gateway.services.org_settings import effective_settings
from gateway.services.reconcile import Reconciler
from gateway.services.webhooks import WebhookService
from gateway.wiring import Services, build_services, token_service

__all__ = ["Runtime", "open_runtime", "token_service"]


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    clock: Clock
    db: Database
    services: Services

    @property
    def tokens(self) -> TokenService:
        return self.services.tokens

    @property
    def links(self) -> LinkService:
        return self.services.links

    @property
    def payments(self) -> StripeCheckout:
        return self.services.payments

    @property
    def checkout(self) -> CheckoutService:
        return self.services.checkout

    @property
    def webhooks(self) -> WebhookService:
        return self.services.webhooks

    @property
    def reconciler(self) -> Reconciler:
        return self.services.reconciler

    @property
    def mailer(self) -> LinkMailer:
        return self.services.mailer

    @property
    def admin(self) -> AdminLinks:
        return self.services.admin

    @property
    def listing(self) -> LinkListing:
        return self.services.listing


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, clock: Clock | None = None, migrate: bool = True
) -> AsyncIterator[Runtime]:
    clock = clock or SystemClock()
    db = create_database(settings.database.url, pool_size=settings.database.pool_size)
    try:
        if migrate:
            await upgrade_if_needed(db)
        settings = await effective_settings(db, settings)
        async with aiohttp.ClientSession() as http:
            yield Runtime(settings, clock, db, build_services(settings, clock, db, http))
    finally:
        await db.dispose()
