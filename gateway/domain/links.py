"""What an admin asks for when issuing a link, checked before anything is stored.

Rules (every problem of a request is reported at once, field by field):

- amounts follow :mod:`gateway.domain.money`: one unambiguous way of writing them, and nothing
  Stripe would refuse (currency, minimum and maximum charge, decimals) gets issued;
- text is stored and later shown to people and sent to Stripe, so every text field must be
  encodable as UTF-8 (a lone surrogate such as ``"\\ud800"`` is refused) and may not hold
  control characters (C0, DEL, C1) — in a name or description line breaks and tabs are folded
  into spaces, in an email address or ref nothing of the kind is accepted;
- a locale is one the gateway offers (:mod:`gateway.domain.locales`), written any case, with
  ``_`` or ``-`` (``pt_br`` is stored as ``pt-BR``); none given stores None, and the payer's
  pages then follow their browser (emails and previews the configured default).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from gateway.domain.errors import ValidationFailed
from gateway.domain.locales import UnknownLocale, parse_locale
from gateway.domain.money import AmountError, charge_problem, check_currency, to_minor
from gateway.domain.money import check_unit_amount as _check_unit_amount
from gateway.domain.reminders import check_fields
from gateway.domain.text import Text, message_of

_EMAIL = re.compile(r"^[^@\s<>,;]{1,64}@[^@\s<>,;]+\.[^@\s<>,;]{2,}$")
MAX_ITEMS = 20
_ITEM_SPEC = re.compile(r"^(?P<desc>.+?)\s*=\s*(?P<amount>[^=x×]+?)(?:\s*[x×]\s*(?P<qty>\d+))?$")


@dataclass(frozen=True, slots=True)
class ItemSpec:
    description: str
    amount: int  # minor units per unit
    quantity: int = 1

    @property
    def total(self) -> int:
        return self.amount * self.quantity


@dataclass(frozen=True, slots=True)
class NewLink:
    email: str
    name: str
    description: str
    currency: str
    items: tuple[ItemSpec, ...]
    ref: str
    valid_for: float  # seconds
    # One of gateway.domain.locales.OFFERED, or None: the payer's browser, else the default.
    locale: str | None = None
    # The day payment is due (organisation's time zone) and the reminder steps ("-3,1,7",
    # "none"; None: the configured default). See gateway.domain.reminders.
    due_date: date | None = None
    reminder_steps: str | None = None

    @property
    def amount_total(self) -> int:
        return sum(item.total for item in self.items)


def text_problem(value: str) -> Text | None:
    """Why ``value`` cannot be stored as text (None when it can): not encodable as UTF-8 (a lone
    surrogate), or a control character."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return Text("not valid text (it is not encodable as UTF-8: a lone surrogate?)")
    for char in value:
        if unicodedata.category(char) == "Cc":
            code_point = f"U+{ord(char):04X}"
            return Text("control characters are not allowed (found %(char)s)", char=code_point)
    return None


def check_text(value: str, field: str, errors: dict[str, str]) -> bool:
    """Record ``field``'s problem in ``errors``; True when the text is fine."""
    problem = text_problem(value)
    if problem:
        errors.setdefault(field, problem)
    return problem is None


def parse_item(spec: str, currency: str) -> ItemSpec:
    """``"Spring fee=150.00"`` or ``"Team kit=25.00x2"`` (major units, optional quantity)."""
    match = _ITEM_SPEC.match(spec.strip())
    if not match:
        raise AmountError(
            Text(
                'expected "Description=Amount" (e.g. "Spring fee=150.00"), got %(given)s',
                given=repr(spec),
            )
        )
    quantity = int(match["qty"] or 1)
    if not 1 <= quantity <= 100:
        raise AmountError(Text("quantity must be between 1 and 100 in %(given)s", given=repr(spec)))
    return ItemSpec(match["desc"].strip(), to_minor(match["amount"], currency), quantity)


def validate_new_link(
    *,
    email: str,
    name: str,
    description: str,
    currency: str,
    items: Sequence[str | ItemSpec],
    ref: str,
    valid_for: float,
    max_valid_for: float,
    locale: str | None = None,
    due: str | None = None,
    reminders: str | None = None,
    now: datetime | None = None,
    timezone: str = "UTC",
) -> NewLink:
    """Check every field and report all problems at once (a bulk row shows them together).

    ``due`` and ``reminders`` as :func:`gateway.domain.reminders.check_fields` reads them
    (``now``: the issuing moment, ``timezone``: the organisation's, for the due day)."""
    errors: dict[str, str] = {}
    email = email.strip()
    if check_text(email, "email", errors) and (not _EMAIL.match(email) or len(email) > 320):
        errors["email"] = Text("not an email address: %(email)s", email=repr(email))
    name = " ".join(name.split())
    if check_text(name, "name", errors) and (not name or len(name) > 200):
        errors["name"] = Text("a payer name of 1-200 characters is required")
    description = " ".join(description.split())
    if check_text(description, "description", errors) and len(description) > 500:
        errors["description"] = Text("at most %(count)s characters", count=500)
    try:
        currency = check_currency(currency)
    except AmountError as exc:
        errors["currency"] = message_of(exc)
        currency = "usd"
    parsed: list[ItemSpec] = []
    if not items:
        errors["items"] = Text("at least one item is required")
    elif len(items) > MAX_ITEMS:
        errors["items"] = Text("at most %(count)s items", count=MAX_ITEMS)
    else:
        for index, item in enumerate(items):
            try:
                if isinstance(item, str):
                    problem = text_problem(item)
                    if problem:
                        raise AmountError(problem)
                    spec = parse_item(item, currency)
                else:
                    spec = item
                    _check_unit_amount(spec.amount, currency)
                if not spec.description or len(spec.description) > 500:
                    raise AmountError(Text("an item needs a description of 1-500 characters"))
                parsed.append(spec)
            except AmountError as exc:
                errors[f"items[{index}]"] = message_of(exc)
    if parsed and len(parsed) == len(items) and "currency" not in errors:
        problem = charge_problem(sum(item.total for item in parsed), currency)
        if problem:
            errors["total"] = problem
    ref = ref.strip()
    if check_text(ref, "ref", errors) and len(ref) > 200:
        errors["ref"] = Text("at most %(count)s characters", count=200)
    if not 3600 <= valid_for <= max_valid_for:
        errors["valid_for"] = Text(
            "must be between 1h and %(days)sd", days=int(max_valid_for // 86400)
        )
    chosen: str | None = None
    if locale is not None and locale.strip() and check_text(locale, "locale", errors):
        try:
            chosen = parse_locale(locale)
        except UnknownLocale as exc:
            errors["locale"] = message_of(exc)
    due_date, steps = check_fields(
        due, reminders, now=now, timezone=timezone, valid_for=valid_for, errors=errors
    )
    if errors:
        raise ValidationFailed(errors)
    if not description:
        description = parsed[0].description
    return NewLink(
        email, name, description, currency, tuple(parsed), ref, valid_for, chosen, due_date, steps
    )
