"""The gateway's own errors. Adapters translate library errors into these at the edge, and one
web middleware turns them into pages, so handlers never deal with Stripe or database exceptions.
"""

from __future__ import annotations

import secrets

from gateway.domain.text import Text


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class PaymentProviderUnavailable(GatewayError):
    """Stripe could not be reached or answered with a server error; trying again may work.

    ``reference`` is a short code shown to the payer and logged, so support can find the line.
    """

    def __init__(self, message: str, *, reference: str | None = None) -> None:
        super().__init__(message)
        self.reference = reference or new_reference()


class PaymentProviderRejected(GatewayError):
    """Stripe refused the request itself (invalid request, authentication, idempotency)."""

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param
        self.reference = new_reference()


class ConflictRetryExhausted(GatewayError):
    """Concurrent requests kept changing the link under us; the payer can simply retry."""

    def __init__(self) -> None:
        super().__init__(Text("too much contention on one link"))
        self.reference = new_reference()


class ValidationFailed(GatewayError):
    """Input an admin gave is wrong; ``errors`` maps a field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class NotFound(GatewayError):
    pass


def new_reference() -> str:
    """A short code a parent can read out on the phone (no 0/O/1/I confusion)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(8))
