"""Time-based one-time passwords (RFC 6238) for the console's second factor, through pyotp,
and the enrolment QR code as inline SVG through segno.

Codes are 6 digits, 30-second steps, SHA-1 (what every authenticator app reads from an
``otpauth://`` URI). A code is accepted one step either side of now (clock drift), and never
twice: :meth:`Totp.verify` answers the time step it matched, which the caller stores
(``accounts.totp_last_step``), and refuses any code of that step or an earlier one after it.
"""

from __future__ import annotations

import hmac

import pyotp
import segno

DIGITS = 6
INTERVAL = 30
VALID_WINDOW = 1  # steps either side of now


def normalize_code(code: str) -> str | None:
    """The digits of a code as typed ("123 456", "123-456"), or None when it cannot be one.
    Bounded: anything longer than a few characters is refused unread."""
    if len(code) > 16:
        return None
    digits = "".join(c for c in code if c not in " -\t")
    if len(digits) != DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return digits


class Totp:
    def __init__(self, issuer: str) -> None:
        self._issuer = issuer

    @staticmethod
    def new_secret() -> str:
        """A fresh shared secret: 32 base32 characters (160 bits, RFC 4226's recommendation)."""
        return pyotp.random_base32(32)

    def uri(self, secret: str, account_name: str) -> str:
        """The ``otpauth://totp/...`` URI an authenticator app reads (issuer = the org)."""
        return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).provisioning_uri(
            name=account_name, issuer_name=self._issuer
        )

    @staticmethod
    def qr_svg(uri: str) -> str:
        """The URI as a QR code, an ``<svg>`` element to put in the page as it is (no script, no
        inline style: fine under the console's CSP)."""
        return str(segno.make(uri, error="m").svg_inline(scale=4, border=4, title="QR code"))

    @staticmethod
    def step_at(now: float) -> int:
        return int(now) // INTERVAL

    @staticmethod
    def code_at(secret: str, step: int) -> str:
        return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).generate_otp(step)

    def verify(self, secret: str, code: str, *, now: float, last_step: int | None) -> int | None:
        """The time step ``code`` belongs to (within :data:`VALID_WINDOW` of ``now``) when it is
        right and newer than ``last_step`` (the step of the last code accepted), else None."""
        digits = normalize_code(code)
        if digits is None:
            return None
        current = self.step_at(now)
        found: int | None = None
        for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
            # Every candidate is compared (constant work whichever matches).
            if hmac.compare_digest(self.code_at(secret, step), digits) and found is None:
                found = step
        if found is None or (last_step is not None and found <= last_step):
            return None
        return found
