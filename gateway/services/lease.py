"""A named lease in the database: "one of several processes does this job now".

Works the same on SQLite and PostgreSQL, across processes and hosts: a row in ``kv`` holding the
owner and when it was taken. Taking it is one conditional write, so two processes racing for it
cannot both win; a holder that crashed loses it when ``ttl`` runs out.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import KeyValue
from gateway.clock import Clock


class Lease:
    def __init__(self, db: Database, clock: Clock, name: str, ttl: float) -> None:
        self._db = db
        self._clock = clock
        self._key = f"lease:{name}"
        self._ttl = timedelta(seconds=ttl)
        self.owner = ""

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def acquire(self) -> bool:
        """Take the lease for one run. A fresh owner token each time: even two runs in the same
        process exclude each other."""
        now = self._now()
        owner = secrets.token_hex(8)
        try:
            async with self._db.write() as session:
                row = await session.get(KeyValue, self._key)
                if row is None:
                    session.add(KeyValue(key=self._key, value=owner, updated_at=now))
                    self.owner = owner
                    return True
                if row.value and row.updated_at > now - self._ttl:
                    return False
                # Conditional on what we read: a racing process that changed it makes this a no-op.
                result = await session.execute(
                    sa.update(KeyValue)
                    .where(
                        KeyValue.key == self._key,
                        KeyValue.value == row.value,
                        KeyValue.updated_at == row.updated_at,
                    )
                    .values(value=owner, updated_at=now)
                    .execution_options(synchronize_session=False)
                )
                if not result.rowcount:  # type: ignore[attr-defined]
                    return False
                self.owner = owner
                return True
        except IntegrityError:
            return False  # another process inserted the row first

    async def release(self) -> None:
        # Marked free rather than deleted: the row is reused by the next holder.
        async with self._db.write() as session:
            await session.execute(
                sa.update(KeyValue)
                .where(KeyValue.key == self._key, KeyValue.value == self.owner)
                .values(value="", updated_at=datetime.fromtimestamp(0, UTC))
            )
