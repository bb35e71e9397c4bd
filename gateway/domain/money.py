"""Amounts: typed by admins in major units ("150.00"), stored and sent to Stripe in minor units."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# ISO 4217 currencies Stripe treats as zero-decimal (amount 500 JPY is ¥500, not ¥5.00).
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
# Three-decimal currencies Stripe supports.
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})

_CURRENCY = re.compile(r"^[a-z]{3}$")
MAX_MINOR = 99_999_999  # Stripe's maximum amount for most currencies


class AmountError(ValueError):
    pass


def exponent(currency: str) -> int:
    currency = currency.lower()
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def check_currency(currency: str) -> str:
    code = currency.strip().lower()
    if not _CURRENCY.match(code):
        raise AmountError(f"currency must be a three-letter ISO code like usd, got {currency!r}")
    return code


def to_minor(amount: str, currency: str) -> int:
    """Parse a positive major-unit amount exactly (no floats): "150.00" usd -> 15000."""
    text = amount.strip().replace(",", "") if amount.count(".") <= 1 else amount
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise AmountError(f"not an amount: {amount!r}") from None
    if not value.is_finite() or value <= 0:
        raise AmountError(f"amount must be positive, got {amount!r}")
    places = exponent(currency)
    minor = value.scaleb(places)
    if minor != minor.to_integral_value():
        raise AmountError(f"{amount!r} has more than {places} decimals for {currency.upper()}")
    result = int(minor)
    if result > MAX_MINOR:
        raise AmountError(f"amount {amount!r} is too large")
    return result


def format_minor(minor: int, currency: str) -> str:
    """15000, usd -> "150.00 USD"."""
    places = exponent(currency)
    major = Decimal(minor).scaleb(-places)
    return f"{major:,.{places}f} {currency.upper()}"
