"""A Stripe-compatible emulator for the gateway's demo, tests and benchmarks.

The gateway talks to it through the official ``stripe`` SDK pointed at its URL. See
``StripeEmulator`` for the in-process helpers and ``create_emulator_app`` for the HTTP side.
"""

from gateway.emulator.app import create_emulator_app
from gateway.emulator.emulator import StripeEmulator
from gateway.emulator.errors import StripeError
from gateway.emulator.faults import Faults
from gateway.emulator.keys import EMULATOR_KEY
from gateway.emulator.webhooks import sign as sign_webhook

__all__ = [
    "EMULATOR_KEY",
    "Faults",
    "StripeEmulator",
    "StripeError",
    "create_emulator_app",
    "sign_webhook",
]
