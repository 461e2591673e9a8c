"""Rate limits per key (contract section 10), counted by the `limits` library.

Who is counted: a merchant's secret keys, its publishable keys, and each intent's
client secret, each kind with its own limits (`COBRO_RATE_LIMITS__*`, in the
library's notation: "100/second;3000/minute"). Keys of one kind rolled side by side
share their merchant's count, so rolling a key never doubles what it may do.
Requests without a key, or with a bad one, are not counted (they are refused
anyway). PSP webhooks are not GraphQL and never pass here.

Where the count lives: in this process (`_LocalWindows`, fixed windows as limits'
MemoryStorage counts them) without Redis; with
`COBRO_REDIS_URL`, in Redis (limits' RedisStorage, on redis-py), so every process
shares it. A Redis round trip per request would cost the hot path (about a tenth
of a read's CPU, README "Security"), so each process takes its share of a busy
key's limit from Redis in slices (1% of the limit, one INCRBY each) and spends them
locally for the rest of that window: a key may go over its limit by at most a
slice per process per window, and quiet keys (a slice of 1) are counted exactly.
While Redis cannot be reached, each process counts on its own (never failing a
request for it) and says so once in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage, Storage

from app.domain.errors import CobroError
from app.services.auth import KeyKind, Principal

log = logging.getLogger("cobro.rate_limits")

# A slice of a key's limit taken from Redis at once: this share of it.
SLICE_SHARE = 0.01
# After Redis failed, count in this process for this long before trying it again.
REDIS_RETRY_SECONDS = 5.0
REDIS_TIMEOUT_SECONDS = 0.25
# No socket timeout for the Redis client (redis-py takes None; limits types its
# options narrower): with one, redis-py bounds each send with asyncio.wait_for, which
# on Python 3.11 drops a cancellation arriving as the send completes, and a cancelled
# request went on. _take bounds its calls with asyncio.timeout instead.
_NO_SOCKET_TIMEOUT: dict[str, Any] = {"socket_timeout": None}
# Keys remembered at once (slices, refusals); cleared when full.
MAX_TRACKED = 100_000


class RateLimited(CobroError):
    """Over the key's limit: retry after `retry_after` seconds."""

    code = "RATE_LIMITED"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limit exceeded for this key: retry after {retry_after} s")
        self.retry_after = retry_after


def parse_limits(text: str) -> list[RateLimitItem]:
    """ "100/second;3000/minute" -> limits' items; "" means no limit. ValueError
    with the reason for anything else."""
    if not text.strip():
        return []
    try:
        return list(parse_many(text))
    except ValueError as error:
        raise ValueError(
            f"{text!r} is not a rate limit such as '100/second' or '100/second;3000/minute' "
            f"({error})"
        ) from None


@dataclass(slots=True)
class _Slice:
    left: int  # hits still ours to spend
    until: float  # monotonic: the slice lapses then (its window is over)
    refused_until: float  # monotonic: the window is full until then


class _LocalWindows:
    """Fixed windows counted in this process: `incr` and `get_expiry` as limits'
    MemoryStorage answers them (a window starts at its first hit and lasts its
    expiry), without what that class spends per call on the hot path: an asyncio
    lock per key and a new task sweeping every key after each hit, about 20 µs of
    a request (bench/NOTES.md)."""

    def __init__(self) -> None:
        self._windows: dict[str, list[float]] = {}  # key -> [count, ends at (time.time)]

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        window = self._windows.get(key)
        if window is None or window[1] <= now:
            if len(self._windows) >= MAX_TRACKED:
                self._windows = {k: w for k, w in self._windows.items() if w[1] > now}
                if len(self._windows) >= MAX_TRACKED:
                    self._windows.clear()
            window = self._windows[key] = [0, now + expiry]
        window[0] += amount
        return int(window[0])

    async def get_expiry(self, key: str) -> float:
        window = self._windows.get(key)
        return window[1] if window is not None else time.time()


