"""Fault injection settings and the seeded decisions made from them.

``Faults`` is plain mutable data (tests flip fields in-process, the control API sets them over
HTTP); ``FaultDecider`` turns it into per-request and per-webhook decisions. Counters (``*_next``)
are consumed only by requests the fault applies to, and rates draw from a seeded stream so a
run is reproducible.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


@dataclass
class Faults:
    latency: float = 0.0
    """Seconds added before answering each API request."""
    fail_next: int = 0
    """The next N API requests answer 500 ``api_error`` without being applied. As at Stripe, a
    POST's 500 is kept under its idempotency key: the same key replays it for 24 hours."""
    error_rate: float = 0.0
    """Probability that an API request answers 500 without being applied (kept like the above)."""
    drop_next: int = 0
    """The next N API requests lose their connection before being applied."""
    drop_after_apply_next: int = 0
    """The next N API requests are applied, then lose their connection: the caller never hears."""
    fail_after_apply_next: int = 0
    """The next N API requests are applied, then answer 500 ``api_error`` (kept under the key):
    Stripe's indeterminate 500, after which an object may exist although the answer says not."""
    hold_next: int = 0
    """The next N API requests are applied, then wait to answer until released
    (``StripeEmulator.held.release()`` or ``POST /_emulator/held/release``), holding their
    idempotency key meanwhile: a slow Stripe whose timing a test decides."""
    paths: list[str] | None = None
    """Restrict the API faults above to these path prefixes (``None``: every ``/v1`` path)."""
    webhook_loss_rate: float = 0.0
    """Probability that an event is never delivered (it still shows in ``/v1/events``)."""
    lose_next_webhooks: int = 0
    """The next N events are never delivered."""
    duplicate_webhooks: bool | float = False
    """Deliver each event twice (``True``) or with this probability."""
    reorder_webhooks: bool = False
    """Deliver each batch of due webhooks in reverse order."""

    def update(self, changes: dict[str, Any]) -> None:
        """Set fields from a JSON-ish mapping, rejecting unknown names and wrong types."""
        known = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        coerced = {name: _coerce(name, value) for name, value in changes.items()}
        for name, value in coerced.items():
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(name: str, value: Any) -> Any:
    if name == "paths":
        if value is None:
            return None
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(p, str) for p in value):
            return list(value)
        raise ValueError("paths must be a list of path prefixes or null")
    if name in {
        "fail_next",
        "drop_next",
        "drop_after_apply_next",
        "fail_after_apply_next",
        "hold_next",
        "lose_next_webhooks",
    }:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer")
        return value
    if name == "reorder_webhooks":
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be a boolean")
        return value
    if name == "duplicate_webhooks" and isinstance(value, bool):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    if name == "latency":
        if value < 0:
            raise ValueError("latency must be >= 0")
        return float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1")
    return float(value)


class RequestFault(Enum):
    NONE = "none"
    FAIL = "fail"  # 500 without applying
    DROP = "drop"  # connection closed before applying
    DROP_AFTER_APPLY = "drop_after_apply"
    FAIL_AFTER_APPLY = "fail_after_apply"  # applied, then a 500
    HOLD = "hold"  # applied, then answered only when released


@dataclass
class FaultDecider:
    faults: Faults
    seed: int
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"{self.seed}:faults")

    def applies_to(self, path: str) -> bool:
        prefixes = self.faults.paths
        return prefixes is None or any(path.startswith(prefix) for prefix in prefixes)

    def for_request(self, path: str) -> RequestFault:
        if not self.applies_to(path):
            return RequestFault.NONE
        faults = self.faults
        if faults.drop_next > 0:
            faults.drop_next -= 1
            return RequestFault.DROP
        if faults.fail_next > 0:
            faults.fail_next -= 1
            return RequestFault.FAIL
        if faults.error_rate > 0 and self._rng.random() < faults.error_rate:
            return RequestFault.FAIL
        if faults.drop_after_apply_next > 0:
            faults.drop_after_apply_next -= 1
            return RequestFault.DROP_AFTER_APPLY
        if faults.fail_after_apply_next > 0:
            faults.fail_after_apply_next -= 1
            return RequestFault.FAIL_AFTER_APPLY
        if faults.hold_next > 0:
            faults.hold_next -= 1
            return RequestFault.HOLD
        return RequestFault.NONE

    def latency_for(self, path: str) -> float:
        return self.faults.latency if self.applies_to(path) else 0.0

    def lose_webhook(self) -> bool:
        faults = self.faults
        if faults.lose_next_webhooks > 0:
            faults.lose_next_webhooks -= 1
            return True
        return faults.webhook_loss_rate > 0 and self._rng.random() < faults.webhook_loss_rate

    def duplicate_webhook(self) -> bool:
        dup = self.faults.duplicate_webhooks
        if isinstance(dup, bool):
            return dup
        return dup > 0 and self._rng.random() < dup
