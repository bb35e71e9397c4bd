"""The support desk (issue 16): a parent writes "I was charged but got nothing"; a support person
pastes whatever the parent sent into one box and gets, per link, what happened, which fix to
use, and a reply to send. ``gateway support find``, ``GET /admin/api/support/find`` and the
console's Support page all call :class:`SupportDesk`.

**Find** (:meth:`SupportDesk.find`). The query is read by the console's search box
(:class:`gateway.services.link_search.LinkSearch`: an email, a name, a reference or prefix, a
link id, a payment URL or token, ``cs_``/``pi_``/``ch_``) and, before it, the kinds only support
asks for: a Stripe refund ``re_`` (``refunds.stripe_refund_id``, ``orders.refund_id``), an event
``evt_`` (the webhook inbox), a dispute ``dp_`` and "last4 amount date". The database first
(the orphan payments too, for ``cs_``/``pi_``); where it has nothing, Stripe is asked through the
payment port (a session, a payment intent, an event by id) and the metadata it carries names the
link. Each result says where it came from (``database`` or ``stripe``). At most
:data:`MAX_RESULTS` links.

**Diagnose** (:meth:`SupportDesk.diagnose`): the link's facts read in one transaction, the
decision made by :func:`gateway.domain.support.diagnose`, the sentence and the fixes' names from
the catalogs below.

**Reply** (:meth:`SupportDesk.reply`): one template per kind, in the link's language, filled
with the facts (amount and dates formatted for that language).

**Act**: each fix is a method that needs a reason and is audited with the actor (the money
operations are :class:`gateway.services.money_operations.MoneyOperations`' own, called as they
are): :meth:`attach`, :meth:`refund`, :meth:`resend_receipt`, :meth:`resend_link`,
:meth:`mark_paid`, :meth:`replay`, :meth:`reconcile`. Re-issuing is the link page's corrected-link
form (a person edits the link there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from gateway.adapters.db.dialects import lock_link
from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import (
    AuditEntry,
    Link,
    LinkPreview,
    Order,
    OrphanPayment,
    OutboxMessage,
    Refund,
    WebhookEvent,
)
from gateway.clock import Clock
from gateway.domain.errors import (
    NotFound,
    PaymentProviderRejected,
    PaymentProviderUnavailable,
    ValidationFailed,
)
from gateway.domain.money import exponent, format_minor
from gateway.domain.outbox import Kind as MessageKind
from gateway.domain.outbox import State
from gateway.domain.payments import PaymentProvider
from gateway.domain.support import Decision, Fix, Kind, LinkFacts, OrderFacts, Receipt, diagnose
from gateway.domain.text import Text
from gateway.i18n.catalogs import N_, localize
from gateway.i18n.formats import Formats
from gateway.services.admin_links import AdminLinks
from gateway.services.audit import audit
from gateway.services.email import SendResult
from gateway.services.link_listing import LinkFilter, LinkListing
from gateway.services.link_search import MAX_QUERY, LinkMatch, LinkSearch, Understood
from gateway.services.manual_payments import MarkedPaid
from gateway.services.money_operations import MoneyOperations
from gateway.services.orphans import Attached
from gateway.services.outbox import Outbox
from gateway.services.payments import NotYetApplicable
from gateway.services.reconcile import Reconciler, ReconcileReport
from gateway.services.refunds import MoneyRefused, Refundable, RefundResult, check_reason
from gateway.services.webhooks import EventResult, WebhookService

MAX_RESULTS = 20
# "last4 amount date": the day's payments read (a club's busiest day is well under this), and
# how many of those of the amount Stripe is asked about (one call each).
_CARD_SCAN = 2000
MAX_CARD_LOOKUPS = 10

# --- the catalogs -------------------------------------------------------------------------------

SENTENCES: Mapping[Kind, str] = {
    Kind.NOT_OPENED: N_("Nobody has opened this link yet: the payer may not have received it."),
    Kind.BOTS_ONLY: N_(
        "Only link-preview bots (mail scanners, chat previews) fetched this link; no person has "
        "opened it. The payer may not have seen the email."
    ),
    Kind.OPENED_NOT_PAID: N_(
        "The payer opened this link but has not paid: no payment was completed at Stripe."
    ),
    Kind.AT_CHECKOUT: N_("The payer is on Stripe's payment page now; nothing is paid yet."),
    Kind.PROCESSING: N_(
        "The payment was made by bank debit and is still processing; the bank decides within a "
        "few business days."
    ),
    Kind.PAID_RECEIPT_DELIVERED: N_(
        "Paid %(amount)s on %(paid_at)s; the receipt was emailed (ask the payer to look in spam)."
    ),
    Kind.PAID_RECEIPT_NOT_DELIVERED: N_(
        "Paid %(amount)s on %(paid_at)s, but the receipt has not been delivered."
    ),
    Kind.PAID_TWICE: N_(
        "Paid twice: a second payment of %(amount)s arrived after the link was paid."
    ),
    Kind.BANK_PAYMENT_FAILED: N_(
        "The bank payment failed (the bank refused the debit); nothing is paid."
    ),
    Kind.EXPIRED_UNPAID: N_("The link expired on %(valid_until)s without being paid."),
    Kind.REVOKED: N_("The link was revoked on %(revoked_at)s; it cannot be paid."),
    Kind.REFUNDED: N_("Paid, then refunded: %(refunded)s was refunded."),
    Kind.DISPUTED: N_(
        "The payer's bank opened a dispute (chargeback) on this payment; answer it in Stripe's "
        "dashboard."
    ),
    Kind.ORPHAN: N_(
        "Paid at Stripe but not recorded here: Stripe holds a payment of %(orphan_amount)s "
        "naming this link, with no order here to show it."
    ),
    Kind.PAID_OUTSIDE_STRIPE: N_("Paid outside Stripe (%(method)s), recorded by %(recorded_by)s."),
}

FIX_LABELS: Mapping[Fix, str] = {
    Fix.ATTACH_ORPHAN: N_("Attach the payment to this link"),
    Fix.REFUND_DUPLICATE: N_("Refund the second payment"),
    Fix.RESEND_RECEIPT: N_("Send the receipt again"),
    Fix.RESEND_LINK: N_("Send the link again"),
    Fix.REISSUE: N_("Issue a corrected link"),
    Fix.MARK_PAID: N_("Record a payment made outside Stripe"),
    Fix.REPLAY_EVENT: N_("Apply Stripe's event again"),
    Fix.RECONCILE: N_("Check with Stripe now (reconcile)"),
}

REPLIES: Mapping[Kind, str] = {
    Kind.NOT_OPENED: N_(
        "Hello %(name)s,\n\nWe sent you a payment link for %(ref)s (%(amount)s). We have just "
        "sent it again: please look for an email from %(org)s, in your spam folder too.\n\n"
        "%(org)s"
    ),
    Kind.BOTS_ONLY: N_(
        "Hello %(name)s,\n\nIt looks like our email with your payment link for %(ref)s "
        "(%(amount)s) did not reach you. We have just sent it again; please look in your spam "
        "folder too.\n\n%(org)s"
    ),
    Kind.OPENED_NOT_PAID: N_(
        "Hello %(name)s,\n\nWe have no payment for %(ref)s yet, and nothing was charged. You "
        "can pay %(amount)s with the link in our email; we have sent it again.\n\n%(org)s"
    ),
    Kind.AT_CHECKOUT: N_(
        "Hello %(name)s,\n\nYour payment for %(ref)s (%(amount)s) has not gone through yet. If "
        "you closed the payment page, open the link in our email again and press Pay.\n\n%(org)s"
    ),
    Kind.PROCESSING: N_(
        "Hello %(name)s,\n\nYour bank payment of %(amount)s for %(ref)s is on its way: bank "
        "debits take a few business days. You will get a receipt by email as soon as your bank "
        "confirms it; you do not need to do anything.\n\n%(org)s"
    ),
    Kind.PAID_RECEIPT_DELIVERED: N_(
        "Hello %(name)s,\n\nYour payment of %(amount)s for %(ref)s arrived on %(paid_at)s, "
        "thank you. We emailed your receipt then; we have sent it again, please look in your "
        "spam folder too.\n\n%(org)s"
    ),
    Kind.PAID_RECEIPT_NOT_DELIVERED: N_(
        "Hello %(name)s,\n\nYour payment of %(amount)s for %(ref)s arrived on %(paid_at)s, "
        "thank you: you are all set. Our receipt did not reach you; we are sending it again "
        "now.\n\n%(org)s"
    ),
    Kind.PAID_TWICE: N_(
        "Hello %(name)s,\n\nWe are sorry: you were charged twice for %(ref)s. Your first "
        "payment of %(amount)s stands. We are refunding the second payment of %(amount)s in "
        "full today; your bank shows the refund within 5 to 10 business days. You do not need "
        "to do anything, and you will get an email when the refund is issued.\n\nWith our "
        "apologies,\n%(org)s"
    ),
    Kind.BANK_PAYMENT_FAILED: N_(
        "Hello %(name)s,\n\nYour bank did not accept the payment of %(amount)s for %(ref)s, so "
        "nothing was taken. Please pay again with the link in our email (we have sent it again), "
        "with a card or another account.\n\n%(org)s"
    ),
    Kind.EXPIRED_UNPAID: N_(
        "Hello %(name)s,\n\nThe payment link for %(ref)s expired on %(valid_until)s and nothing "
        "was charged. We are sending you a new link for %(amount)s.\n\n%(org)s"
    ),
    Kind.REVOKED: N_(
        "Hello %(name)s,\n\nThe payment link for %(ref)s is no longer in use and nothing was "
        "charged with it. We will send you a new link if a payment is still due.\n\n%(org)s"
    ),
    Kind.REFUNDED: N_(
        "Hello %(name)s,\n\nYour payment for %(ref)s was refunded: %(refunded)s. Your bank "
        "shows a refund within 5 to 10 business days of when it was issued.\n\n%(org)s"
    ),
    Kind.DISPUTED: N_(
        "Hello %(name)s,\n\nYour bank told us that you disputed the payment of %(amount)s for "
        "%(ref)s. We are answering your bank; if this was a mistake, please tell your bank you "
        "withdraw the dispute.\n\n%(org)s"
    ),
    Kind.ORPHAN: N_(
        "Hello %(name)s,\n\nWe are sorry: your payment of %(orphan_amount)s for %(ref)s did "
        "reach us, but our system failed to record it, so you got no confirmation. You do not "
        "need to pay again. We are recording your payment now and you will receive your receipt "
        "by email within the hour.\n\nWith our apologies,\n%(org)s"
    ),
    Kind.PAID_OUTSIDE_STRIPE: N_(
        "Hello %(name)s,\n\nWe have recorded your payment of %(amount)s for %(ref)s (%(method)s) "
        "on %(paid_at)s, thank you: you are all set and the payment link no longer asks for "
        "payment.\n\n%(org)s"
    ),
}

METHOD_NAMES: Mapping[str, str] = {
    "cash": N_("cash"),
    "bank_transfer": N_("bank transfer"),
    "other": N_("another way"),
    "stripe": N_("Stripe"),
}

# --- the query kinds only support asks for -----------------------------------------------------

_REFUND_ID = re.compile(r"(re|pyr)_[A-Za-z0-9_]{1,250}")
_EVENT_ID = re.compile(r"evt_[A-Za-z0-9_]{1,250}")
_DISPUTE_ID = re.compile(r"(dp|du)_[A-Za-z0-9_]{1,250}")
_NOT_KNOWN = Text("neither this database nor Stripe knows this id")
_NOT_ASKED = Text("this database has nothing under this id, and Stripe could not be asked now")
_CHARGE_ID = re.compile(r"(ch|py)_[A-Za-z0-9_]{1,250}")
_CARD = re.compile(r"(\d{4})\s+(\d{1,9}(?:[.,]\d{1,3})?)\s+(\d{4}-\d{2}-\d{2})")
_WRAPPING = " \t\r\n<>\"'`«»“”‘’"


@dataclass(frozen=True, slots=True)
class Diagnosis:
    link_id: str
    kind: Kind
    sentence: Text
    fixes: tuple[Fix, ...]
    facts: Mapping[str, Any]  # plain values (JSON-able)
    locale: str  # the link's language (the reply's)
    order_id: str | None = None  # the order the diagnosis is about
    refundable: int = 0  # of that order (the refund fix's guard)
    orphan_ids: tuple[str, ...] = ()
    event_ids: tuple[str, ...] = ()  # webhook events of its orders not applied


@dataclass(frozen=True, slots=True)
class Result:
    source: str  # database | stripe
    diagnosis: Diagnosis | None  # None: Stripe knows it, this database has no such link
    note: Text | None = None


@dataclass(frozen=True, slots=True)
class Found:
    query: str
    kind: str
    label: Text
    problem: Text | None = None
    results: list[Result] = field(default_factory=list)
    asked_stripe: bool = False
    more: bool = False  # more links matched than MAX_RESULTS


class SupportDesk:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        provider: PaymentProvider,
        search: LinkSearch,
        listing: LinkListing,
        money: MoneyOperations,
        outbox: Outbox,
        admin: AdminLinks,
        webhooks: WebhookService,
        reconciler: Reconciler,
        default_locale: str,
        timezone: str,
        org_name: str,
        receipts: bool = True,
    ) -> None:
        self._db = db
        self._clock = clock
        self._provider = provider
        self._search = search
        self._listing = listing
        self._money = money
        self._outbox = outbox
        self._admin = admin
        self._webhooks = webhooks
        self._reconciler = reconciler
        self._default_locale = default_locale
        self._timezone = timezone
        self._org = org_name
        self._receipts = receipts

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    # --- find -----------------------------------------------------------------------------------

    async def find(self, raw: str, *, emails: bool = True) -> Found:
        """Every link the query names, each diagnosed. Raises ``ValidationFailed`` (``q``) for a
        query that is too long or holds control characters. ``emails=False`` for a reader who
        sees addresses masked (a viewer): as the links search reads it, no email prefixes."""
        if len(raw) > MAX_QUERY:
            raise ValidationFailed(
                {"q": Text("a search of at most %(count)s characters", count=MAX_QUERY)}
            )
        query = raw.strip(_WRAPPING)
        if not query:
            return Found("", "empty", Text("Nothing to look for"), Text("type what the payer sent"))
        if _REFUND_ID.fullmatch(query):
            return await self._by_refund(query)
        if _EVENT_ID.fullmatch(query):
            return await self._by_event(query)
        if _DISPUTE_ID.fullmatch(query):
            return await self._via_payment(
                query, "dispute", Text("Stripe dispute %(id)s", id=query)
            )
        if _CHARGE_ID.fullmatch(query):
            return await self._via_payment(query, "charge", Text("Stripe charge %(id)s", id=query))
        card = _CARD.fullmatch(query)
        if card is not None:
            return await self._by_card(query, card[1], card[2], card[3])
        understood = await self._search.understand(query, emails=emails)
        assert understood is not None  # the query is not empty
        return await self._understood(understood)

    async def _via_payment(self, query: str, kind: str, label: Text) -> Found:
        """A charge or a dispute: neither is stored here, so Stripe is asked which payment it
        belongs to, and that payment is looked for (the database first, then Stripe)."""
        found = Found(query, kind, label)
        try:
            intent = await self._provider.payment_intent_of(query)
        except (PaymentProviderRejected, PaymentProviderUnavailable) as exc:
            return self._unanswered(found, exc)
        if intent is None:
            return self._with(found, [], Text("Stripe holds no payment for this id"), asked=True)
        by_payment = await self.find(intent)
        return Found(
            query,
            kind,
            Text("%(label)s, of the payment %(payment)s", label=label, payment=intent),
            by_payment.problem,
            by_payment.results,
            asked_stripe=True,
            more=by_payment.more,
        )

    async def _understood(self, understood: Understood) -> Found:
        found = Found(understood.query, understood.kind, understood.label, understood.problem)
        if understood.match is None:
            return found
        ids, more = await self._link_ids(understood.match)
        if not ids and understood.kind in ("stripe_session", "payment_intent"):
            ids = await self._orphan_links(understood.query)
        if ids:
            results = [Result("database", await self.diagnose(i)) for i in ids]
            return Found(found.query, found.kind, found.label, None, results, more=more)
        if understood.kind in ("stripe_session", "payment_intent"):
            return await self._ask_stripe(found)
        return found

    async def _link_ids(self, match: LinkMatch) -> tuple[list[str], bool]:
        if match.link_ids is not None:
            ids = list(match.link_ids[:MAX_RESULTS])
            async with self._db.read() as session:
                known = [i for i in ids if await session.get(Link, i) is not None]
            return known, len(match.link_ids) > MAX_RESULTS
        page = await self._listing.list(LinkFilter(match=match, limit=MAX_RESULTS))
        return [s.link.id for s in page.links], page.next_offset is not None

    async def _orphan_links(self, stripe_id: str) -> list[str]:
        async with self._db.read() as session:
            rows = await session.execute(
                sa.select(OrphanPayment.link_id).where(
                    sa.or_(
                        OrphanPayment.payment_intent_id == stripe_id,
                        OrphanPayment.session_id == stripe_id,
                    )
                )
            )
            names = [r for r in rows.scalars() if r]
            return [n for n in names if await session.get(Link, n) is not None]

    async def _ask_stripe(self, found: Found) -> Found:
        """The database has nothing: what Stripe holds under the id, and the link it names."""
        stripe_id = found.query
        try:
            if stripe_id.startswith("cs_"):
                info = await self._provider.retrieve_session(stripe_id)
                link_id = info.metadata.get("link_id")
                described = Text(
                    "Stripe has this Checkout session (%(status)s, payment %(payment)s)",
                    status=info.status,
                    payment=info.payment_status,
                )
            else:
                intent = await self._provider.retrieve_payment_intent(stripe_id)
                link_id = intent.gateway_link_id
                described = Text(
                    "Stripe has this payment (%(status)s, %(amount)s)",
                    status=intent.status,
                    amount=format_minor(intent.amount, intent.currency or "usd"),
                )
        except (PaymentProviderRejected, PaymentProviderUnavailable) as exc:
            return self._unanswered(found, exc)
        if link_id:
            async with self._db.read() as session:
                here = await session.get(Link, link_id) is not None
            if here:
                result = Result("stripe", await self.diagnose(link_id), described)
                return self._with(found, [result], None, asked=True)
            note = Text(
                "%(described)s, for link %(link)s, which is not in this database",
                described=described,
                link=link_id,
            )
        else:
            note = Text(
                "%(described)s, not made by this gateway (it names no link)", described=described
            )
        return self._with(found, [Result("stripe", None, note)], None, asked=True)

    @classmethod
    def _unanswered(
        cls,
        found: Found,
        exc: PaymentProviderRejected | PaymentProviderUnavailable,
        *,
        unknown: Text = _NOT_KNOWN,
        unreachable: Text = _NOT_ASKED,
    ) -> Found:
        """Nothing here, and Stripe said it has nothing (``unknown``) or could not be asked."""
        problem = unknown if isinstance(exc, PaymentProviderRejected) else unreachable
        return cls._with(found, [], problem, asked=True)

    @staticmethod
    def _with(found: Found, results: list[Result], problem: Text | None, *, asked: bool) -> Found:
        return Found(found.query, found.kind, found.label, problem, results, asked_stripe=asked)

    async def _by_refund(self, refund_id: str) -> Found:
        found = Found(refund_id, "refund", Text("Stripe refund %(id)s", id=refund_id))
        async with self._db.read() as session:
            link_id = (
                await session.execute(
                    sa.select(Refund.link_id).where(Refund.stripe_refund_id == refund_id).limit(1)
                )
            ).scalar_one_or_none() or (
                await session.execute(
                    sa.select(Order.link_id).where(Order.refund_id == refund_id).limit(1)
                )
            ).scalar_one_or_none()
        if link_id is None:
            return self._with(
                found,
                [],
                Text(
                    "no refund recorded here has this id (refunds made in Stripe's dashboard "
                    "are recorded by their payment: search by its pi_…)"
                ),
                asked=False,
            )
        return self._with(
            found, [Result("database", await self.diagnose(link_id))], None, asked=False
        )

    async def _by_event(self, event_id: str) -> Found:
        found = Found(event_id, "event", Text("Stripe event %(id)s", id=event_id))
        async with self._db.read() as session:
            order_id = (
                await session.execute(
                    sa.select(WebhookEvent.order_id).where(WebhookEvent.event_id == event_id)
                )
            ).scalar_one_or_none()
            link_id = (
                (
                    await session.execute(sa.select(Order.link_id).where(Order.id == order_id))
                ).scalar_one_or_none()
                if order_id
                else None
            )
        if link_id is not None:
            return self._with(
                found, [Result("database", await self.diagnose(link_id))], None, asked=False
            )
        try:
            event = await self._provider.retrieve_event(event_id)
        except (PaymentProviderRejected, PaymentProviderUnavailable) as exc:
            return self._unanswered(
                found,
                exc,
                unknown=Text("neither this database nor Stripe knows this event"),
                unreachable=Text(
                    "this event is not in the inbox, and Stripe could not be asked now"
                ),
            )
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        metadata = obj.get("metadata") if isinstance(obj, dict) else None
        named = metadata.get("link_id") if isinstance(metadata, dict) else None
        described = Text("Stripe has this event (%(type)s)", type=str(event.get("type", "")))
        if isinstance(named, str) and named:
            async with self._db.read() as session:
                here = await session.get(Link, named) is not None
            if here:
                return self._with(
                    found,
                    [Result("stripe", await self.diagnose(named), described)],
                    None,
                    asked=True,
                )
        return self._with(
            found,
            [
                Result(
                    "stripe",
                    None,
                    Text("%(described)s; it names no link of this database", described=described),
                )
            ],
            None,
            asked=True,
        )

    async def _by_card(self, query: str, last4: str, amount: str, day: str) -> Found:
        """ "4242 150.00 2026-04-03": the payments of that amount made that day (in the
        organisation's time zone) whose card ends in those digits: as recorded from
        ``charge.succeeded`` (``orders.card_last4``) first; else, for payments whose card was
        not recorded (made before it was kept, or orphan payments), as Stripe has it on the
        payment's charge. At most :data:`MAX_CARD_LOOKUPS` payments are asked about."""
        label = Text(
            "Card ending %(last4)s, %(amount)s on %(date)s", last4=last4, amount=amount, date=day
        )
        found = Found(query, "card", label)
        try:
            value = Decimal(amount.replace(",", "."))
            start = datetime.combine(date.fromisoformat(day), time(), ZoneInfo(self._timezone))
        except (InvalidOperation, ValueError):
            return self._with(
                found, [], Text('write it like "4242 150.00 2026-04-03"'), asked=False
            )
        start = start.astimezone(UTC)
        end = start + timedelta(days=1)
        candidates: list[tuple[str, str]] = []  # not recorded here: (payment intent, link id)
        recorded: list[str] = []  # links whose payment's recorded card matches
        async with self._db.read() as session:
            rows = await session.execute(
                sa.select(
                    Order.payment_intent_id,
                    Order.link_id,
                    Order.amount_total,
                    Order.currency,
                    Order.card_last4,
                )
                .where(
                    Order.paid_at >= start,
                    Order.paid_at < end,
                    Order.payment_intent_id.is_not(None),
                )
                .limit(_CARD_SCAN)
            )
            for intent, link_id, total, currency, card in rows.all():
                if not intent or not _same_amount(total, currency, value):
                    continue
                if card is None:
                    candidates.append((intent, link_id))
                elif card == last4 and link_id not in recorded:
                    recorded.append(link_id)
            orphan_rows = await session.execute(
                sa.select(
                    OrphanPayment.payment_intent_id,
                    OrphanPayment.link_id,
                    OrphanPayment.amount,
                    OrphanPayment.currency,
                )
                .where(OrphanPayment.paid_at >= start, OrphanPayment.paid_at < end)
                .limit(_CARD_SCAN)
            )
            for orphan_intent, named, total, currency in orphan_rows.all():
                if orphan_intent and named and _same_amount(total, currency, value):
                    candidates.append((orphan_intent, named))
        if recorded:
            here = [Result("database", await self.diagnose(i)) for i in recorded[:MAX_RESULTS]]
            return Found(query, "card", label, None, here, more=len(recorded) > MAX_RESULTS)
        if not candidates:
            return self._with(
                found,
                [],
                Text("no payment of that amount was made that day with that card"),
                asked=False,
            )
        results: list[Result] = []
        seen: set[str] = set()
        try:
            for intent, link_id in candidates[:MAX_CARD_LOOKUPS]:
                at_stripe = await self._provider.payment_card(intent)
                if at_stripe is None or at_stripe.last4 != last4 or link_id in seen:
                    continue
                seen.add(link_id)
                note = Text(
                    "Stripe: payment %(intent)s, %(brand)s card ending %(last4)s",
                    intent=intent,
                    brand=at_stripe.brand,
                    last4=at_stripe.last4,
                )
                results.append(Result("stripe", await self.diagnose(link_id), note))
        except PaymentProviderUnavailable:
            return self._with(
                found, results, Text("Stripe could not be asked about the cards now"), asked=True
            )
        except PaymentProviderRejected:
            pass
        problem = None
        if not results:
            problem = Text("payments of that amount that day were made with other cards")
        more = len(candidates) > MAX_CARD_LOOKUPS
        return Found(query, "card", label, problem, results, asked_stripe=True, more=more)

    # --- diagnose -------------------------------------------------------------------------------

    async def diagnose(self, link_id: str) -> Diagnosis:
        """What happened to the link (``NotFound`` for an unknown one)."""
        now = self.now()
        async with self._db.read() as session:
            link = await session.get(Link, link_id)
            if link is None:
                raise NotFound(link_id)
            orders = list(
                (
                    await session.execute(
                        sa.select(Order)
                        .where(Order.link_id == link_id)
                        .order_by(Order.created_at, Order.id)
                    )
                ).scalars()
            )
            bots = (
                await session.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(LinkPreview.count), 0)).where(
                        LinkPreview.link_id == link_id
                    )
                )
            ).scalar_one()
            orphans = list(
                (
                    await session.execute(
                        sa.select(OrphanPayment).where(
                            OrphanPayment.link_id == link_id, OrphanPayment.attached_at.is_(None)
                        )
                    )
                ).scalars()
            )
            messages = list(
                (
                    await session.execute(
                        sa.select(OutboxMessage).where(
                            OutboxMessage.link_id == link_id,
                            OutboxMessage.kind == MessageKind.RECEIPT.value,
                        )
                    )
                ).scalars()
            )
            events: list[str] = []
            for order in orders:
                events.extend(
                    (
                        await session.execute(
                            sa.select(WebhookEvent.event_id).where(
                                WebhookEvent.order_id == order.id,
                                WebhookEvent.outcome.in_(("failed", "pending")),
                            )
                        )
                    ).scalars()
                )
            revoked_at = link.revoked_at
        facts = LinkFacts(
            orders=tuple(
                OrderFacts(
                    id=o.id,
                    status=o.status,
                    amount=o.amount_total,
                    refunded=o.refunded_amount,
                    method=o.method,
                    duplicate_of=o.duplicate_of,
                    disputed=o.disputed,
                    session_open=o.status == "pending"
                    and o.session_expires_at is not None
                    and o.session_expires_at > now,
                )
                for o in orders
            ),
            revoked=revoked_at is not None,
            expired=link.valid_until <= now,
            opens=link.open_count,
            bot_previews=int(bots),
            receipt=_receipt(messages, orders),
            unattached_orphans=len(orphans),
            unapplied_events=len(events),
            mail=self._outbox.enabled,
        )
        decision = diagnose(facts)
        by_id = {o.id: o for o in orders}
        subject = by_id.get(decision.order_id or "")
        refundable = 0
        if subject is not None and decision.kind is Kind.PAID_TWICE:
            refundable = (await self._money.refunds.refundable(subject.id)).refundable
        locale = link.locale or self._default_locale
        values = self._facts(link, orders, subject, orphans, decision)
        sentence = Text(
            SENTENCES[decision.kind], **_shown(values, self._default_locale, self._timezone)
        )
        return Diagnosis(
            link_id=link.id,
            kind=decision.kind,
            sentence=sentence,
            fixes=decision.fixes,
            facts=values,
            locale=locale,
            order_id=decision.order_id,
            refundable=refundable,
            orphan_ids=tuple(o.id for o in orphans),
            event_ids=tuple(events),
        )

    def _facts(
        self,
        link: Link,
        orders: Sequence[Order],
        order: Order | None,
        orphans: Sequence[OrphanPayment],
        decision: Decision,
    ) -> dict[str, Any]:
        paid = next((o for o in orders if o.paid_at is not None and not o.duplicate_of), None)
        subject = order or paid
        return {
            "link_id": link.id,
            "name": link.name,
            "email": link.email,
            "ref": link.ref or link.description,
            "amount": link.amount_total,
            "currency": link.currency,
            "created_at": _iso(link.created_at),
            "valid_until": _iso(link.valid_until),
            "revoked_at": _iso(link.revoked_at),
            "order_ids": [o.id for o in orders],
            "order_id": decision.order_id,
            "paid_at": _iso(subject.paid_at if subject else None),
            "refunded": sum(o.refunded_amount for o in orders),
            "method": (subject.method if subject else "stripe"),
            "recorded_by": (subject.recorded_by if subject else None) or "",
            "note": (subject.payment_note if subject else None) or "",
            "payment_intent_id": subject.payment_intent_id if subject else None,
            "orphan_amount": orphans[0].amount if orphans else 0,
            "orphan_payment_intent_id": orphans[0].payment_intent_id if orphans else None,
            "orphan_paid_at": _iso(orphans[0].paid_at) if orphans else None,
        }

    async def refundable_orders(self, link_id: str) -> list[Refundable]:
        """The link's payments made through Stripe that can still be refunded (the link page's
        Refund form), oldest first."""
        async with self._db.read() as session:
            ids = list(
                (
                    await session.execute(
                        sa.select(Order.id)
                        .where(
                            Order.link_id == link_id,
                            Order.status == "paid",
                            Order.method == "stripe",
                        )
                        .order_by(Order.paid_at, Order.id)
                    )
                ).scalars()
            )
        found = [await self._money.refunds.refundable(i) for i in ids]
        return [r for r in found if r.refundable > 0]

    # --- reply ----------------------------------------------------------------------------------

    def sentence(self, diagnosis: Diagnosis, locale: str) -> str:
        """The diagnosis's sentence in ``locale`` (the support person's language)."""
        return localize(
            locale,
            Text(SENTENCES[diagnosis.kind], **_shown(diagnosis.facts, locale, self._timezone)),
        )

    def reply(self, diagnosis: Diagnosis, locale: str | None = None) -> str:
        """The reply to the payer, in the link's language unless ``locale`` is given."""
        chosen = locale or diagnosis.locale
        values = _shown(diagnosis.facts, chosen, self._timezone)
        values["org"] = self._org
        return localize(chosen, Text(REPLIES[diagnosis.kind], **values))

    # --- act ------------------------------------------------------------------------------------

    async def attach(self, orphan_id: str, *, reason: object, actor: str) -> Attached:
        return await self._money.orphans.attach(orphan_id, reason=reason, actor=actor)

    async def refund(
        self,
        order_id: str,
        *,
        amount: object | None,
        reason: object,
        expected_refundable: int | None,
        actor: str,
    ) -> RefundResult:
        return await self._money.refunds.refund(
            order_id,
            amount=amount,
            reason=reason,
            expected_refundable=expected_refundable,
            actor=actor,
        )

    async def mark_paid(
        self, link_id: str, *, amount: object, method: object, note: object, actor: str
    ) -> MarkedPaid:
        return await self._money.manual.mark_paid(
            link_id, amount=amount, method=method, note=note, actor=actor
        )

    async def resend_receipt(self, link_id: str, *, reason: object, actor: str) -> bool:
        """Owe the paid order's receipt again (sent by the outbox within its interval). False
        when one is already waiting to be sent (nothing added)."""
        reason_text = check_reason(reason)
        if not self._outbox.enabled:
            raise MoneyRefused(
                "mail_not_configured",
                Text("email is not set up on this gateway: no receipt can be sent"),
            )
        now = self.now()
        async with self._db.write() as session:
            await lock_link(session, link_id)
            link = await session.get(Link, link_id)
            if link is None:
                raise NotFound(link_id)
            order = (
                await session.execute(
                    sa.select(Order)
                    .where(
                        Order.link_id == link_id,
                        Order.status.in_(("paid", "refunded")),
                        Order.duplicate_of.is_(None),
                    )
                    .order_by(Order.paid_at)
                    .limit(1)
                )
            ).scalar_one_or_none()
            if order is None:
                raise MoneyRefused(
                    "not_paid", Text("this link is not paid: there is no receipt to send")
                )
            states = list(
                (
                    await session.execute(
                        sa.select(OutboxMessage.state).where(
                            OutboxMessage.order_id == order.id,
                            OutboxMessage.kind == MessageKind.RECEIPT.value,
                        )
                    )
                ).scalars()
            )
            if any(s in (State.PENDING.value, State.SENDING.value) for s in states):
                return False
            await self._outbox.add(
                session,
                kind=MessageKind.RECEIPT,
                subject=f"{order.id}:again:{len(states)}",
                recipient=link.email,
                locale=link.locale or self._default_locale,
                link_id=link_id,
                order_id=order.id,
                payload={"recovered": False, "recorded_by": actor},
            )
            audit(
                session,
                at=now,
                link_id=link_id,
                order_id=order.id,
                action="support.receipt_resent",
                actor=actor,
                detail=reason_text,
            )
        return True

    async def resend_link(self, link_id: str, *, reason: object, actor: str) -> SendResult:
        """Email the link again (``AdminLinks.resend``: only a payable link), with the reason
        in the link's history."""
        reason_text = check_reason(reason)
        result = await self._admin.resend(link_id, actor=actor)
        await self._note(link_id, "support.link_resent", actor, reason_text)
        return result

    async def replay(
        self, event_id: str, *, reason: object, actor: str, link_id: str | None = None
    ) -> EventResult:
        """Fetch the event from Stripe and apply it again (``gateway webhooks replay``)."""
        reason_text = check_reason(reason)
        if not _EVENT_ID.fullmatch(event_id):
            raise ValidationFailed({"event_id": Text("a Stripe event id (evt_…)")})
        try:
            event = await self._provider.retrieve_event(event_id)
        except PaymentProviderRejected:
            raise NotFound(event_id) from None
        try:
            result = await self._webhooks.handle(event, source="replay", force=True)
        except NotYetApplicable as exc:
            raise MoneyRefused(
                "not_yet_applicable",
                Text("the event cannot be applied yet: %(why)s", why=str(exc)),
            ) from exc
        target = link_id
        if target is None and result.order_id:
            async with self._db.read() as session:
                target = (
                    await session.execute(
                        sa.select(Order.link_id).where(Order.id == result.order_id)
                    )
                ).scalar_one_or_none()
        await self._note(
            target, "support.event_replayed", actor, f"{event_id}: {result.outcome}; {reason_text}"
        )
        return result

    async def reconcile(
        self, *, reason: object, actor: str, link_id: str | None = None
    ) -> ReconcileReport:
        """Run the reconciler now (the same run as its periodic task)."""
        reason_text = check_reason(reason)
        report = await self._reconciler.run()
        await self._note(link_id, "support.reconciled", actor, reason_text)
        return report

    async def _note(self, link_id: str | None, action: str, actor: str, detail: str) -> None:
        async with self._db.write() as session:
            audit(
                session, at=self.now(), link_id=link_id, action=action, actor=actor, detail=detail
            )

    async def history(self, link_id: str) -> list[tuple[str, str, str | None]]:
        """The support desk's own audit entries of a link (action, actor, detail), oldest first."""
        async with self._db.read() as session:
            rows = await session.execute(
                sa.select(AuditEntry.action, AuditEntry.actor, AuditEntry.detail)
                .where(AuditEntry.link_id == link_id, AuditEntry.action.like("support.%"))
                .order_by(AuditEntry.id)
            )
            return [(a, b, c) for a, b, c in rows.all()]


