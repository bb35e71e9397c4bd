"""Every rule of :mod:`gateway.domain.money` as a table: how amounts are read (never changing
meaning silently) and what Stripe would refuse, refused at issue time."""

from __future__ import annotations

import pytest

from gateway.domain.errors import ValidationFailed
from gateway.domain.links import validate_new_link
from gateway.domain.money import (
    MINIMUM_CHARGE,
    SUPPORTED,
    AmountError,
    charge_problem,
    check_charge,
    check_currency,
    exponent,
    format_minor,
    to_minor,
)


class TestReading:
    @pytest.mark.parametrize(
        ("typed", "currency", "minor"),
        [
            ("150", "eur", 15000),
            ("150.5", "eur", 15050),
            ("150.00", "eur", 15000),
            (" 150.00 ", "eur", 15000),
            ("1,500.00", "usd", 150000),
            ("123,456.5", "usd", 12345650),
            ("007.50", "usd", 750),
            ("500", "jpy", 500),
            ("12.340", "kwd", 12340),
        ],
    )
    def test_one_unambiguous_way_is_read(self, typed: str, currency: str, minor: int) -> None:
        assert to_minor(typed, currency) == minor

    @pytest.mark.parametrize(
        ("typed", "suggestion"),
        [
            ("150,00", "150.00"),  # the audit's Fee=150,00 that became 15,000.00
            ("85,50", "85.50"),
            ("1,500", "1500.00"),  # 1500 or 1.5?
            ("1,500", "1.50"),
            ("1.500,00", "1500.00"),
            ("1.500.000", "1500000.00"),
            ("1 500.00", "1500.00"),
            ("1,5", "1.50"),
        ],
    )
    def test_ambiguous_amounts_are_refused_with_how_to_write_them(
        self, typed: str, suggestion: str
    ) -> None:
        with pytest.raises(AmountError) as caught:
            to_minor(typed, "eur")
        message = str(caught.value)
        assert "ambiguous" in message and suggestion in message
        assert "dot for decimals" in message and "1,500.00" in message

    @pytest.mark.parametrize(
        "typed",
        ["abc", "1e9", "nan", "inf", "Infinity", ".5", "5.", "1,50.00", "1,5000.00", "+5", "٥٠"],
    )
    def test_anything_else_is_not_an_amount(self, typed: str) -> None:
        with pytest.raises(AmountError, match="dot for decimals"):
            to_minor(typed, "usd")

    @pytest.mark.parametrize("typed", ["0", "0.00", "-5", "-1,500.00"])
    def test_amounts_are_positive(self, typed: str) -> None:
        with pytest.raises(AmountError, match="positive"):
            to_minor(typed, "usd")

    @pytest.mark.parametrize(
        ("typed", "currency"),
        [("1.001", "usd"), ("5.5", "jpy"), ("1.0001", "kwd")],
    )
    def test_more_decimals_than_the_currency_has_is_an_error_not_a_rounding(
        self, typed: str, currency: str
    ) -> None:
        with pytest.raises(AmountError, match="decimals"):
            to_minor(typed, currency)


