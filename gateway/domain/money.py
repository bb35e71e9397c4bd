"""Amounts: typed by admins in major units ("150.00"), stored and sent to Stripe in minor units.

**Reading what a person typed** (:func:`to_minor`). An amount must never change meaning
silently, so only one way of writing it is read, and everything else is refused with an error
that says how to write it:

- digits with at most one dot for decimals: ``150``, ``150.5``, ``150.00`` (ASCII digits only);
- a comma only as a thousands separator, in full groups of three, and only together with a dot
  decimal part: ``1,500.00``;
- refused as ambiguous: ``150,00`` (a decimal comma: 150.00 or 15000?), ``1,500`` (1500 or
  1.5?), ``1.500,00``, ``1 500.00``; refused outright: signs, exponents, ``nan``, ``.5``, ``5.``;
- more decimals than the currency has is an error, never a rounding.

**What Stripe would refuse, refused when a link is issued** (:func:`check_charge` for a
charge's total, :func:`check_unit_amount` for each line item's unit amount), rather than when
the parent presses Pay. From https://docs.stripe.com/currencies:

1. The currency is one Stripe Checkout presents (:data:`SUPPORTED`, the "Supported presentment
   currencies", #presentment-currencies), in lowercase.
2. Amounts are integers in the currency's minor unit (#zero-decimal): two decimals unless listed
   in :data:`ZERO_DECIMAL` (``500`` JPY is ¥500) or :data:`THREE_DECIMAL`.
3. Three-decimal currencies (BHD, JOD, KWD, OMR, TND): the last digit of the minor amount must
   be 0, i.e. at most two decimals are charged (``12.345 KWD`` is refused, ``12.340`` is not)
   (#three-decimal).
4. Special cases (#special-cases): ISK and UGX "transitioned to a zero-decimal currency, but
   backward compatibility requires you to represent it as a two-decimal value, where the decimal
   amount is always 00": their exponent here is 2 and the minor amount a multiple of 100 (whole
   krónur and shillings only; UGX is also in Stripe's zero-decimal list, but the special case is
   the rule its API applies). HUF and TWD are "zero-decimal for payouts, even though you can
   charge two-decimal amounts": for a charge they are ordinary two-decimal currencies.
5. The minimum charge (#minimum-and-maximum-charge-amounts, :data:`MINIMUM_CHARGE`), e.g.
   0.50 USD, 0.50 EUR, 0.30 GBP, 50 JPY. Stripe applies the minimum of the account's settlement
   currency after conversion; for a currency without a listed minimum only "positive" can be
   checked here.
6. The maximum: "8 digits for all other currencies" (99,999,999 minor units), 12 for IDR, 10
   for COP, 9 for INR (the limits of non-card payment methods, which a Checkout page may offer;
   cards allow more).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from gateway.domain.text import Text

# https://docs.stripe.com/currencies#presentment-currencies (the three-decimal ones are offered
# to some account countries only; Stripe refuses them elsewhere at session creation).
_SUPPORTED_CODES = """
    usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp
    byn bzd cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip
    gmd gnf gtq gyd hkd hnl htg huf idr ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt
    lak lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr
    nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr sek sgd shp sle sos srd
    std szl thb tjs tnd top try ttd twd tzs uah ugx uyu uzs vnd vuv wst xaf xcd xof xpf yer zar
    zmw
