"""Loops that must stop when cancelled, and a Redis that never answers.

redis-py bounds each send with asyncio.wait_for when its client has a socket
timeout, and Python 3.11's wait_for drops a cancellation that arrives as the send
completes. Such a loss shows only at some moments, so a loop is cancelled at many
random ones."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

TRIES = 300
# The longest wait before the cancellation: a few of a loop's round trips to Redis.
LONGEST_WAIT = 0.003


async def stops_at_every_cancellation(
    start: Callable[[int], Coroutine[Any, Any, object]], seed: int
) -> None:
    """Start `start(n)` TRIES times, cancel it after a random wait, and fail if it
    outlives that one cancellation (it is cancelled again so the test can end)."""
    rng = random.Random(seed)
    for n in range(TRIES):
        task = asyncio.create_task(start(n))
        await asyncio.sleep(rng.random() * LONGEST_WAIT)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=2)
        if not done:
            task.cancel()
            await asyncio.wait([task], timeout=2)
        assert done, "the loop outlived its cancellation"


@asynccontextmanager
async def silent_redis() -> AsyncIterator[str]:
    """The URL of a "Redis" that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        yield f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for writer in held:
            writer.close()
        server.close()