class RateLimiter:
    def __init__(self, limits: dict[str, list[RateLimitItem]], redis_url: str | None) -> None:
        self.limits = {KeyKind(kind): items for kind, items in limits.items()}
        self._local = _LocalWindows()
        self._shared: Storage | None = (
            RedisStorage(
                _limits_uri(redis_url),
                implementation="redispy",
                wrap_exceptions=True,
                key_prefix="cobro:ratelimit",
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                **_NO_SOCKET_TIMEOUT,
            )
            if redis_url
            else None
        )
        self._slices: dict[tuple[str, ...], _Slice] = {}
        self._refills: dict[tuple[str, ...], asyncio.Future[None]] = {}
        self._redis_back_at = 0.0

    @property
    def enabled(self) -> bool:
        return any(self.limits.values())

    async def hit(self, principal: Principal) -> None:
        """Count one request (or one subscription) of this key; RateLimited if it
        is over a limit."""
        items = self.limits.get(principal.kind)
        if not items:
            return
        who = (
            principal.kind.value,
            principal.intent_id
            if principal.kind is KeyKind.CLIENT_SECRET and principal.intent_id
            else principal.merchant_id,
        )
        for item in items:
            wait = await self._hit(item, who)
            if wait is not None:
                raise RateLimited(max(1, math.ceil(wait)))

    async def _hit(self, item: RateLimitItem, who: tuple[str, str]) -> float | None:
        """None when the hit is allowed; else seconds until the window ends."""
        key = (item.key_for(), *who)
        now = time.monotonic()
        held = self._slices.get(key)
        if held is not None:
            if now < held.refused_until:
                return held.refused_until - now
            if held.left > 0 and now < held.until:
                held.left -= 1
                return None
        storage, size = self._storage_for(item)
        if storage is self._local:
            return await self._take(item, who, key, now, storage, size)
        # One slice taken from Redis at a time per key: a burst of this process's
        # first hits would otherwise each take a slice of their own at once and spend
        # the window's whole budget on slices nobody keeps (a thousand subscriptions
        # opened together were refused well below the limit). The others wait for
        # that slice and spend from it.
        refill = self._refills.get(key)
        if refill is not None:
            await asyncio.shield(refill)
            return await self._hit(item, who)
        refill = self._refills[key] = asyncio.get_running_loop().create_future()
        try:
            return await self._take(item, who, key, now, storage, size)
        finally:
            del self._refills[key]
            refill.set_result(None)

    async def _take(
        self,
        item: RateLimitItem,
        who: tuple[str, str],
        key: tuple[str, ...],
        now: float,
        storage: Storage | _LocalWindows,
        size: int,
    ) -> float | None:
        """Take a slice of the window's budget from `storage` (a hit's worth when
        counting locally); None when the hit is allowed, else seconds to wait."""
        storage_key = item.key_for(*who)
        window = item.get_expiry()
        # Redis's calls bounded; counting in this process is a dict's work (every hit
        # of the embedded default comes here: a timer each would be about 6 us).
        local = storage is self._local
        bounded = contextlib.nullcontext() if local else asyncio.timeout(REDIS_TIMEOUT_SECONDS)
        try:
            async with bounded:
                count = await storage.incr(storage_key, window, amount=size)
                before = count - size
                if before < item.amount:
                    taken = min(size, item.amount - before)
                    self._remember(key, _Slice(taken - 1, now + window, 0.0))
                    return None
                wait = max(await storage.get_expiry(storage_key) - time.time(), 0.001)
        except Exception as error:
            if local:
                raise
            self._redis_failed(error)
            return await self._hit(item, who)
        self._remember(key, _Slice(0, 0.0, now + wait))
        return wait

    def _storage_for(self, item: RateLimitItem) -> tuple[Storage | _LocalWindows, int]:
        if self._shared is not None and time.monotonic() >= self._redis_back_at:
            if self._redis_back_at:
                log.warning("rate limits: counting in Redis again")
                self._redis_back_at = 0.0
            return self._shared, max(1, int(item.amount * SLICE_SHARE))
        return self._local, 1

    def _redis_failed(self, error: Exception) -> None:
        if not self._redis_back_at:
            log.warning(
                "rate limits: Redis unreachable (%s); each process counts on its own", error
            )
        self._redis_back_at = time.monotonic() + REDIS_RETRY_SECONDS

    def _remember(self, key: tuple[str, ...], held: _Slice) -> None:
        if len(self._slices) >= MAX_TRACKED:
            self._slices.clear()
        self._slices[key] = held

    async def close(self) -> None:
        if self._shared is not None:
            bridge = getattr(self._shared, "bridge", None)
            client = getattr(bridge, "storage", None)
            if client is not None and hasattr(client, "aclose"):
                await client.aclose()


def _limits_uri(redis_url: str) -> str:
    """COBRO_REDIS_URL as limits wants it: redis://… -> async+redis://…"""
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    return "async+" + redis_url
