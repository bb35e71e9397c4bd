"""Stripe-looking ids, reproducible from the emulator's seed."""

from __future__ import annotations

import random
import string

_ALPHABET = string.ascii_letters + string.digits


class IdFactory:
    """One random stream per purpose, so that request ids (drawn for every request, including
    control calls) never shift the ids of the objects a test or benchmark creates."""

    def __init__(self, seed: int) -> None:
        self._objects = random.Random(f"{seed}:objects")
        self._requests = random.Random(f"{seed}:requests")

    def new(self, prefix: str, length: int = 24) -> str:
        return prefix + "".join(self._objects.choices(_ALPHABET, k=length))

    def request_id(self) -> str:
        return "req_" + "".join(self._requests.choices(_ALPHABET, k=14))
