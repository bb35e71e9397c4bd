"""The composition root: the one place that builds the services and hands each its collaborators.

The web app (``gateway.app``'s service context), the CLI and scripts (``gateway.runtime``) and
the benchmarks all call :func:`build_services`; no service builds a private copy of another
(one ``PaymentRecorder``, one ``SnapshotCache``, one mailer). What each caller still owns is
what it opens and closes itself: the database, the HTTP session, the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp

from gateway.adapters.db.engine import Database
from gateway.adapters.mail import SmtpMailer
from gateway.adapters.passwords import Passwords
from gateway.adapters.stripe_checkout import StripeCheckout, create_stripe_client
from gateway.adapters.tokens import TokenService
from gateway.adapters.totp import Totp
from gateway.clock import Clock
from gateway.config import DEMO_SECRET, ConfigError, Settings
from gateway.domain.accounts import SessionPolicy
from gateway.resources import resource_dir
from gateway.services.accounts import AccountLinks, Accounts
from gateway.services.admin_links import AdminLinks
from gateway.services.alerts import AlertFinder, AlertScheduler
from gateway.services.audit import AuditTrail
from gateway.services.bulk_issue import BulkIssuer
from gateway.services.checkout import CheckoutService
from gateway.services.console_auth import ConsoleAuth, ThrottlePolicy
from gateway.services.email import LinkMailer
from gateway.services.link_bulk_actions import LinkBulkActions
from gateway.services.link_export import LinkExport
from gateway.services.link_listing import LinkListing
from gateway.services.link_search import LinkSearch
from gateway.services.link_timeline import LinkTimeline
from gateway.services.links import LinkService, LinkUrls
from gateway.services.manual_payments import ManualPayments
from gateway.services.messages import composers
from gateway.services.money_operations import MoneyOperations
from gateway.services.opens import OpenRecorder
from gateway.services.org_settings import OrgSettings
from gateway.services.orphans import OrphanPayments
from gateway.services.outbox import Outbox
from gateway.services.overview import Overview
from gateway.services.payments import PayerNotices, PaymentRecorder
from gateway.services.reconcile import Reconciler
from gateway.services.refunds import Refunds
from gateway.services.reminders import Reminders
from gateway.services.renewal import Renewals
from gateway.services.snapshots import ChangeFeed, SnapshotCache
from gateway.services.support import SupportDesk
from gateway.services.webhooks import WebhookService

# Without a key (the demo, the tests) the SDK still needs one; the emulator accepts any.
FALLBACK_STRIPE_KEY = "sk_test_demo"


@dataclass(frozen=True, slots=True)
class Services:
    tokens: TokenService
    payments: StripeCheckout
    snapshots: SnapshotCache[Any]
    recorder: PaymentRecorder
    checkout: CheckoutService
    links: LinkService
    webhooks: WebhookService
    opens: OpenRecorder
    reconciler: Reconciler
    change_feed: ChangeFeed
    mailer: LinkMailer
    admin: AdminLinks
    renewals: Renewals
    listing: LinkListing
    outbox: Outbox
    alerts: AlertScheduler
    reminders: Reminders
    accounts: Accounts
    console_auth: ConsoleAuth
    overview: Overview
    timeline: LinkTimeline
    org_settings: OrgSettings
    audit_trail: AuditTrail
    link_search: LinkSearch
    link_export: LinkExport
    link_bulk: LinkBulkActions
    money: MoneyOperations
    support: SupportDesk


def token_service(settings: Settings, clock: Clock) -> TokenService:
    secrets = settings.tokens.secret_keys or ((DEMO_SECRET,) if settings.demo else ())
    if not secrets:
        # Every command that reads or writes links needs the keys that sign them.
        raise ConfigError(
            "tokens.secret_keys is required (set GATEWAY_TOKENS_SECRET_KEYS, "
            "or GATEWAY_DEMO=1 for the demo's database)"
        )
    return TokenService(secrets, settings.tokens.max_age, clock)


def stripe_checkout(settings: Settings, http_session: aiohttp.ClientSession) -> StripeCheckout:
    return StripeCheckout(
        create_stripe_client(
            api_key=settings.stripe.api_key or FALLBACK_STRIPE_KEY,
            api_base=settings.stripe.api_base,
            session=http_session,
            timeout=settings.stripe.timeout,
            max_retries=settings.stripe.max_retries,
        )
    )


def build_services(
    settings: Settings,
    clock: Clock,
    db: Database,
    http_session: aiohttp.ClientSession,
    *,
    tokens: TokenService | None = None,
) -> Services:
    """Every service, built once. ``tokens`` when the caller already made them (the app does,
    at construction, so missing keys fail before it starts)."""
    tokens = tokens or token_service(settings, clock)
    payments = stripe_checkout(settings, http_session)
    snapshots: SnapshotCache[Any] = SnapshotCache(ttl=settings.database.snapshot_ttl)
    smtp = SmtpMailer(settings.email) if settings.email.enabled else None
    templates_dir = str(resource_dir("templates"))
    alert_finder = AlertFinder(db)
    urls = LinkUrls(tokens, settings.server.public_url)
    # The console's settings: receipts and the reminder schedule follow a change at once.
    org = OrgSettings(db, clock, settings)
    outbox = Outbox(
        db,
        clock,
        mailer=smtp,
        composers=composers(
            settings,
            clock,
            templates_dir,
            alerts=alert_finder,
            db=db,
            links=urls,
            schedule=lambda: org.current().reminder_schedule,
        ),
        domain=settings.email.from_address.rpartition("@")[2],
    )
    # What payers are told when a payment changes, owed in the transaction that records it.
    notices = PayerNotices(
        outbox,
        receipts=lambda: org.current().receipts,
        refund_duplicates=settings.checkout.refund_duplicates,
        default_locale=settings.checkout.default_locale,
    )
    recorder = PaymentRecorder(
        db,
        payments,
        clock,
        refund_duplicates=settings.checkout.refund_duplicates,
        snapshots=snapshots,
        notices=notices,
    )
    # Revoking retires a pending attempt on Stripe and never refunds a duplicate it meets on
    # the way (the reconciler does, with checkout.refund_duplicates): a recorder of its own. A
    # payment it finds while retiring an attempt is owed its receipt like any other.
    revoke_recorder = PaymentRecorder(
        db, payments, clock, refund_duplicates=False, snapshots=snapshots, notices=notices
    )
    links = LinkService(
        db, tokens, clock, settings.server.public_url, snapshots, recorder=revoke_recorder
    )
    webhooks = WebhookService(db, clock, recorder)
    mailer = LinkMailer(db, outbox, settings, clock)
    listing = LinkListing(db, clock)
    # Refunds, payments outside Stripe and orphan payments (issue 16). Marking a link paid
    # retires its pending attempt like a revoke (never refunding a duplicate on the way).
    money = MoneyOperations(
        refunds=Refunds(db, payments, clock, recorder),
        manual=ManualPayments(db, clock, revoke_recorder),
        orphans=OrphanPayments(
            db, payments, clock, recorder, lookback=timedelta(seconds=settings.reconcile.lookback)
        ),
    )
    reconciler = Reconciler(
        db,
        payments,
        clock,
        webhooks,
        recorder,
        settings.checkout,
        settings.reconcile,
        refunds=money.refunds,
        orphans=money.orphans,
    )
    admin = AdminLinks(
        db,
        links,
        mailer,
        payments,
        settings,
        clock,
        listing,
        BulkIssuer(db, links, mailer, settings, clock, listing),
    )
    # The console's search box, read the same way by the support desk.
    link_search = LinkSearch(db, tokens)
    # The support desk (issue 16): find, diagnose, reply, and the fixes through the services above.
    support = SupportDesk(
        db,
        clock,
        provider=payments,
        search=link_search,
        listing=listing,
        money=money,
        outbox=outbox,
        admin=admin,
        webhooks=webhooks,
        reconciler=reconciler,
        default_locale=settings.checkout.default_locale,
        timezone=settings.checkout.timezone,
        org_name=settings.checkout.org_name,
    )
    return Services(
        tokens=tokens,
        payments=payments,
        snapshots=snapshots,
        recorder=recorder,
        checkout=CheckoutService(
            db,
            payments,
            clock,
            settings.checkout,
            recorder,
            stripe_deadline=settings.stripe.request_deadline,
        ),
        links=links,
        webhooks=webhooks,
        opens=OpenRecorder(db, clock),
        reconciler=reconciler,
        change_feed=ChangeFeed(db, clock, snapshots),
        mailer=mailer,
        admin=admin,
        renewals=Renewals(db, links, mailer, payments, settings, clock),
        listing=listing,
        outbox=outbox,
        alerts=AlertScheduler(db, clock, outbox, alert_finder, settings),
        reminders=Reminders(
            db, outbox, clock, settings, schedule=lambda: org.current().reminder_schedule
        ),
        accounts=Accounts(
            db,
            clock,
            outbox,
            public_url=settings.server.public_url,
            links=AccountLinks.from_settings(settings),
            passwords=(passwords := Passwords()),
            totp=Totp(settings.checkout.org_name),
            default_locale=settings.checkout.default_locale,
        ),
        console_auth=console_auth(settings, clock, db, passwords=passwords),
        overview=Overview(db, clock, alert_finder, org),
        timeline=LinkTimeline(db, clock, urls),
        org_settings=org,
        audit_trail=AuditTrail(db),
        link_search=link_search,
        link_export=LinkExport(db, listing, clock),
        link_bulk=LinkBulkActions(db, listing, admin, links, mailer, payments, clock),
        money=money,
        support=support,
    )


def console_auth(
    settings: Settings, clock: Clock, db: Database, *, passwords: Passwords | None = None
) -> ConsoleAuth:
    admin = settings.admin
    return ConsoleAuth(
        db,
        clock,
        policy=SessionPolicy(
            idle=timedelta(seconds=admin.session_idle),
            absolute=timedelta(seconds=admin.session_absolute),
        ),
        throttle=ThrottlePolicy(
            max_failures=admin.login_max_failures,
            window=admin.login_window,
            lockout=admin.login_lockout,
        ),
        require_2fa=admin.require_2fa,
        passwords=passwords or Passwords(),
        totp=Totp(settings.checkout.org_name),
    )
