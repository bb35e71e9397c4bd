"""The checkout decision as a table: every rule of docs/design.md §3 (Confirm) is a row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.checkout import (
    Create,
    LinkFacts,
    LinkState,
    OrderFacts,
    Refuse,
    Replace,
    Resume,
    Reuse,
    Timing,
    decide,
    link_state,
)
from gateway.domain.orders import OrderStatus as S

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TIMING = Timing(stale_after=timedelta(minutes=30), min_remaining=timedelta(minutes=30))


def order(status: S, age_min: float = 5, session: bool = True, life_min: float = 60) -> OrderFacts:
    created = NOW - timedelta(minutes=age_min)
    return OrderFacts(
        id=f"ord_{status.value}_{age_min}",
        status=status,
        created_at=created,
        session_id="cs_1" if session else None,
        session_url="https://checkout/cs_1" if session else None,
        session_expires_at=created + timedelta(minutes=life_min) if session else None,
    )


def link(*orders: OrderFacts, revoked: bool = False, valid_days: float = 10) -> LinkFacts:
    return LinkFacts(revoked=revoked, valid_until=NOW + timedelta(days=valid_days), orders=orders)


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (link(), Create),
        (link(order(S.PENDING, age_min=5)), Reuse),
        (link(order(S.PENDING, age_min=31)), Replace),
        # fresh by age but the session has less than min_remaining left: replace, never send the
        # payer to a page about to expire
        (link(order(S.PENDING, age_min=5, life_min=30)), Replace),
        (link(order(S.PENDING, age_min=1, session=False)), Resume),
        (link(order(S.PENDING, age_min=45, session=False)), Replace),
        (link(order(S.CANCELED), order(S.EXPIRED), order(S.FAILED)), Create),
        (link(order(S.REFUNDED)), Create),
        (link(order(S.PAID)), Refuse),
        (link(order(S.PROCESSING)), Refuse),
        (link(order(S.PAID), order(S.PENDING)), Refuse),
        (link(revoked=True), Refuse),
        (link(valid_days=-1), Refuse),
    ],
)
def test_decision(facts: LinkFacts, expected: type) -> None:
    assert isinstance(decide(facts, NOW, TIMING), expected)


def test_only_paid_and_processing_block() -> None:
    for status in S:
        state = link_state(link(order(status)), NOW)
        blocked = state in (LinkState.PAID, LinkState.PROCESSING)
        assert blocked == (status in (S.PAID, S.PROCESSING)), status


def test_payment_outranks_revocation_and_expiry() -> None:
    assert link_state(link(order(S.PAID), revoked=True, valid_days=-1), NOW) is LinkState.PAID
    assert link_state(link(revoked=True, valid_days=-1), NOW) is LinkState.REVOKED
    assert link_state(link(valid_days=-1), NOW) is LinkState.EXPIRED


def test_refusal_carries_the_state() -> None:
    decision = decide(link(order(S.PROCESSING)), NOW, TIMING)
    assert decision == Refuse(LinkState.PROCESSING)
