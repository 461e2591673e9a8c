"""Forget what is no longer needed: idempotency keys past their 7 days, and
published outbox rows older than the retention (subscribers resync from newer)."""

from __future__ import annotations

from datetime import timedelta

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import idempotency, outbox


class Housekeeping:
    def __init__(self, db: Database, clock: Clock, outbox_retention: timedelta) -> None:
        self.db = db
        self.clock = clock
        self.outbox_retention = outbox_retention

    async def run_once(self) -> tuple[int, int]:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            keys = await idempotency.purge_expired(conn, now)
            rows = await outbox.purge_published(conn, now - self.outbox_retention)
        return keys, rows
