"""What an admin asks for when issuing a link, checked before anything is stored."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.domain.errors import ValidationFailed
from gateway.domain.money import MAX_MINOR, AmountError, check_currency, to_minor

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

    @property
    def amount_total(self) -> int:
        return sum(item.total for item in self.items)


def parse_item(spec: str, currency: str) -> ItemSpec:
    """``"Spring fee=150.00"`` or ``"Team kit=25.00x2"`` (major units, optional quantity)."""
    match = _ITEM_SPEC.match(spec.strip())
    if not match:
        raise AmountError(f'expected "Description=Amount" (e.g. "Spring fee=150.00"), got {spec!r}')
    quantity = int(match["qty"] or 1)
    if not 1 <= quantity <= 100:
        raise AmountError(f"quantity must be between 1 and 100 in {spec!r}")
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
) -> NewLink:
    """Check every field and report all problems at once (a bulk row shows them together)."""
    errors: dict[str, str] = {}
    email = email.strip()
    if not _EMAIL.match(email) or len(email) > 320:
        errors["email"] = f"not an email address: {email!r}"
    name = " ".join(name.split())
    if not name or len(name) > 200:
        errors["name"] = "a payer name of 1-200 characters is required"
    description = " ".join(description.split())
    if len(description) > 500:
        errors["description"] = "at most 500 characters"
    try:
        currency = check_currency(currency)
    except AmountError as exc:
        errors["currency"] = str(exc)
        currency = "usd"
    parsed: list[ItemSpec] = []
    if not items:
        errors["items"] = "at least one item is required"
    elif len(items) > MAX_ITEMS:
        errors["items"] = f"at most {MAX_ITEMS} items"
    else:
        for index, item in enumerate(items):
            try:
                spec = parse_item(item, currency) if isinstance(item, str) else item
                if not spec.description or len(spec.description) > 500:
                    raise AmountError("an item needs a description of 1-500 characters")
                parsed.append(spec)
            except AmountError as exc:
                errors[f"items[{index}]"] = str(exc)
    if parsed and sum(item.total for item in parsed) > MAX_MINOR:
        errors["items"] = "the total is too large"
    ref = ref.strip()
    if len(ref) > 200:
        errors["ref"] = "at most 200 characters"
    if not 3600 <= valid_for <= max_valid_for:
        errors["valid_for"] = f"must be between 1h and {int(max_valid_for // 86400)}d"
    if errors:
        raise ValidationFailed(errors)
    if not description:
        description = parsed[0].description
    return NewLink(email, name, description, currency, tuple(parsed), ref, valid_for)
