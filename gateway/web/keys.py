"""Typed application keys: every shared object of the app, and nothing global."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from gateway.adapters.db.engine import Database
from gateway.adapters.tokens import TokenService
from gateway.clock import Clock
from gateway.config import Settings
from gateway.domain.payments import PaymentProvider
from gateway.metrics import Metrics
from gateway.services.accounts import Accounts
from gateway.services.admin_links import AdminLinks
from gateway.services.alerts import AlertScheduler
from gateway.services.audit import AuditTrail
from gateway.services.checkout import CheckoutService
from gateway.services.console_auth import ConsoleAuth
from gateway.services.email import LinkMailer
from gateway.services.link_listing import LinkListing
from gateway.services.link_timeline import LinkTimeline
from gateway.services.links import LinkService
from gateway.services.money_operations import MoneyOperations
from gateway.services.opens import OpenRecorder
from gateway.services.org_settings import OrgSettings
from gateway.services.outbox import Outbox
from gateway.services.overview import Overview
from gateway.services.reconcile import Reconciler
from gateway.services.reminders import Reminders
from gateway.services.renewal import Renewals
from gateway.services.snapshots import ChangeFeed
from gateway.services.support import SupportDesk
from gateway.services.webhooks import WebhookService
from gateway.visitors import Classifier
from gateway.web.admin_auth import AdminKeys

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
DATABASE = web.AppKey("database", Database)
HTTP_SESSION = web.AppKey("http_session", aiohttp.ClientSession)
PAYMENTS = web.AppKey("payments", PaymentProvider)
TOKENS = web.AppKey("tokens", TokenService)
CLASSIFIER = web.AppKey("classifier", Classifier)
CHECKOUT = web.AppKey("checkout", CheckoutService)
LINKS = web.AppKey("links", LinkService)
WEBHOOKS = web.AppKey("webhooks", WebhookService)
OPENS = web.AppKey("opens", OpenRecorder)
RECONCILER = web.AppKey("reconciler", Reconciler)
METRICS = web.AppKey("metrics", Metrics)
MAILER = web.AppKey("mailer", LinkMailer)
ADMIN = web.AppKey("admin", AdminLinks)
RENEWALS = web.AppKey("renewals", Renewals)
LISTING = web.AppKey("listing", LinkListing)
ADMIN_KEYS = web.AppKey("admin_keys", AdminKeys)
CHANGE_FEED = web.AppKey("change_feed", ChangeFeed)
OUTBOX = web.AppKey("outbox", Outbox)
ALERTS = web.AppKey("alerts", AlertScheduler)
REMINDERS = web.AppKey("reminders", Reminders)
ACCOUNTS = web.AppKey("accounts", Accounts)
CONSOLE_AUTH = web.AppKey("console_auth", ConsoleAuth)
OVERVIEW = web.AppKey("overview", Overview)
TIMELINE = web.AppKey("timeline", LinkTimeline)
ORG_SETTINGS = web.AppKey("org_settings", OrgSettings)
AUDIT_TRAIL = web.AppKey("audit_trail", AuditTrail)
MONEY = web.AppKey("money", MoneyOperations)
SUPPORT = web.AppKey("support", SupportDesk)
