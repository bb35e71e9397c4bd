"""The application factory: settings in, a ready aiohttp app out (docs/style.md: no singletons).

Every resource is opened and closed by one cleanup context, in order: the HTTP session, the
database (migrated on start when asked), the services (built by ``gateway.wiring``, with the
Stripe client on that session), and the background tasks. Tests build the app with this very
factory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from gateway.adapters.db.engine import create_database
from gateway.adapters.db.revision import upgrade_if_needed
from gateway.clock import Clock, SystemClock
from gateway.config import Settings
from gateway.resources import resource_dir
from gateway.services.org_settings import REFRESH_INTERVAL
from gateway.services.reminders import SCHEDULE_INTERVAL
from gateway.visitors import Classifier
from gateway.web import health, pay, reminders, stripe_webhook
from gateway.web.admin import setup_admin
from gateway.web.console import setup_console
from gateway.web.keys import (
    ACCOUNTS,
    ADMIN,
    ALERTS,
    AUDIT_TRAIL,
    CHANGE_FEED,
    CHECKOUT,
    CLASSIFIER,
    CLOCK,
    CONSOLE_AUTH,
    DATABASE,
    HTTP_SESSION,
    LINK_BULK,
    LINK_EXPORT,
    LINK_SEARCH,
    LINKS,
    LISTING,
    MAILER,
    METRICS,
    MONEY,
    OPENS,
    ORG_SETTINGS,
    OUTBOX,
    OVERVIEW,
    PAYMENTS,
    RECONCILER,
    REMINDERS,
    RENEWALS,
    SETTINGS,
    SUPPORT,
    TIMELINE,
    TOKENS,
    WEBHOOKS,
)
from gateway.web.language import LANGUAGES, Languages
from gateway.web.metrics import setup_metrics
from gateway.web.middleware import edge
from gateway.web.pages import security_headers, setup_pages
from gateway.web.static import StaticFiles
from gateway.wiring import build_services, token_service

log = logging.getLogger(__name__)

OPENS_FLUSH_SECONDS = 2.0


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    auto_migrate: bool = True,
    background_tasks: bool = True,
) -> web.Application:
    app = web.Application(client_max_size=settings.server.max_body_bytes)
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[TOKENS] = token_service(settings, app[CLOCK])  # missing keys fail here, not on start
    app[CLASSIFIER] = Classifier(extra_patterns=settings.bots.extra_patterns)

    hsts = settings.server.public_url.startswith("https://")
    headers = security_headers(_checkout_origins(settings), hsts=hsts)
    static = StaticFiles(resource_dir("static"), headers)
    if not settings.checkout.contact_email:
        log.warning(
            "checkout.contact_email is not set: pages tell payers to contact %s, with no address",
            settings.checkout.org_name,
        )
    _note_receipts(settings)
    page_globals = {
        "org_name": settings.checkout.org_name,
        "contact_email": settings.checkout.contact_email,
        "static_url": static.url,
    }
    checkout = settings.checkout
    pages = setup_pages(
        app,
        page_globals,
        headers,
        timezone=checkout.timezone,
        default_locale=checkout.default_locale,
    )
    languages = app[LANGUAGES] = Languages(checkout.default_locale, secure_cookie=hsts)
    metrics = setup_metrics(app)

    def problem_seen(link_id: str) -> None:  # an error page for a payer's link (services.opens)
        app[OPENS].problem_seen(link_id)

    app.middlewares.append(edge(metrics, pages, headers, languages, problem_seen))
    app.router.add_routes(pay.routes)
    app.router.add_routes(reminders.routes)
    app.router.add_routes(stripe_webhook.routes)
    stripe_webhook.log_needed_events(settings.server.public_url)
    health.setup_health(app)
    app.router.add_routes(static.routes())

    app.cleanup_ctx.append(_http_session)
    app.cleanup_ctx.append(_database(auto_migrate))
    app.cleanup_ctx.append(_services)
    setup_admin(app)
    setup_console(app, static.url)
    if background_tasks:
        app.cleanup_ctx.append(_flush_opens)
        app.cleanup_ctx.append(_reconcile_periodically)
        app.cleanup_ctx.append(_send_mail)
        app.cleanup_ctx.append(_owe_alerts)
        app.cleanup_ctx.append(_owe_reminders)
        app.cleanup_ctx.append(_follow_changes)
        app.cleanup_ctx.append(_refresh_org_settings)
    return app


def _note_receipts(settings: Settings) -> None:
    """email.receipts = false leaves receipts to Stripe, which sends none in test mode."""
    if not settings.email.receipts and settings.stripe.api_key.startswith("sk_test_"):
        log.warning(
            "email.receipts is off and the Stripe key is a test key: Stripe sends no receipts "
            "in test mode, so payers get no receipt at all until a live key is used"
        )


def _checkout_origins(settings: Settings) -> tuple[str, ...]:
    """Where the Pay form's redirect may lead (CSP form-action applies to redirects too)."""
    origins = {"https://checkout.stripe.com"}
    if not settings.stripe.api_base.startswith("https://api.stripe.com"):
        # A Stripe stand-in (the emulator) hosts its own checkout page.
        origins.add(settings.stripe.api_base.rstrip("/"))
    return tuple(sorted(origins))