class TestStripeRules:
    """https://docs.stripe.com/currencies, rule by rule."""

    @pytest.mark.parametrize(
        ("minor", "currency", "problem"),
        [
            # Minimum charge amounts (#minimum-and-maximum-charge-amounts).
            (50, "usd", None),
            (49, "usd", "below Stripe's minimum charge of 0.50 USD"),
            (50, "eur", None),
            (49, "eur", "minimum charge of 0.50 EUR"),
            (30, "gbp", None),
            (29, "gbp", "minimum charge of 0.30 GBP"),
            (50, "jpy", None),
            (49, "jpy", "minimum charge of 50 JPY"),
            (17500, "huf", None),
            (17499, "huf", "minimum charge of 175.00 HUF"),
            (1499, "czk", "minimum charge of 15.00 CZK"),
            (1, "bif", None),  # no listed minimum: only "positive" can be checked
            (0, "usd", "positive"),
            # Maximum: 8 digits, more for IDR, COP and INR.
            (99_999_999, "usd", None),
            (100_000_000, "usd", "above Stripe's maximum of 999,999.99 USD"),
            (999_999_999_999, "idr", None),
            (1_000_000_000_000, "idr", "maximum"),
            (9_999_999_999, "cop", None),
            (999_999_999, "inr", None),
            (1_000_000_000, "inr", "maximum"),
            # Three-decimal currencies: the last digit must be 0 (#three-decimal).
            (12_340, "kwd", None),
            (12_345, "kwd", "the third must be 0"),
            (5_125, "bhd", "the third must be 0"),
            # Special cases: ISK and UGX are two-decimal values whose decimals are 00.
            (500, "isk", None),
            (550, "isk", "ISK is charged in whole units only"),
            (500_000, "ugx", None),
            (500_050, "ugx", "UGX is charged in whole units only"),
            # HUF and TWD: zero-decimal for payouts only; a charge may have decimals.
            (17_545, "huf", None),
            (80_045, "twd", None),
            # Unknown currencies.
            (1000, "xyz", "not a currency Stripe Checkout supports"),
            (1000, "hrk", "not a currency Stripe Checkout supports"),  # replaced by EUR
        ],
    )
    def test_charge_rules(self, minor: int, currency: str, problem: str | None) -> None:
        found = charge_problem(minor, currency)
        if problem is None:
            assert found is None
            check_charge(minor, currency)
        else:
            assert found is not None and problem in found
            with pytest.raises(AmountError):
                check_charge(minor, currency)

    @pytest.mark.parametrize(
        ("typed", "currency", "minor"),
        [("5", "isk", 500), ("5000", "ugx", 500_000), ("500", "jpy", 500), ("1", "kwd", 1000)],
    )
    def test_exponents_are_stripes_not_iso(self, typed: str, currency: str, minor: int) -> None:
        # ISO 4217 gives ISK and UGX no decimals; Stripe's API wants them times 100.
        assert to_minor(typed, currency) == minor

    @pytest.mark.parametrize(
        ("typed", "currency", "message"),
        [
            ("12.345", "kwd", "the third must be 0"),
            ("5.50", "isk", "whole units"),
            ("1000000", "usd", "too large"),
        ],
    )
    def test_a_unit_amount_stripe_cannot_take_is_refused_when_typed(
        self, typed: str, currency: str, message: str
    ) -> None:
        with pytest.raises(AmountError, match=message):
            to_minor(typed, currency)

    @pytest.mark.parametrize(
        ("code", "result"), [("usd", "usd"), (" EUR ", "eur"), ("isk", "isk"), ("kwd", "kwd")]
    )
    def test_supported_currencies(self, code: str, result: str) -> None:
        assert check_currency(code) == result

    @pytest.mark.parametrize(
        ("code", "message"),
        [("xyz", "not a currency Stripe"), ("dollars", "three-letter"), ("", "three-letter")],
    )
    def test_unsupported_currencies(self, code: str, message: str) -> None:
        with pytest.raises(AmountError, match=message):
            check_currency(code)

    def test_the_tables_agree_with_each_other(self) -> None:
        assert set(MINIMUM_CHARGE) <= SUPPORTED
        assert all(exponent(c) in (0, 2, 3) for c in SUPPORTED)

    @pytest.mark.parametrize(
        ("minor", "currency", "shown"),
        [
            (15000, "usd", "150.00 USD"),
            (150000, "eur", "1,500.00 EUR"),
            (500, "jpy", "500 JPY"),
            (500, "isk", "5 ISK"),
            (12340, "kwd", "12.340 KWD"),
            (550, "isk", "5.50 ISK"),  # never hide a fraction that is there (old data)
        ],
    )
    def test_display(self, minor: int, currency: str, shown: str) -> None:
        assert format_minor(minor, currency) == shown


def _link(items: list[str], currency: str = "usd") -> None:
    validate_new_link(
        email="p@example.com",
        name="Sam",
        description="",
        currency=currency,
        items=items,
        ref="r",
        valid_for=86400,
        max_valid_for=366 * 86400,
    )


class TestIssuing:
    @pytest.mark.parametrize(
        ("items", "currency", "field", "message"),
        [
            (["Fee=0.30"], "usd", "total", "minimum charge of 0.50 USD"),
            (["Fee=0.20", "Kit=0.20"], "eur", "total", "0.40 EUR is below"),
            (["Fee=40"], "jpy", "total", "50 JPY"),
            (["Fee=600000", "Kit=600000"], "usd", "total", "maximum"),
            (["Fee=10"], "xyz", "currency", "not a currency Stripe Checkout supports"),
            (["Fee=12.345"], "kwd", "items[0]", "the third must be 0"),
            (["Fee=150,00"], "eur", "items[0]", "did you mean 150.00?"),
        ],
    )
    def test_what_stripe_would_refuse_is_refused_at_issue_time(
        self, items: list[str], currency: str, field: str, message: str
    ) -> None:
        with pytest.raises(ValidationFailed) as caught:
            _link(items, currency)
        assert message in caught.value.errors[field]

    def test_small_items_are_fine_when_the_total_reaches_the_minimum(self) -> None:
        _link(["Sticker=0.25", "Badge=0.25"], "usd")
        _link(["Sticker=0.10x5"], "usd")
