"""The messages the outbox sends, one composer per kind (gateway.domain.outbox.Kind): each
builds its email from the rows as they are when it is sent, in the link's language."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gateway.adapters.db.engine import Database
from gateway.clock import Clock
from gateway.config import Settings
from gateway.domain.outbox import Kind
from gateway.services.accounts import AccountLinks
from gateway.services.alerts import AlertFinder
from gateway.services.email import email_environments
from gateway.services.links import LinkUrls
from gateway.services.messages.alerts import AlertDigestComposer
from gateway.services.messages.invitations import AccountLinkComposer
from gateway.services.messages.links import LinkMessages
from gateway.services.messages.paid_twice import PaidTwiceComposer, RefundedComposer
from gateway.services.messages.payer import PayerMail
from gateway.services.messages.payment_failed import PaymentFailedComposer
from gateway.services.messages.receipts import ReceiptComposer
from gateway.services.messages.reminders import ReminderComposer
from gateway.services.outbox import Composer


def composers(
    settings: Settings,
    clock: Clock,
    templates_dir: str,
    *,
    alerts: AlertFinder,
    db: Database,
    links: LinkUrls,
    schedule: Callable[[], str] | None = None,
) -> Mapping[str, Composer]:
    """Every kind's composer (the wiring hands them to the outbox). One set of email
    environments for all of them: each compiles its templates once, whoever renders them."""
    environments = email_environments(templates_dir, settings.checkout.timezone)
    link_messages = LinkMessages(db, links, settings, clock, environments)
    payer = PayerMail(db, settings, clock, environments)
    account_links = AccountLinkComposer(
        db, AccountLinks.from_settings(settings), settings, clock, environments
    )
    return {
        Kind.LINK: link_messages,
        Kind.RENEWAL: link_messages,
        Kind.ALERT_DIGEST: AlertDigestComposer(alerts, settings, clock, environments),
        Kind.REMINDER: ReminderComposer(
            db, links, settings, clock, environments, schedule=schedule
        ),
        Kind.RECEIPT: ReceiptComposer(payer),
        Kind.PAYMENT_FAILED: PaymentFailedComposer(payer, db, links.url_for),
        Kind.PAID_TWICE: PaidTwiceComposer(payer),
        Kind.REFUNDED: RefundedComposer(payer),
        Kind.INVITATION: account_links,
        Kind.PASSWORD_RESET: account_links,
    }