def _same_amount(minor: int, currency: str, value: Decimal) -> bool:
    return Decimal(minor).scaleb(-exponent(currency)) == value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _receipt(messages: Sequence[OutboxMessage], orders: Sequence[Order]) -> Receipt:
    paid = {o.id for o in orders if o.paid_at is not None and not o.duplicate_of}
    states = {m.state for m in messages if m.order_id in paid}
    if State.SENT.value in states:
        return Receipt.DELIVERED
    if states & {State.PENDING.value, State.SENDING.value}:
        return Receipt.QUEUED
    if states:
        return Receipt.FAILED
    return Receipt.NONE


def _shown(facts: Mapping[str, Any], locale: str, timezone: str) -> dict[str, Any]:
    """The facts as a reader of ``locale`` writes them (amounts, dates), for the catalogs'
    placeholders."""
    formats = Formats(locale, timezone)
    currency = facts["currency"]

    def date(value: str | None) -> str:
        return formats.date(datetime.fromisoformat(value)) if value else ""

    return {
        "name": facts["name"],
        "ref": facts["ref"],
        "amount": formats.money(facts["amount"], currency),
        "refunded": formats.money(facts["refunded"], currency),
        "orphan_amount": formats.money(facts["orphan_amount"], currency),
        "paid_at": date(facts["paid_at"]),
        "valid_until": date(facts["valid_until"]),
        "revoked_at": date(facts["revoked_at"]),
        "method": localize(locale, METHOD_NAMES.get(facts["method"], facts["method"])),
        "recorded_by": facts["recorded_by"],
    }


