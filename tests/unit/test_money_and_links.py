from __future__ import annotations

import pytest

from gateway.domain.errors import ValidationFailed
from gateway.domain.links import ItemSpec, parse_item, validate_new_link
from gateway.domain.money import AmountError, format_minor, to_minor


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("150.00", "usd", 15000),
        ("150", "usd", 15000),
        ("0.5", "eur", 50),
        ("1,200.50", "usd", 120050),
        ("500", "jpy", 500),
        ("1.230", "kwd", 1230),
    ],
)
def test_major_units_become_exact_minor_units(amount: str, currency: str, minor: int) -> None:
    assert to_minor(amount, currency) == minor


@pytest.mark.parametrize("amount", ["0", "-5", "abc", "1.001", "nan", "inf", "1e9"])
def test_bad_amounts_are_refused(amount: str) -> None:
    with pytest.raises(AmountError):
        to_minor(amount, "usd")


def test_zero_decimal_currency_refuses_cents() -> None:
    with pytest.raises(AmountError, match="JPY"):
        to_minor("5.50", "jpy")


def test_format_minor() -> None:
    assert format_minor(15000, "usd") == "150.00 USD"
    assert format_minor(500, "jpy") == "500 JPY"


def test_item_spec_with_quantity() -> None:
    assert parse_item("Team kit=25.00x2", "usd") == ItemSpec("Team kit", 2500, 2)
    assert parse_item("Spring fee = 150.00", "usd") == ItemSpec("Spring fee", 15000, 1)


def _valid(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "email": "p@example.com",
        "name": "Sam",
        "description": "",
        "currency": "usd",
        "items": ["Fee=10"],
        "ref": "r1",
        "valid_for": 86400,
        "max_valid_for": 366 * 86400,
    }
    base.update(overrides)
    return base


def test_valid_link_totals_items_and_defaults_description() -> None:
    new = validate_new_link(**_valid(items=["Maya=150.00", "Leo=120.00"]))  # type: ignore[arg-type]
    assert new.amount_total == 27000
    assert new.description == "Maya"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_new_link(
            **_valid(email="nope", name=" ", items=["Fee=abc"], currency="dollars", valid_for=10)
        )  # type: ignore[arg-type]
    assert {"email", "name", "currency", "items[0]", "valid_for"} <= set(caught.value.errors)
