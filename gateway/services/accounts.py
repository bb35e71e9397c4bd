"""Console accounts (issue 15). STUB: the accounts helper fills it in."""

from __future__ import annotations

from gateway.adapters.db.engine import Database
from gateway.clock import Clock
from gateway.services.outbox import Outbox


class Accounts:
    def __init__(self, db: Database, clock: Clock, outbox: Outbox, *, public_url: str) -> None:
        self._db = db
        self._clock = clock
        self._outbox = outbox
        self._public_url = public_url.rstrip("/")