async def _http_session(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        app[HTTP_SESSION] = session
        yield


def _database(auto_migrate: bool):  # type: ignore[no-untyped-def]
    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS].database
        db = create_database(settings.url, pool_size=settings.pool_size)
        try:
            if auto_migrate:
                await upgrade_if_needed(db)
            app[DATABASE] = db
            yield
        finally:
            await db.dispose()

    return context


async def _services(app: web.Application) -> AsyncIterator[None]:
    services = build_services(
        app[SETTINGS], app[CLOCK], app[DATABASE], app[HTTP_SESSION], tokens=app[TOKENS]
    )
    app[PAYMENTS] = services.payments
    app[CHANGE_FEED] = services.change_feed
    pay.setup_payable_pages(app, services.snapshots)  # the GET path's packed pages, a sibling
    app[CHECKOUT] = services.checkout
    app[LINKS] = services.links
    app[WEBHOOKS] = services.webhooks
    app[OPENS] = services.opens
    app[RECONCILER] = services.reconciler
    app[MAILER] = services.mailer
    app[ADMIN] = services.admin
    app[RENEWALS] = services.renewals
    app[LISTING] = services.listing
    app[OUTBOX] = services.outbox
    app[ALERTS] = services.alerts
    app[REMINDERS] = services.reminders
    app[ACCOUNTS] = services.accounts
    app[CONSOLE_AUTH] = services.console_auth
    app[OVERVIEW] = services.overview
    app[TIMELINE] = services.timeline
    app[ORG_SETTINGS] = services.org_settings
    await services.org_settings.load()
    app[AUDIT_TRAIL] = services.audit_trail
    app[LINK_SEARCH] = services.link_search
    app[LINK_EXPORT] = services.link_export
    app[LINK_BULK] = services.link_bulk
    app[MONEY] = services.money
    app[SUPPORT] = services.support
    yield
    # Counts gathered since the last flush are written before the database closes.
    with contextlib.suppress(Exception):
        await app[OPENS].flush()


def _periodic(
    name: str,
    interval: Callable[[web.Application], float],
    job: Callable[[web.Application], Awaitable[object]],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A background task running ``job`` every ``interval`` seconds until the app stops.
    A failing run is logged and retried at the next interval, never fatal."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(interval(app))
                try:
                    await job(app)
                except Exception:
                    log.exception("%s failed; will retry", name)

        task = asyncio.create_task(loop(), name=name)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context


# Open counts are flushed every few seconds; with several replicas, one reconciles at a time.
_flush_opens = _periodic(
    "flush-opens", lambda _: OPENS_FLUSH_SECONDS, lambda app: app[OPENS].flush()
)
_reconcile_periodically = _periodic(
    "reconcile", lambda app: app[SETTINGS].reconcile.interval, lambda app: _reconcile(app)
)


async def _send_due_mail(app: web.Application) -> None:
    """The outbox's sender (safe on every replica at once: each claims its own rows)."""
    report = await app[OUTBOX].send_due()
    metrics = app[METRICS]
    for delivery in report.deliveries:
        metrics.record_outbox(delivery.kind, delivery.outcome, delivery.resent_after_crash)
    for _ in report.abandoned:
        metrics.record_outbox("unknown", "abandoned", False)


_send_mail = _periodic("send-mail", lambda app: app[SETTINGS].email.send_interval, _send_due_mail)

# The alert digest: looked for often (every replica), owed once per alerts.interval whatever
# the number of runs (services.alerts: one row per window).
ALERTS_CHECK_SECONDS = 300.0
_owe_alerts = _periodic(
    "alerts",
    lambda app: min(app[SETTINGS].alerts.interval, ALERTS_CHECK_SECONDS),
    lambda app: app[ALERTS].run(),
)

# Reminders: each replica looks every few minutes; a step is one row whoever writes it
# (services.reminders), so any number of runs owe it once.
_owe_reminders = _periodic(
    "reminders", lambda _: SCHEDULE_INTERVAL, lambda app: app[REMINDERS].schedule()
)

# Learn what other replicas changed, so the GET snapshot stays within database.snapshot_ttl.
_follow_changes = _periodic(
    "change-feed",
    lambda app: app[SETTINGS].database.snapshot_ttl,
    lambda app: app[CHANGE_FEED].poll(),
)


async def _reconcile(app: web.Application) -> None:
    app[METRICS].record_reconcile(await app[RECONCILER].run())


# Another replica's change to the console's settings, picked up here.
_refresh_org_settings = _periodic(
    "org-settings", lambda _: REFRESH_INTERVAL, lambda app: app[ORG_SETTINGS].refresh()
)
