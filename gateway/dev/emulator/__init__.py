"""A Stripe-compatible emulator for the gateway's demo, tests and benchmarks.

The gateway talks to it through the official ``stripe`` SDK pointed at its URL. See
``StripeEmulator`` for the in-process helpers and ``create_emulator_app`` for the HTTP side.
"""

from gateway.dev.emulator.app import create_emulator_app
from gateway.dev.emulator.emulator import StripeEmulator
from gateway.dev.emulator.errors import StripeError
from gateway.dev.emulator.faults import Faults
from gateway.dev.emulator.keys import EMULATOR_KEY
from gateway.dev.emulator.webhooks import sign as sign_webhook

__all__ = [
    "EMULATOR_KEY",
    "Faults",
    "StripeEmulator",
    "StripeError",
    "create_emulator_app",
    "sign_webhook",
]