"""
SUPPORTED = frozenset(_SUPPORTED_CODES.split())
# https://docs.stripe.com/currencies#zero-decimal (UGX is listed there too, but see WHOLE_UNITS).
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "vnd", "vuv", "xaf", "xof", "xpf"}
)
# https://docs.stripe.com/currencies#three-decimal: the minor amount must end in 0.
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
# https://docs.stripe.com/currencies#special-cases: two-decimal values whose decimals are "00".
WHOLE_UNITS = frozenset({"isk", "ugx"})
# https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts (major units).
_MINIMUM_MAJOR = {
    "usd": "0.50",
    "aed": "2.00",
    "ars": "0.50",
    "aud": "0.50",
    "brl": "0.50",
    "cad": "0.50",
    "chf": "0.50",
    "cop": "0.50",
    "czk": "15.00",
    "dkk": "2.50",
    "eur": "0.50",
    "gbp": "0.30",
    "hkd": "4.00",
    "huf": "175.00",
    "idr": "0.50",
    "ils": "0.50",
    "inr": "0.50",
    "jpy": "50",
    "krw": "50",
    "mxn": "10",
    "myr": "2.00",
    "nok": "3.00",
    "nzd": "0.50",
    "php": "0.50",
    "pln": "2.00",
    "ron": "2.00",
    "rub": "0.50",
    "sek": "3.00",
    "sgd": "0.50",
    "thb": "10",
    "zar": "0.50",
}
# The same page: "8 digits for all other currencies", more for these.
_MAX_DIGITS = {"idr": 12, "cop": 10, "inr": 9}
MAX_MINOR = 99_999_999  # the 8-digit maximum of most currencies

_CURRENCY = re.compile(r"[a-z]{3}")
_PLAIN = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+\.[0-9]+")
_PRESENTMENT = "https://docs.stripe.com/currencies#presentment-currencies"


class AmountError(ValueError):
    pass


def exponent(currency: str) -> int:
    """Decimals of the currency's minor unit as Stripe counts them (``amount`` = major × 10^e)."""
    currency = currency.lower()
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def display_places(currency: str) -> int:
    """Decimals shown to people: none for ISK and UGX, charged in whole units."""
    currency = currency.lower()
    return 0 if currency in WHOLE_UNITS else exponent(currency)


def max_minor(currency: str) -> int:
    return int(10 ** _MAX_DIGITS.get(currency.lower(), 8)) - 1


def _minimum(currency: str) -> int:
    major = _MINIMUM_MAJOR.get(currency)
    return int(Decimal(major).scaleb(exponent(currency))) if major else 1


MINIMUM_CHARGE = {code: _minimum(code) for code in _MINIMUM_MAJOR}
"""Stripe's minimum charge in minor units, for the currencies its documentation lists."""


def check_currency(currency: str) -> str:
    """``" EUR "`` -> ``"eur"``; a code Stripe Checkout does not support is an error."""
    code = currency.strip().lower()
    if not _CURRENCY.fullmatch(code):
        raise AmountError(
            Text(
                "currency must be a three-letter ISO code like usd, got %(given)s",
                given=repr(currency),
            )
        )
    if code not in SUPPORTED:
        raise AmountError(
            Text(
                "%(currency)s is not a currency Stripe Checkout supports (%(url)s)",
                currency=code.upper(),
                url=_PRESENTMENT,
            )
        )
    return code


def unit_amount_problem(minor: int, currency: str) -> Text | None:
    """Why Stripe would refuse ``minor`` as an amount in ``currency`` (None if it would not)."""
    code = currency.lower()
    if code not in SUPPORTED:
        return Text(
            "%(currency)s is not a currency Stripe Checkout supports", currency=code.upper()
        )
    if minor <= 0:
        return Text("the amount must be positive")
    amount = format_minor(minor, code)
    if code in THREE_DECIMAL and minor % 10:
        return Text(
            "%(amount)s: Stripe charges %(currency)s with at most two decimals "
            "(the third must be 0)",
            amount=amount,
            currency=code.upper(),
        )
    if code in WHOLE_UNITS and minor % 100:
        return Text(
            "%(amount)s: %(currency)s is charged in whole units only",
            amount=amount,
            currency=code.upper(),
        )
    if minor > max_minor(code):
        return Text(
            "%(amount)s is above Stripe's maximum of %(maximum)s",
            amount=amount,
            maximum=format_minor(max_minor(code), code),
        )
    return None


def charge_problem(minor: int, currency: str) -> Text | None:
    """Why Stripe would refuse a charge (a session's total) of ``minor`` in ``currency``."""
    problem = unit_amount_problem(minor, currency)
    if problem:
        return problem
    code = currency.lower()
    minimum = MINIMUM_CHARGE.get(code, 1)
    if minor < minimum:
        return Text(
            "%(amount)s is below Stripe's minimum charge of %(minimum)s",
            amount=format_minor(minor, code),
            minimum=format_minor(minimum, code),
        )
    return None


def check_unit_amount(minor: int, currency: str) -> None:
    problem = unit_amount_problem(minor, currency)
    if problem:
        raise AmountError(problem)


def check_charge(minor: int, currency: str) -> None:
    """Raise :class:`AmountError` when Stripe would refuse to charge ``minor`` in ``currency``
    (an unsupported currency, below the minimum, above the maximum, or a three-decimal or
    whole-unit amount it cannot take). The rules are in this module's docstring."""
    problem = charge_problem(minor, currency)
    if problem:
        raise AmountError(problem)


