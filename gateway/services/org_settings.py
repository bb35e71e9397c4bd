"""Issue 15 console service. STUB: a helper fills it in."""

from __future__ import annotations

from gateway.adapters.db.engine import Database
from gateway.clock import Clock


class OrgSettings:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
