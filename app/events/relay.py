"""The outbox relay: committed changes go to the broker, in commit order.

Rows written by this process are handed over the moment they commit (the
database's after-commit hook) and published at once; they are leased to us, so no
other relay touches them. Rows whose writer died before publishing are found by
their lapsed lease and published by whichever relay sees them first. A row is
marked published only after the broker took it; nothing uncommitted is ever
published, because only committed rows reach the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from datetime import timedelta
from typing import Any

from redis.exceptions import RedisError

from app.clock import Clock
from app.db.engine import Database
from app.db.outage import Outage
from app.db.repositories import outbox
from app.db.repositories.outbox import OutboxEntry
from app.domain.errors import ServiceUnavailable
from app.events.broker import Broker
from app.events.deliveries import MerchantWebhooks
from app.events.messages import channels_of, message_of

log = logging.getLogger("cobro.relay")

# Look for rows a dead process left behind this often.
ORPHAN_SCAN_SECONDS = 2.0
BATCH = 500
# Rows kept in memory waiting for a broker that is down; beyond this they wait in
# the database and are picked up as orphans once their lease lapses.
MAX_BACKLOG = 10_000
RETRY_SECONDS = 0.5


class OutboxRelay:
    def __init__(
        self, db: Database, broker: Broker, clock: Clock, webhooks: MerchantWebhooks
    ) -> None:
        self.db = db
        self.broker = broker
        self.clock = clock
        self.webhooks = webhooks
        self._backlog: deque[OutboxEntry] = deque()
        self._wake = asyncio.Event()
        # A broker (Redis) that is down fails every retry alike: said once, not per try.
        self.broker_outage = Outage("broker")
        db.add_after_commit(self.on_commit)

    def on_commit(self, items: list[Any]) -> None:
        entries = [item for item in items if isinstance(item, OutboxEntry)]
        if not entries:
            return
        self._backlog.extend(entries)
        while len(self._backlog) > MAX_BACKLOG:
            self._backlog.popleft()  # still in the database; an orphan scan will find it
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_scan = loop.time()
        while True:
            timeout = max(0.0, next_scan - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            try:
                await self.publish_backlog()
                if loop.time() >= next_scan:
                    await self.publish_orphans()
                    next_scan = loop.time() + ORPHAN_SCAN_SECONDS
            except asyncio.CancelledError:
                raise
            except ServiceUnavailable:
                pass  # the database's outage is logged once, where it is seen
            except (RedisError, OSError) as error:
                self.broker_outage.failed(error)
            except Exception:
                log.exception("relay could not publish; retrying")
                await asyncio.sleep(RETRY_SECONDS)
                self._wake.set()

    async def publish_backlog(self) -> None:
        while self._backlog:
            batch = [self._backlog.popleft() for _ in range(min(BATCH, len(self._backlog)))]
            try:
                await self._publish(batch)
            except BaseException:
                self._backlog.extendleft(reversed(batch))
                raise

    async def publish_orphans(self) -> int:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            orphans = await outbox.claim_orphans(
                conn, now=now, lease_until=now + timedelta(seconds=30), limit=BATCH
            )
        if orphans:
            log.info("publishing %d outbox rows left by another process", len(orphans))
            await self._publish(orphans)
        return len(orphans)

    async def _publish(self, entries: list[OutboxEntry]) -> None:
        # Merchant webhooks first, so they never wait on the broker: queuing twice
        # (after a retry) is a no-op, one delivery per endpoint and event.
        await self.webhooks.enqueue(entries, self.clock.now())
        for entry in entries:
            channels = channels_of(entry)
            if channels:  # a refund's row is for merchant webhooks only
                await self.broker.publish(channels, message_of(entry))
        if self.broker_outage.ongoing:
            self.broker_outage.succeeded()
        # One statement: no transaction around it on PostgreSQL.
        async with self.db.autocommit() as conn:
            await outbox.mark_published(conn, [e.id for e in entries], self.clock.now())