def _readings(text: str, places: int) -> list[str]:
    """What an ambiguous amount could have meant, written the one accepted way."""
    compact = re.sub(r"[\s'\u00a0\u202f]", "", text)
    readings: list[str] = []
    if re.fullmatch(r"[0-9]{1,3}(?:\.[0-9]{3})+(?:,[0-9]+)?|[0-9]+,[0-9]+", compact):
        readings.append(compact.replace(".", "").replace(",", "."))  # a decimal comma
    if re.fullmatch(r"[0-9]{1,3}(?:,[0-9]{3})+", compact):
        readings.append(compact.replace(",", ""))  # thousands commas
    if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", compact) and compact != text:
        readings.append(compact)  # spaces between thousands
    shown = []
    for reading in readings:
        value = Decimal(reading)
        fits = value == value.quantize(Decimal(1).scaleb(-places))
        shown.append(f"{value:.{places}f}" if fits else reading)
    return list(dict.fromkeys(shown))


def _not_an_amount(amount: str, readings: list[str]) -> Text:
    """The refusal of an amount written another way: what it could have meant (when that can be
    told), and how to write it. Whole sentences, so each translates naturally."""
    if not readings:
        return Text(
            "not an amount: %(amount)s; write digits with a dot for decimals, e.g. 1500.00 "
            "(a comma only between thousands, and only with a dot decimal part: 1,500.00)",
            amount=repr(amount),
        )
    if len(readings) == 1:
        return Text(
            "%(amount)s is ambiguous (did you mean %(reading)s?): write digits with a dot for "
            "decimals, e.g. 1500.00 (a comma only between thousands, and only with a dot "
            "decimal part: 1,500.00)",
            amount=repr(amount),
            reading=readings[0],
        )
    return Text(
        "%(amount)s is ambiguous (did you mean %(first)s or %(second)s?): write digits with a "
        "dot for decimals, e.g. 1500.00 (a comma only between thousands, and only with a dot "
        "decimal part: 1,500.00)",
        amount=repr(amount),
        first=", ".join(readings[:-1]),
        second=readings[-1],
    )


def to_minor(amount: str, currency: str) -> int:
    """Parse a positive major-unit amount exactly (no floats): "150.00" usd -> 15000.

    Only :data:`_PLAIN` (``1500.00``) and :data:`_GROUPED` (``1,500.00``) are read; see the
    module docstring. Also refuses what Stripe could not charge as a unit amount.
    """
    text = amount.strip()
    code = currency.lower()
    places = exponent(code)
    if _GROUPED.fullmatch(text):
        text = text.replace(",", "")
    elif not _PLAIN.fullmatch(text):
        if re.fullmatch(r"[+-]?[0-9.,]*[0-9][0-9.,]*", text) and text.startswith("-"):
            raise AmountError(Text("amount must be positive, got %(amount)s", amount=repr(amount)))
        readings = _readings(text, display_places(code) if code in WHOLE_UNITS else places)
        raise AmountError(_not_an_amount(amount, readings))
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the patterns above admit only decimals
        raise AmountError(_not_an_amount(amount, [])) from None
    if value <= 0:
        raise AmountError(Text("amount must be positive, got %(amount)s", amount=repr(amount)))
    minor = value.scaleb(places)
    if minor != minor.to_integral_value():
        raise AmountError(
            Text(
                "%(amount)s has more than %(places)s decimals for %(currency)s",
                amount=repr(amount),
                places=places,
                currency=code.upper(),
            )
        )
    limit = max_minor(code) if code in SUPPORTED else MAX_MINOR
    if minor > limit:
        raise AmountError(
            Text(
                "amount %(amount)s is too large (Stripe's maximum is %(maximum)s)",
                amount=repr(amount),
                maximum=format_minor(limit, code),
            )
        )
    result = int(minor)
    problem = unit_amount_problem(result, code) if code in SUPPORTED else None
    if problem:
        raise AmountError(problem)
    return result


def format_minor(minor: int, currency: str) -> str:
    """15000, usd -> "150.00 USD"; 150000, usd -> "1,500.00 USD"; 50000, isk -> "500 ISK"."""
    places = exponent(currency)
    shown = display_places(currency)
    major = Decimal(minor).scaleb(-places)
    if shown < places and major != major.to_integral_value():
        shown = places  # never hide a fraction that is there
    return f"{major:,.{shown}f} {currency.upper()}"
