"""The services without the web server, for the CLI and scripts (same wiring as the app)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from gateway.adapters.db.engine import Database, create_database
from gateway.adapters.db.migrate import upgrade
from gateway.adapters.stripe_checkout import StripeCheckout, create_stripe_client
from gateway.adapters.tokens import TokenService
from gateway.clock import Clock, SystemClock
from gateway.config import DEMO_SECRET, ConfigError, Settings
from gateway.services.checkout import CheckoutService
from gateway.services.links import LinkService
from gateway.services.payments import PaymentRecorder
from gateway.services.reconcile import Reconciler
from gateway.services.webhooks import WebhookService


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    clock: Clock
    db: Database
    tokens: TokenService
    links: LinkService
    payments: StripeCheckout
    checkout: CheckoutService
    webhooks: WebhookService
    reconciler: Reconciler


def token_service(settings: Settings, clock: Clock) -> TokenService:
    secrets = settings.tokens.secret_keys or ((DEMO_SECRET,) if settings.demo else ())
    if not secrets:
        # Every command that reads or writes links needs the keys that sign them.
        raise ConfigError(
            "tokens.secret_keys is required (set GATEWAY_TOKENS_SECRET_KEYS, "
            "or GATEWAY_DEMO=1 for the demo's database)"
        )
    return TokenService(secrets, settings.tokens.max_age, clock)


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, clock: Clock | None = None, migrate: bool = True
) -> AsyncIterator[Runtime]:
    clock = clock or SystemClock()
    db = create_database(settings.database.url, pool_size=settings.database.pool_size)
    try:
        if migrate:
            await upgrade(db)
        async with aiohttp.ClientSession() as http:
            payments = StripeCheckout(
                create_stripe_client(
                    api_key=settings.stripe.api_key or "sk_test_demo",
                    api_base=settings.stripe.api_base,
                    session=http,
                    timeout=settings.stripe.timeout,
                    max_retries=settings.stripe.max_retries,
                )
            )
            tokens = token_service(settings, clock)
            recorder = PaymentRecorder(
                db, payments, clock, refund_duplicates=settings.checkout.refund_duplicates
            )
            webhooks = WebhookService(db, clock, recorder)
            yield Runtime(
                settings=settings,
                clock=clock,
                db=db,
                tokens=tokens,
                links=LinkService(db, tokens, clock, settings.server.public_url),
                payments=payments,
                checkout=CheckoutService(db, payments, clock, settings.checkout, recorder),
                webhooks=webhooks,
                reconciler=Reconciler(
                    db, payments, clock, webhooks, recorder, settings.checkout, settings.reconcile
                ),
            )
    finally:
        await db.dispose()
