"""The support desk's decision (gateway.domain.support.diagnose) as a table: each situation, the
one diagnosis and the fixes recommended."""

from __future__ import annotations

import pytest

from gateway.domain.support import Decision, Fix, Kind, LinkFacts, OrderFacts, Receipt, diagnose

PAID = OrderFacts("ord_a", "paid", 15000)
UNPAID = (Fix.RESEND_LINK, Fix.MARK_PAID)

CASES: list[tuple[str, LinkFacts, Decision]] = [
    ("nothing happened", LinkFacts(), Decision(Kind.NOT_OPENED, UNPAID)),
    ("bots only", LinkFacts(bot_previews=3), Decision(Kind.BOTS_ONLY, UNPAID)),
    ("a person opened", LinkFacts(opens=1, bot_previews=2), Decision(Kind.OPENED_NOT_PAID, UNPAID)),
    (
        "pressed Pay, the session ran out",
        LinkFacts(opens=1, orders=(OrderFacts("ord_a", "expired", 15000),)),
        Decision(Kind.OPENED_NOT_PAID, UNPAID),
    ),
    (
        "at checkout",
        LinkFacts(orders=(OrderFacts("ord_a", "pending", 15000, session_open=True),)),
        Decision(Kind.AT_CHECKOUT, (Fix.RECONCILE,), "ord_a"),
    ),
    (
        "a pending order whose session ended is not at checkout",
        LinkFacts(opens=1, orders=(OrderFacts("ord_a", "pending", 15000),)),
        Decision(Kind.OPENED_NOT_PAID, UNPAID),
    ),
    (
        "processing",
        LinkFacts(orders=(OrderFacts("ord_a", "processing", 15000),)),
        Decision(Kind.PROCESSING, (Fix.RECONCILE,), "ord_a"),
    ),
    (
        "paid, receipt sent",
        LinkFacts(orders=(PAID,), receipt=Receipt.DELIVERED),
        Decision(Kind.PAID_RECEIPT_DELIVERED, (Fix.RESEND_RECEIPT,), "ord_a"),
    ),
    (
        "paid, receipt failed",
        LinkFacts(orders=(PAID,), receipt=Receipt.FAILED),
        Decision(Kind.PAID_RECEIPT_NOT_DELIVERED, (Fix.RESEND_RECEIPT,), "ord_a"),
    ),
    (
        "paid, receipt queued",
        LinkFacts(orders=(PAID,), receipt=Receipt.QUEUED),
        Decision(Kind.PAID_RECEIPT_NOT_DELIVERED, (Fix.RESEND_RECEIPT,), "ord_a"),
    ),
    (
        "paid, no mail set up: nothing to send again",
        LinkFacts(orders=(PAID,), mail=False),
        Decision(Kind.PAID_RECEIPT_NOT_DELIVERED, (), "ord_a"),
    ),
    (
        "paid twice, the second not refunded",
        LinkFacts(orders=(PAID, OrderFacts("ord_b", "paid", 15000, duplicate_of="ord_a"))),
        Decision(Kind.PAID_TWICE, (Fix.REFUND_DUPLICATE,), "ord_b"),
    ),
    (
        "paid twice, the second refunded already",
        LinkFacts(
            orders=(PAID, OrderFacts("ord_b", "refunded", 15000, 15000, duplicate_of="ord_a"))
        ),
        Decision(Kind.PAID_TWICE, (), "ord_b"),
    ),
    (
        "bank payment failed",
        LinkFacts(opens=1, orders=(OrderFacts("ord_a", "failed", 15000),)),
        Decision(Kind.BANK_PAYMENT_FAILED, UNPAID, "ord_a"),
    ),
    (
        "expired unpaid",
        LinkFacts(expired=True, opens=2),
        Decision(Kind.EXPIRED_UNPAID, (Fix.REISSUE,)),
    ),
    ("revoked", LinkFacts(revoked=True, expired=True), Decision(Kind.REVOKED, (Fix.REISSUE,))),
    (
        "refunded in full",
        LinkFacts(orders=(OrderFacts("ord_a", "refunded", 15000, 15000),)),
        Decision(Kind.REFUNDED, (), "ord_a"),
    ),
    (
        "partly refunded is still paid",
        LinkFacts(orders=(OrderFacts("ord_a", "paid", 15000, 5000),), receipt=Receipt.DELIVERED),
        Decision(Kind.PAID_RECEIPT_DELIVERED, (Fix.RESEND_RECEIPT,), "ord_a"),
    ),
    (
        "disputed",
        LinkFacts(orders=(OrderFacts("ord_a", "paid", 15000, disputed=True),)),
        Decision(Kind.DISPUTED, (), "ord_a"),
    ),
    (
        "an orphan payment names it",
        LinkFacts(unattached_orphans=1, opens=1),
        Decision(Kind.ORPHAN, (Fix.ATTACH_ORPHAN,)),
    ),
    (
        "an orphan beats an expiry",
        LinkFacts(unattached_orphans=1, expired=True),
        Decision(Kind.ORPHAN, (Fix.ATTACH_ORPHAN,)),
    ),
    (
        "paid in cash, receipt owed",
        LinkFacts(
            orders=(OrderFacts("ord_a", "paid", 15000, method="cash"),), receipt=Receipt.QUEUED
        ),
        Decision(Kind.PAID_OUTSIDE_STRIPE, (Fix.RESEND_RECEIPT,), "ord_a"),
    ),
    (
        "paid in cash, no mail",
        LinkFacts(orders=(OrderFacts("ord_a", "paid", 15000, method="cash"),), mail=False),
        Decision(Kind.PAID_OUTSIDE_STRIPE, (), "ord_a"),
    ),
    (
        "a paid link that was revoked later is paid",
        LinkFacts(orders=(PAID,), revoked=True, receipt=Receipt.DELIVERED),
        Decision(Kind.PAID_RECEIPT_DELIVERED, (Fix.RESEND_RECEIPT,), "ord_a"),
    ),
    (
        "an event not applied adds replay",
        LinkFacts(orders=(OrderFacts("ord_a", "processing", 15000),), unapplied_events=1),
        Decision(Kind.PROCESSING, (Fix.RECONCILE, Fix.REPLAY_EVENT), "ord_a"),
    ),
]


@pytest.mark.parametrize(("facts", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_diagnosis(facts: LinkFacts, expected: Decision) -> None:
    assert diagnose(facts) == expected


def test_every_kind_is_reachable() -> None:
    assert {expected.kind for _, _, expected in CASES} == set(Kind)
