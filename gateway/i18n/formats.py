"""Amounts, dates and times the way a reader of each language writes them (CLDR, via Babel),
in the organisation's time zone (``checkout.timezone``).

Amounts are never rounded for display: a fraction that is there is shown (``decimal_
quantization=False``), and the minor-unit exponent is the gateway's own (Stripe's rules in
:mod:`gateway.domain.money`), so "1500" minor units of ``usd`` always read as 15.00.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time, get_datetime_format
from babel.numbers import format_currency

from gateway.domain.money import exponent

# Formatted amounts kept per locale: the fees a club charges repeat; a few KB at most.
_AMOUNTS_KEPT = 64


class Formats:
    """Formatting for one locale and time zone (cheap to keep one per locale: nothing of the
    locale is read before its first use)."""

    def __init__(self, locale: str, timezone: str) -> None:
        self.locale = locale
        self._zone = ZoneInfo(timezone)
        # The locale's CLDR data (~1-2 MB each) is read at the first amount or date in it.
        self._locale: Locale | None = None
        self._long_glue: str | None = None
        self._amounts: dict[tuple[int, str], str] = {}

    @property
    def _cldr(self) -> Locale:
        found = self._locale
        if found is None:
            found = self._locale = Locale.parse(self.locale, sep="-")
        return found

    @property
    def _glue(self) -> str:
        glue = self._long_glue
        if glue is None:
            glue = self._long_glue = str(get_datetime_format("long", locale=self._cldr))
        return glue

    def money(self, minor: int, currency: str) -> str:
        """15000, "usd" -> "$150.00" (en), "150,00 US$" (es), "US$ 150,00" (pt-BR).

        Remembered per (amount, currency), the last :data:`_AMOUNTS_KEPT` of them: CLDR formatting
        costs ~20 µs, a page shows three amounts in two variants, and a club's fees repeat."""
        key = (minor, currency)
        found = self._amounts.get(key)
        if found is None:
            major = Decimal(minor).scaleb(-exponent(currency))
            found = format_currency(
                major, currency.upper(), locale=self._cldr, decimal_quantization=False
            )
            if len(self._amounts) >= _AMOUNTS_KEPT:
                self._amounts.clear()
            self._amounts[key] = found
        return found

    def local(self, value: datetime) -> datetime:
        return value.astimezone(self._zone)

    def date(self, value: datetime | None) -> str:
        """The day, in the organisation's zone: "December 7, 2026", "7 de dezembro de 2026"."""
        if value is None:
            return ""
        return format_date(self.local(value), "long", locale=self._cldr)

    def time(self, value: datetime) -> str:
        """The time of day with its zone named: "3:05 PM British Summer Time"."""
        local = self.local(value)
        clock = format_time(local, "short", locale=self._cldr)
        zone = format_time(local, "zzzz", locale=self._cldr)
        return f"{clock} ({zone})"

    def datetime(self, value: datetime | None) -> str:
        """Day and time with the zone, for when the hour matters (a payment, a near expiry)."""
        if value is None:
            return ""
        date = self.date(value)
        return self._glue.replace("'", "").replace("{1}", date).replace("{0}", self.time(value))
