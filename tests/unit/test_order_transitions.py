from __future__ import annotations

import itertools

import pytest

from gateway.domain.orders import OrderStatus as S
from gateway.domain.orders import SessionOutcome as O
from gateway.domain.orders import next_status


@pytest.mark.parametrize(
    ("current", "outcome", "expected"),
    [
        (S.PENDING, O.PAID, S.PAID),
        (S.PENDING, O.PROCESSING, S.PROCESSING),
        (S.PENDING, O.EXPIRED, S.EXPIRED),
        (S.PENDING, O.FAILED, S.FAILED),
        (S.PROCESSING, O.PAID, S.PAID),
        (S.PROCESSING, O.FAILED, S.FAILED),
        (S.CANCELED, O.PAID, S.PAID),  # someone paid an old session: the money is recorded
        (S.EXPIRED, O.PAID, S.PAID),
        (S.PAID, O.PROCESSING, None),  # late completed(unpaid) after async success
        (S.PAID, O.EXPIRED, None),
        (S.PAID, O.FAILED, None),
        (S.FAILED, O.PROCESSING, None),  # reordered: failed arrived before completed
        (S.FAILED, O.PAID, None),
        (S.CANCELED, O.EXPIRED, None),
        (S.REFUNDED, O.PAID, None),
        (S.PENDING, O.OPEN, None),
    ],
)
def test_transition_table(current: S, outcome: O, expected: S | None) -> None:
    assert next_status(current, outcome) == expected


def test_applying_an_outcome_twice_changes_nothing_the_second_time() -> None:
    for current, outcome in itertools.product(S, O):
        after = next_status(current, outcome)
        if after is not None:
            assert next_status(after, outcome) is None, (current, outcome)


def test_any_order_of_paid_and_processing_ends_paid() -> None:
    for events in itertools.permutations([O.PROCESSING, O.PAID, O.PROCESSING]):
        status = S.PENDING
        for outcome in events:
            status = next_status(status, outcome) or status
        assert status is S.PAID
