"""Merchant webhook delivery: every intent change, signed, to each matching endpoint.

Deliveries are queued by the relay when it publishes a change (the change is
committed, so nothing unreal is ever sent). Due deliveries are leased, so several
workers never send the same one, and a delivery waits while an earlier version of
the same intent is still owed to that endpoint, so events arrive in version order.
Each delivery runs as its own task: an endpoint that hangs for its 10 s only
delays itself. A 2xx acknowledges; anything else is retried with exponential
backoff and jitter for up to 3 days, each attempt recorded. While an endpoint's
secret is being rolled, each attempt is signed with every secret still live.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import webhooks as rows
from app.db.repositories.outbox import OutboxEntry
from app.domain import signatures
from app.domain.codec import intent_from_dict
from app.domain.errors import InvalidInput
from app.domain.ids import new_id
from app.domain.intents import PaymentIntent
from app.domain.payout_codec import is_payout_dict, payout_from_dict
from app.domain.payouts import Payout
from app.domain.records import Delivery, Endpoint
from app.domain.refunds import is_refund_dict
from app.metrics import WEBHOOK_DELIVERIES
from app.services.url_guard import pinned, resolve_public
from app.services.webhook_events import event_body, event_id
from providers.http import tls_context

log = logging.getLogger("cobro.deliveries")

TIMEOUT_SECONDS = 10.0  # no answer in 10 s is a failure (contract section 6)
RETRY_WINDOW = timedelta(days=3)
MAX_BACKOFF = timedelta(hours=6)
LEASE = timedelta(seconds=TIMEOUT_SECONDS * 3)
MAX_IN_FLIGHT = 100
BATCH = 100
USER_AGENT = "Cobro-Webhooks/1.0"
# Outcome of an attempt -> its metric label (pending again means it will be retried).
_RESULTS = {"delivered": "delivered", "pending": "retrying", "failed": "failed"}
# Jitter from a generator of our own: the process-wide one is left to whoever seeds it.
_jitter = random.Random()


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """The wait after the `attempts`-th failure: doubling, capped, with ±50% jitter."""
    delay = min(base_seconds * 2 ** (attempts - 1), MAX_BACKOFF.total_seconds())
    return timedelta(seconds=delay * (0.5 + _jitter.random()))


class MerchantWebhooks:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        allow_private: bool,
        retry_base_seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.allow_private = allow_private
        self.retry_base = retry_base_seconds
        self.client = httpx.AsyncClient(
            transport=transport,
            timeout=TIMEOUT_SECONDS,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"},
            verify=tls_context(),
        )
        self._in_flight: set[asyncio.Task[None]] = set()

    async def enqueue(self, entries: list[OutboxEntry], now: datetime) -> int:
        """Queue one delivery per (change, endpoint that wants it); called by the relay.
        The endpoints are read first, outside any transaction: most changes have no
        endpoint to go to, and then nothing is written (no BEGIN and COMMIT on
        PostgreSQL for an empty write)."""
        async with self.db.read() as conn:
            queued = await self._deliveries(conn, entries, now)
        if queued:
            async with self.db.transaction() as conn:
                await rows.enqueue(conn, queued)
        return len(queued)

    async def _deliveries(
        self, conn: AsyncConnection, entries: list[OutboxEntry], now: datetime
    ) -> list[dict[str, object]]:
        merchants = sorted({e.merchant_id for e in entries})
        endpoints = [e for e in await rows.endpoints_of(conn, merchants) if e.enabled]
        if not endpoints:
            return []
        queued = []
        for entry in entries:
            wanting = [
                e
                for e in endpoints
                if e.merchant_id == entry.merchant_id and e.wants(entry.event_type)
            ]
            if not wanting:
                continue
            event = event_id(entry.intent_id, entry.version)
            subject: PaymentIntent | Payout | dict[str, object]
            if is_refund_dict(entry.payload):
                subject = entry.payload  # stored as the API shows it
            elif is_payout_dict(entry.payload):
                subject = payout_from_dict(entry.payload)
            else:
                subject = intent_from_dict(entry.payload)
            body = event_body(event, entry.event_type, subject, now)
            queued += [
                {
                    "id": new_id("wd"),
                    "endpoint_id": endpoint.id,
                    "merchant_id": entry.merchant_id,
                    "event_id": event,
                    "event_type": entry.event_type,
                    "intent_id": entry.intent_id,
                    "intent_version": entry.version,
                    "body": body,
                    "status": "pending",
                    "attempts": 0,
                    "created_at": now,
                    "next_attempt_at": now,
                }
                for endpoint in wanting
            ]
        return queued

    async def dispatch_due(self) -> int:
        """Start sending deliveries that are due, as many as there are free slots."""
        free = MAX_IN_FLIGHT - len(self._in_flight)
        if free <= 0:
            return 0
        now = self.clock.now()
        until = now + LEASE
        async with self.db.transaction() as conn:
            due = await rows.claim_due(conn, now=now, lease_until=until, limit=min(free, BATCH))
            wanted = sorted({d.endpoint_id for d in due})
            endpoints = await rows.endpoints_by_id(conn, wanted) if due else {}
        for delivery in due:
            endpoint = endpoints.get(delivery.endpoint_id)
            if endpoint is None:
                continue
            task = asyncio.create_task(self._send(endpoint, delivery, until))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(due)

    async def drain(self) -> None:
        """Wait for deliveries in flight (tests and shutdown)."""
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)

    async def _send(self, endpoint: Endpoint, delivery: Delivery, lease: datetime) -> None:
        status_code, error, took = await self._post(endpoint, delivery)
        now = self.clock.now()
        if status_code is not None and 200 <= status_code < 300:
            outcome, next_at = "delivered", None
        elif now - delivery.created_at >= RETRY_WINDOW:
            outcome, next_at = "failed", None
        else:
            outcome, next_at = "pending", now + backoff(delivery.attempts + 1, self.retry_base)
        async with self.db.transaction() as conn:
            recorded = await rows.record_attempt(
                conn,
                delivery,
                lease=lease,
                status_code=status_code,
                error=error,
                duration_ms=took,
                now=now,
                outcome=outcome,
                next_attempt_at=next_at,
            )
        WEBHOOK_DELIVERIES.labels(
            "unrecorded" if not recorded else _RESULTS.get(outcome, outcome)
        ).inc()
        if not recorded:
            log.warning("delivery %s outlived its lease; its result was not recorded", delivery.id)
        elif outcome != "delivered":
            log.info(
                "delivery %s to %s: %s (%s)",
                delivery.id,
                _where(endpoint.url),
                outcome,
                status_code or error,
                extra={"intent_id": delivery.intent_id, "endpoint_id": endpoint.id},
            )

    async def _post(
        self, endpoint: Endpoint, delivery: Delivery
    ) -> tuple[int | None, str | None, int]:
        started = time.monotonic()
        body = delivery.body.encode()
        now = self.clock.now()
        header = signatures.sign_all(body, endpoint.signing_secrets(now), int(now.timestamp()))
        url, headers = endpoint.url, {"Cobro-Signature": header}
        extensions: dict[str, str] = {}
        try:
            if not self.allow_private:
                url, host, extensions = pinned(endpoint.url, await resolve_public(endpoint.url))
                headers |= host
            response = await self.client.post(
                url, content=body, headers=headers, extensions=extensions
            )
            return response.status_code, None, _ms(started)
        except InvalidInput as refused:
            return None, refused.message, _ms(started)
        except Exception as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500], _ms(started)

    async def aclose(self) -> None:
        await self.drain()
        await self.client.aclose()


def _where(url: str) -> str:
    """An endpoint's URL for a log line: no credentials, no query string (merchants
    put tokens there)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unreadable URL)"
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
