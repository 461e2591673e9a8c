"""Live updates for subscribers: the snapshot, then every change, in version order.

Subscribe first, read the snapshot second: a change that commits in between is
already queued for us. Versions make the rest exact: anything at or below the last
version sent is a duplicate and dropped; a jump means something was missed (a
relay published out of order, the broker dropped, our queue overflowed) and the
missing versions are read back from the outbox, which keeps every version.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncGenerator
from datetime import datetime, timedelta

from opentelemetry.trace import Span, SpanKind, Tracer

from app import trace_context
from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import intents as intent_rows
from app.db.repositories import outbox
from app.domain.codec import intent_from_dict
from app.domain.errors import Forbidden, InvalidInput, NotFound
from app.domain.intents import PaymentIntent, is_final
from app.domain.payout_codec import is_payout_dict
from app.domain.refunds import is_refund_dict
from app.events.broker import Broker, Subscription
from app.events.messages import Change, intent_channel, merchant_channel
from app.services.auth import KeyKind, Principal, can_read, require_principal, require_secret_key

# How far back a merchant stream looks when it must catch up after a broker outage.
CATCH_UP_MARGIN = timedelta(seconds=30)
CATCH_UP_PAGE = 500
# Intents whose last version a merchant stream remembers, to drop duplicates.
REMEMBERED_INTENTS = 10_000


class LiveService:
    def __init__(
        self, db: Database, broker: Broker, clock: Clock, tracer: Tracer | None = None
    ) -> None:
        self.db = db
        self.broker = broker
        self.clock = clock
        # Set when traces are on: each push continues the trace of the change it sends.
        self.tracer = tracer

    async def intent_updates(
        self,
        principal: Principal | None,
        intent_id: str,
        after_version: int | None,
    ) -> AsyncGenerator[PaymentIntent, None]:
        """One intent: snapshot (or what came after `after_version`), then each change,
        until a final status."""
        principal = require_principal(principal)
        if principal.kind is KeyKind.PUBLISHABLE:
            raise Forbidden("subscribing needs the intent's client secret or your secret key")
        subscription = await self.broker.subscribe([intent_channel(intent_id)])
        try:
            current = await self._current(intent_id)
            if current is None or not can_read(principal, current):
                raise NotFound(f"no payment intent {intent_id}", ("id",))
            if after_version is not None and after_version > current.version:
                raise InvalidInput(
                    f"afterVersion {after_version} is ahead of the intent (version "
                    f"{current.version})",
                    ("afterVersion",),
                )
            last = 0 if after_version is None else after_version
            latest, final = current.version, is_final(current.status)
            if after_version is None:
                backlog = [current]
            else:
                backlog = await self._versions(intent_id, last, current.version) or [current]
            # Only numbers are kept while waiting: an idle subscription must not hold
            # an intent (several KiB each, 10,000 subscriptions per process).
            del current
            intent: PaymentIntent | None
            while backlog:
                intent = backlog.pop(0)
                if intent.version > last:
                    last = intent.version
                    yield intent
            while not final or latest > last:
                intent = None
                news, traced_by = await self._news(subscription, intent_id, last)
                for intent in news:
                    if intent.version > last:
                        last = latest = intent.version
                        final = is_final(intent.status)
                        span = self._push_span(traced_by, intent, "intent")
                        try:
                            yield intent
                        finally:
                            if span is not None:
                                span.end()
        finally:
            subscription.close()

    async def merchant_updates(
        self,
        principal: Principal | None,
    ) -> AsyncGenerator[PaymentIntent, None]:
        """Every change of every intent of the caller's merchant, none twice."""
        viewer = require_secret_key(principal)
        merchant_id = viewer.merchant_id
        seen: OrderedDict[str, int] = OrderedDict()
        subscription = await self.broker.subscribe([merchant_channel(merchant_id)])
        since = self.clock.now()
        try:
            while True:
                change = await subscription.next()
                traced_by = change.traceparent if isinstance(change, Change) else None
                if isinstance(change, Change):
                    candidates = [change.intent]
                elif change is not None:
                    continue  # not an intent's: the merchant channel carries none
                else:
                    candidates = await self._merchant_since(merchant_id, since - CATCH_UP_MARGIN)
                if candidates:
                    since = max(since, *(intent.updated_at for intent in candidates))
                for intent in candidates:
                    if seen.get(intent.id, 0) >= intent.version:
                        continue
                    seen[intent.id] = intent.version
                    seen.move_to_end(intent.id)
                    if len(seen) > REMEMBERED_INTENTS:
                        seen.popitem(last=False)
                    span = self._push_span(traced_by, intent, "merchant")
                    try:
                        yield intent
                    finally:
                        if span is not None:
                            span.end()
        finally:
            subscription.close()

    async def _news(
        self, subscription: Subscription, intent_id: str, last: int
    ) -> tuple[list[PaymentIntent], str | None]:
        """What came after version `last`: the next change, with any versions it
        skipped read back from the outbox (or everything since, after an outage); and
        the traceparent of the change that brought the news."""
        while True:
            change = await subscription.next()
            if change is None:
                return await self._versions(intent_id, last, None), None
            if isinstance(change, Change) and change.version > last:
                news = await self._versions(intent_id, last, change.version - 1)
                news.append(change.intent)
                return news, change.traceparent

    def _push_span(
        self, traceparent: str | None, intent: PaymentIntent, stream: str
    ) -> Span | None:
        """The subscriber's part of a change's trace, from the change's arrival until
        the stream is asked for more (the message has been sent by then). Not made
        current: a context set across a generator's `yield` would leak into its consumer."""
        if self.tracer is None or traceparent is None:
            return None
        return trace_context.continue_trace(
            self.tracer,
            "subscription push",
            traceparent,
            SpanKind.CONSUMER,
            {
                "messaging.system": "cobro",
                "messaging.destination.name": stream,
                "cobro.intent_id": intent.id,
                "cobro.version": intent.version,
            },
        )

    async def _current(self, intent_id: str) -> PaymentIntent | None:
        # A method of its own, so the connection is not kept alive in the generator's
        # frame for as long as the subscription lasts.
        async with self.db.read() as conn:
            return await intent_rows.get(conn, intent_id)

    async def _merchant_since(self, merchant_id: str, since: datetime) -> list[PaymentIntent]:
        """Every change the merchant logged since `since`, page by page."""
        found: list[PaymentIntent] = []
        after_id = 0
        async with self.db.read() as conn:
            while True:
                rows = await outbox.merchant_since(
                    conn, merchant_id, since, after_id=after_id, limit=CATCH_UP_PAGE
                )
                found += [
                    intent_from_dict(row.payload)
                    for row in rows
                    if not is_payout_dict(row.payload) and not is_refund_dict(row.payload)
                ]
                if len(rows) < CATCH_UP_PAGE:
                    return found
                after_id = rows[-1].id

    async def _versions(self, intent_id: str, after: int, up_to: int | None) -> list[PaymentIntent]:
        """The intent's versions after `after`, up to `up_to` (None: the newest), from
        the outbox. A change that skipped nothing asks for none: no read (on
        PostgreSQL a round trip on every push)."""
        if up_to is not None and up_to <= after:
            return []
        async with self.db.read() as conn:
            rows = await outbox.versions_between(conn, intent_id, after, up_to)
        return [intent_from_dict(row.payload) for row in rows]