# --- what the CLI and the JSON API show ---------------------------------------------------------


def diagnosis_json(desk: SupportDesk, diagnosis: Diagnosis, locale: str) -> dict[str, Any]:
    """A diagnosis for a program (``--json``, the admin API): its sentence and the fixes' names
    in ``locale``, the reply in the link's own language."""
    return {
        "link_id": diagnosis.link_id,
        "kind": diagnosis.kind.value,
        "sentence": desk.sentence(diagnosis, locale),
        "facts": dict(diagnosis.facts),
        "order_id": diagnosis.order_id,
        "refundable": diagnosis.refundable,
        "orphan_ids": list(diagnosis.orphan_ids),
        "event_ids": list(diagnosis.event_ids),
        "fixes": [
            {"fix": f.value, "label": localize(locale, FIX_LABELS[f])} for f in diagnosis.fixes
        ],
        "reply_locale": diagnosis.locale,
        "reply": desk.reply(diagnosis),
    }


def found_json(desk: SupportDesk, found: Found, locale: str) -> dict[str, Any]:
    return {
        "query": found.query,
        "kind": found.kind,
        "label": localize(locale, found.label),
        "problem": localize(locale, found.problem) if found.problem else None,
        "asked_stripe": found.asked_stripe,
        "more": found.more,
        "results": [
            {
                "source": r.source,
                "note": localize(locale, r.note) if r.note else None,
                "diagnosis": diagnosis_json(desk, r.diagnosis, locale) if r.diagnosis else None,
            }
            for r in found.results
        ],
    }
