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
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Tracer
from redis.exceptions import RedisError

from app import trace_context
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
        self,
        db: Database,
        broker: Broker,
        clock: Clock,
        webhooks: MerchantWebhooks,
        tracer: Tracer | None = None,
    ) -> None:
        self.db = db
        self.broker = broker
        self.clock = clock
        self.webhooks = webhooks
        # Set when traces are on: each publish continues the trace its row carries.
        self.tracer = tracer
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
        scan_orphans: Callable[[], Awaitable[object]] = self.publish_orphans
        if self.tracer is not None:
            scan_orphans = trace_context.traced_job("outbox-orphans", scan_orphans, self.tracer)
        while True:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for, woken and cancelled
            # in one turn, returns and drops the cancellation, and shutdown would wait
            # for this loop for good.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(next_scan):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.publish_backlog()
                if loop.time() >= next_scan:
                    await scan_orphans()
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
        if self.tracer is None:
            await self._publish_batch(entries, None)
            return
        with self._batch_span(entries, self.tracer):
            await self._publish_batch(entries, self.tracer)

    async def _publish_batch(self, entries: list[OutboxEntry], tracer: Tracer | None) -> None:
        # Merchant webhooks are queued beside the broker's publishes, so they never
        # wait on the broker, nor subscribers on the database's answer about
        # endpoints; the batch is published once both are done. Queuing twice (after
        # a retry) is a no-op: one delivery per endpoint and event.
        queued = asyncio.create_task(self.webhooks.enqueue(entries, self.clock.now()))
        try:
            await self._to_broker(entries, tracer)
        finally:
            await queued
        # One statement: no transaction around it on PostgreSQL.
        async with self.db.autocommit() as conn:
            await outbox.mark_published(conn, [e.id for e in entries], self.clock.now())

    async def _to_broker(self, entries: list[OutboxEntry], tracer: Tracer | None) -> None:
        for entry in entries:
            channels = channels_of(entry)
            if not channels:  # a refund's row is for merchant webhooks only
                continue
            if tracer is None:
                # Untraced here, but the row may come from a process that traces.
                await self.broker.publish(channels, message_of(entry, entry.traceparent))
            else:
                await self._publish_traced(entry, channels, tracer, alone=len(entries) == 1)
        if self.broker_outage.ongoing:
            self.broker_outage.succeeded()

    @contextlib.contextmanager
    def _batch_span(self, entries: list[OutboxEntry], tracer: Tracer) -> Iterator[None]:
        """The relay's work on a batch as one span: in the trace of the change it
        publishes when it is one (the usual case), linked to each change otherwise."""
        parents = [trace_context.context_of(entry.traceparent) for entry in entries]
        parent = parents[0] if len(entries) == 1 else None
        links = [
            Link(trace.get_current_span(context).get_span_context())
            for context in parents
            if context is not None and len(entries) > 1
        ]
        with tracer.start_as_current_span(
            "outbox relay", context=parent, links=links, attributes={"cobro.rows": len(entries)}
        ):
            yield

    async def _publish_traced(
        self, entry: OutboxEntry, channels: list[str], tracer: Tracer, *, alone: bool
    ) -> None:
        """PUBLISH under a producer span of the change's trace; the message carries that
        span's traceparent, which each subscriber's push continues."""
        parent = None if alone else trace_context.context_of(entry.traceparent)
        with tracer.start_as_current_span(
            "outbox publish",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "cobro",
                "messaging.destination.name": "intent",
                "cobro.intent_id": entry.intent_id,
                "cobro.version": entry.version,
            },
        ):
            change = message_of(entry, trace_context.traceparent())
            await self.broker.publish(channels, change)
