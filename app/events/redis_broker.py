"""The Redis broker: one subscribing connection per process, fanned out in process.

A single reader task owns one PubSub. SUBSCRIBE happens when a channel gets its
first local subscriber and waits for Redis to confirm it (so a subscriber that
reads its snapshot after subscribing cannot miss a change in between).
Pub/sub is at-most-once: when the link drops, the reader reconnects with backoff,
subscribes again, and tells every local subscriber to catch up from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import redis.asyncio as redis
from redis.exceptions import RedisError

from app.events.broker import FanOut, Subscription
from app.events.messages import Message, decode, encode

log = logging.getLogger("cobro.broker")

# Reconnect backoff: from a tenth of a second up to five, with jitter.
BACKOFF_START = 0.1
BACKOFF_MAX = 5.0
# Jitter from a generator of our own: the process-wide one is left to whoever seeds it.
_jitter = random.Random()
# How long a new subscriber waits for Redis to confirm SUBSCRIBE before going on
# (marked to catch up from the database once the link is back).
SUBSCRIBE_TIMEOUT = 2.0
# A read that waits this long with no message just loops (keeps the task responsive).
READ_TIMEOUT = 1.0
# How long a command (a publish, a ping, the reconnection's handshake and SUBSCRIBEs)
# may take before Redis counts as away: redis-py's own socket timeout, bounded here.
CALL_TIMEOUT = 5.0


class RedisBroker:
    def __init__(self, url: str) -> None:
        self.url = url
        # No socket timeout (redis-py's default is 5 s): with one, redis-py bounds each
        # send with asyncio.wait_for, and Python 3.11's wait_for drops a cancellation
        # that arrives as the send completes (a publishing loop outlived its
        # cancellation). Calls are bounded with asyncio.timeout here instead.
        self.client = redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=None, health_check_interval=10
        )
        self.fanout = FanOut(on_first=self._first_listener, on_last=self._last_listener)
        self._pubsub: redis.client.PubSub | None = None
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._ever_connected = False

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._read_forever(), name="redis-broker-reader")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
        await self.client.aclose()

    async def ping(self) -> None:
        async with asyncio.timeout(CALL_TIMEOUT):
            await self.client.ping()

    async def publish(self, channels: list[str], change: Message) -> None:
        data = encode(change)
        async with asyncio.timeout(CALL_TIMEOUT), self.client.pipeline(transaction=False) as pipe:
            for channel in channels:
                pipe.publish(channel, data)
            await pipe.execute()

    async def subscribe(self, channels: list[str]) -> Subscription:
        subscription = self.fanout.add(channels)
        waiting = [self._confirmed[c] for c in channels if c in self._confirmed]
        try:
            if waiting:
                async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
                    await asyncio.gather(*(asyncio.shield(w) for w in waiting))
        except TimeoutError:
            log.warning("Redis did not confirm SUBSCRIBE in time; subscriber will catch up")
            subscription.fall_behind()
        except BaseException:
            # The subscriber went away while waiting (its WebSocket closed): forget it.
            subscription.close()
            raise
        return subscription

    # -- channel bookkeeping, called by FanOut --------------------------------------

    def _first_listener(self, channel: str) -> None:
        self._confirmed[channel] = asyncio.get_running_loop().create_future()
        if self._pubsub is not None and self._connected.is_set():
            asyncio.get_running_loop().create_task(self._send("subscribe", channel))

    def _last_listener(self, channel: str) -> None:
        future = self._confirmed.pop(channel, None)
        if future is not None and not future.done():
            future.cancel()
        if self._pubsub is not None and self._connected.is_set():
            asyncio.get_running_loop().create_task(self._send("unsubscribe", channel))

    async def _send(self, command: str, channel: str) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            return
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                if command == "subscribe":
                    await pubsub.subscribe(channel)
                else:
                    await pubsub.unsubscribe(channel)
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            log.warning("Redis %s %s failed (%s); the reader will reconnect", command, channel, exc)

    # -- the reader ------------------------------------------------------------------

    async def _read_forever(self) -> None:
        delay = BACKOFF_START
        while True:
            try:
                async with asyncio.timeout(CALL_TIMEOUT):
                    await self._connect()
                delay = BACKOFF_START
                await self._read()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("Redis link lost (%s); reconnecting in %.1f s", exc, delay)
            except Exception:
                # Never let the reader die silently: a dead listener loses every push.
                log.exception("Redis reader failed; reconnecting in %.1f s", delay)
            # Subscribers catch up once the link is back (see _connect), not on every
            # failed try: that would send them all to the database again and again.
            self._connected.clear()
            await asyncio.sleep(delay * (0.5 + _jitter.random()))
            delay = min(delay * 2, BACKOFF_MAX)

    async def _connect(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
        self._pubsub = self.client.pubsub()
        # A channel-less PubSub would return from reads at once; "cobro:ready" keeps it
        # a live subscription and proves the link works.
        await self._pubsub.subscribe("cobro:ready")
        # From here on a channel's first listener subscribes it itself; every channel
        # that got one before now is in this list (no await in between).
        self._connected.set()
        channels = self.fanout.channels
        for channel in channels:
            if channel not in self._confirmed or self._confirmed[channel].done():
                self._confirmed[channel] = asyncio.get_running_loop().create_future()
        if channels:
            await self._pubsub.subscribe(*channels)
            if self._ever_connected:
                # Anything published while we were away is lost to pub/sub: catch up.
                # (On the first connect, subscribers are still waiting for their
                # SUBSCRIBE to be confirmed and read their snapshot after it.)
                self.fanout.resync_all()
        self._ever_connected = True
        log.info("Redis broker connected (%d channels)", len(channels))

    async def _read(self) -> None:
        assert self._pubsub is not None
        while True:
            message = await self._pubsub.get_message(timeout=READ_TIMEOUT)
            if message is None:
                continue
            kind = message["type"]
            channel = message["channel"].decode()
            if kind == "message":
                try:
                    change = decode(message["data"])
                except (ValueError, KeyError, TypeError):
                    log.error("undecodable message on %s", channel)
                    continue
                self.fanout.deliver(channel, change)
            elif kind == "subscribe":
                future = self._confirmed.get(channel)
                if future is not None and not future.done():
                    future.set_result(None)
