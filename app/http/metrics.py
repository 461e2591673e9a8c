"""`/metrics`, Prometheus text format: the process's counters and histograms
(app/metrics.py) and gauges read at scrape time (`RuntimeGauges`).

Each process exports its own: an API process at /metrics on its port, `cobro worker`
on `COBRO_METRICS_PORT` (`serve_metrics`). Gauges read from the database (outbox
lag, pending merchant webhooks) are the cluster's, so every process reports the
same values: take max() across instances. Two indexed aggregate queries per scrape
at most once a second, never on a request's path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from starlette.requests import Request
from starlette.responses import Response

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import outbox, webhooks
from app.metrics import REGISTRY
from app.resilience.breaker import CircuitState
from app.services.routing import Router

log = logging.getLogger("cobro.metrics")

# The database's gauges are read at most this often, however often scrapers come.
REFRESH_SECONDS = 1.0
QUERY_TIMEOUT_SECONDS = 2.0


class RuntimeGauges:
    """A prometheus-client collector for what is read, not counted: each PSP's
    circuit, the outbox's and merchant webhooks' backlog, the database pool."""

    def __init__(self, db: Database, clock: Clock, router: Router) -> None:
        self.db = db
        self.clock = clock
        self.router = router
        self._read_at = -REFRESH_SECONDS
        self._database_ok = False
        self._outbox: tuple[int, float] = (0, 0.0)
        self._pending: tuple[int, float] = (0, 0.0)

    async def refresh(self) -> None:
        """Read the backlog gauges from the database (at most once a second)."""
        if time.monotonic() - self._read_at < REFRESH_SECONDS:
            return
        self._read_at = time.monotonic()
        try:
            async with asyncio.timeout(QUERY_TIMEOUT_SECONDS), self.db.read() as conn:
                unpublished = await outbox.unpublished(conn)
                pending = await webhooks.pending(conn)
        except Exception as error:  # a scrape reports the outage, it does not fail
            if self._database_ok:
                log.warning("metrics: could not read the backlog gauges: %s", error)
            self._database_ok = False
            return
        now = self.clock.now()
        self._outbox = (unpublished[0], self._age(unpublished[1], now))
        self._pending = (pending[0], self._age(pending[1], now))
        self._database_ok = True

    @staticmethod
    def _age(oldest: datetime | None, now: datetime) -> float:
        return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0

    def collect(self) -> Iterable[Metric]:
        circuits = GaugeMetricFamily(
            "cobro_circuit_state",
            "Each PSP's circuit breaker: 1 for its current state (CLOSED, OPEN, HALF_OPEN).",
            labels=["provider", "state"],
        )
        for name in self.router.breakers.names():
            current = self.router.breakers.state(name)
            for state in CircuitState:
                circuits.add_metric([name, state.value], 1.0 if state is current else 0.0)
        yield circuits
        in_use, most = self.db.pool_status()
        yield GaugeMetricFamily(
            "cobro_db_pool_in_use",
            "Database connections checked out of this process's pool (SQLite: the writer).",
            value=in_use,
        )
        yield GaugeMetricFamily(
            "cobro_db_pool_max", "The most connections this process's pool opens.", value=most
        )
        yield GaugeMetricFamily(
            "cobro_metrics_database_up",
            "1 if the last scrape read the backlog gauges from the database, else 0 "
            "(and the backlog gauges are left out).",
            value=1.0 if self._database_ok else 0.0,
        )
        if not self._database_ok:
            return
        yield GaugeMetricFamily(
            "cobro_outbox_unpublished",
            "Outbox rows committed but not yet published (the whole cluster's).",
            value=self._outbox[0],
        )
        yield GaugeMetricFamily(
            "cobro_outbox_lag_seconds",
            "Age of the oldest unpublished outbox row; 0 when none waits.",
            value=self._outbox[1],
        )
        yield GaugeMetricFamily(
            "cobro_webhook_deliveries_pending",
            "Merchant webhook deliveries still owed (the whole cluster's).",
            value=self._pending[0],
        )
        yield GaugeMetricFamily(
            "cobro_webhook_delivery_oldest_pending_age_seconds",
            "Age of the oldest merchant webhook delivery still owed; 0 when none is.",
            value=self._pending[1],
        )


class _Exposition:
    """The process registry and a runtime's gauges, as one registry to render."""

    def __init__(self, gauges: RuntimeGauges | None) -> None:
        self.gauges = gauges

    def collect(self) -> Iterable[Metric]:
        yield from REGISTRY.collect()
        if self.gauges is not None:
            yield from self.gauges.collect()


async def render(gauges: RuntimeGauges | None) -> bytes:
    if gauges is not None:
        await gauges.refresh()
    return generate_latest(_Exposition(gauges))


async def metrics(request: Request) -> Response:
    runtime = getattr(request.app.state, "runtime", None)
    body = await render(runtime.gauges if runtime is not None else None)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def serve_metrics(
    host: str, port: int, body: Callable[[], Awaitable[bytes]]
) -> asyncio.Server:
    """A bare HTTP/1.0 listener answering every GET with the metrics (for `cobro
    worker`, which serves nothing else), on the worker's own event loop so that the
    gauges it reads from the database use its engine."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                request_line = await reader.readline()
                while (await reader.readline()).strip():
                    pass  # headers: nothing here needs them
            if request_line.split(b" ", 1)[0] == b"GET":
                payload = await body()
                head = f"HTTP/1.0 200 OK\r\nContent-Type: {CONTENT_TYPE_LATEST}\r\n"
            else:
                payload = b"GET only\n"
                head = "HTTP/1.0 405 Method Not Allowed\r\nContent-Type: text/plain\r\n"
            writer.write(f"{head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(answer, host, port)
