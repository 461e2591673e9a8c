"""Circuit states shared by every process through Redis, without blocking.

pybreaker keeps each circuit in memory (its Redis storage is synchronous: every
state check would be a blocking round trip on the event loop, and a Redis that
hangs would hang the process). Instead, when a circuit opens here, that fact is
written to Redis with the reset timeout as its lifetime; every process reads the
keys every second and opens its own circuit when another process opened it. The
failure count stays per process; what is shared is the state that matters: open.
A Redis that is away only delays the news; it never stops a payment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pybreaker
import redis.asyncio as redis
from redis.exceptions import RedisError

from app.resilience.breaker import Breakers

log = logging.getLogger("cobro.circuits")

POLL_SECONDS = 1.0
# How long one round (announce, read) may take against a Redis that hangs.
ROUND_SECONDS = 1.0
PREFIX = "cobro:circuit-open:"


class SharedCircuits(pybreaker.CircuitBreakerListener):
    def __init__(self, url: str, breakers: Breakers) -> None:
        # No socket timeout: with one, redis-py bounds each send with asyncio.wait_for,
        # and Python 3.11's wait_for drops a cancellation that arrives as the send
        # completes, so this loop outlived shutdown's cancellation. A round is
        # bounded by asyncio.timeout in run() instead.
        self.client = redis.from_url(url, socket_connect_timeout=1, socket_timeout=None)
        self.breakers = breakers
        self._applying = False  # opening a circuit because another process did
        self._tasks: set[asyncio.Task[Any]] = set()
        # Circuits this process opened, and when they close again: re-announced every
        # round until then, so a write lost to a Redis restart is made good.
        self._opened_here: dict[str, float] = {}
        breakers.add_listener(self)

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        name = cb.name
        if name is None:
            return  # not one of Breakers' circuits: those are named after their provider
        if new_state.name == pybreaker.STATE_CLOSED:
            self._opened_here.pop(name, None)  # it recovered: stop telling others
            return
        if self._applying or new_state.name != pybreaker.STATE_OPEN:
            return
        loop_time = time.monotonic()
        self._opened_here[name] = loop_time + self.breakers.reset_seconds
        try:
            task = asyncio.get_running_loop().create_task(self._announce(name))
        except RuntimeError:
            return  # no loop (a synchronous caller): nothing to share with
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _announce(self, name: str) -> None:
        ttl_ms = int((self._opened_here.get(name, 0) - time.monotonic()) * 1000)
        if ttl_ms <= 0:
            self._opened_here.pop(name, None)
            return
        try:
            async with asyncio.timeout(ROUND_SECONDS):
                await self.client.set(f"{PREFIX}{name}", "1", px=ttl_ms)
        except (RedisError, OSError) as exc:
            log.warning("could not share that %s's circuit opened (will retry): %s", name, exc)

    async def sync_once(self) -> None:
        """Announce the circuits opened here; open here every circuit opened elsewhere."""
        for name in list(self._opened_here):
            await self._announce(name)
        names = self.breakers.names()
        values = await self.client.mget([f"{PREFIX}{n}" for n in names])
        for name, value in zip(names, values, strict=True):
            if value is not None and self.breakers.is_closed(name):
                self._applying = True
                try:
                    self.breakers.open(name)
                finally:
                    self._applying = False
                log.info("%s's circuit opened by another process", name)

    async def run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(ROUND_SECONDS):
                    await self.sync_once()
            except (RedisError, OSError) as exc:  # TimeoutError is an OSError
                log.debug("circuit sync skipped: %s", exc)
            await asyncio.sleep(POLL_SECONDS)

    async def aclose(self) -> None:
        await self.client.aclose()
