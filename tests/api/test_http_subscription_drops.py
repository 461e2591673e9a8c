"""Clients that drop an SSE or multipart subscription leave nothing behind.

Each stream holds Strawberry's keep-alive and execution tasks and a broker
subscription. A client that goes away (TCP closed, mid-stream) must take all of it
with it: the server's tasks, its open-subscription gauge and its memory (traced by
tracemalloc from before the warm-up, after a full collection) come back to what they
were before.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

import httpx
import pytest

from tests.api.test_metrics import eventually, scrape, value
from tests.conftest import DEV_SECRET
from tests.support.graphql import confirm, create_intent
from tests.support.http_streams import MULTIPART, SSE, HTTPSubscription
from tests.support.server import ServerThread

WATCH = "subscription($id: ID!) { paymentIntentUpdated(id: $id) { id status version } }"
AT_ONCE = 20
# Enough to fill the process's bounded caches first: after 60 only, their last
# growth still showed as ~1 KB per drop in 300.
WARM_UP = 200
DROPS = 400
ROUNDS = 2
# Server tasks that come and go by themselves (the embedded worker's jobs).
TASK_SLACK = 3
# Bytes still held per dropped stream once idle: 130-330 measured. A stream left
# behind (its execution, context and broker subscription) holds ~8.7 KB.
BOUND_PER_DROP = 800


def server_tasks(server: ServerThread) -> int:
    """How many tasks the server's event loop holds, counted on that loop."""
    loop = server.server.servers[0].get_loop()

    async def count() -> int:
        return len(asyncio.all_tasks())

    return asyncio.run_coroutine_threadsafe(count(), loop).result(timeout=10)


async def open_and_drop(http: httpx.AsyncClient, intent_id: str, accept: str, count: int) -> None:
    async def one() -> None:
        async with HTTPSubscription(
            http, WATCH, {"id": intent_id}, key=DEV_SECRET, accept=accept
        ) as sub:
            await sub.data()
        # Leaving the block closes the response before its end: the connection goes.

    for _ in range(count // AT_ONCE):
        await asyncio.gather(*(one() for _ in range(AT_ONCE)))


async def settled(server: ServerThread, http: httpx.AsyncClient, transport: str) -> tuple[int, int]:
    async def no_stream_open() -> bool:
        return value(await scrape(http), "cobro_subscriptions_open", transport=transport) == 0

    assert await eventually(no_stream_open), "streams still open"
    await asyncio.sleep(0.5)
    gc.collect()
    return server_tasks(server), tracemalloc.get_traced_memory()[0]


@pytest.mark.slow
@pytest.mark.parametrize("accept", [SSE, MULTIPART], ids=["sse", "multipart"])
async def test_dropped_streams_leave_no_tasks_or_memory_behind(api, server, accept):
    transport = "graphql-sse" if accept == SSE else "multipart-subscription"
    intent = await create_intent(api)
    limits = httpx.Limits(max_connections=AT_ONCE * 2, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as http:
        tracemalloc.start()
        try:
            await open_and_drop(http, intent["id"], accept, WARM_UP)
            tasks_before, memory_before = await settled(server, http, transport)
            # Two rounds, the smaller growth counts: a stream left behind grows both,
            # a cache filling or the embedded worker's own work beside a busy
            # machine's other suites shows in one (once 1.1 KB a drop under load).
            growth = []
            for _ in range(ROUNDS):
                await open_and_drop(http, intent["id"], accept, DROPS)
                tasks_after, memory_after = await settled(server, http, transport)
                growth.append(memory_after - memory_before)
                memory_before = memory_after
        finally:
            tracemalloc.stop()
        # The intent's subscribers are gone: a change reaches nobody and breaks nothing.
        await confirm(api, intent["id"], card={"token": "tok_visa"})
    assert tasks_after <= tasks_before + TASK_SLACK, (tasks_before, tasks_after)
    per_drop = min(growth) / DROPS
    assert per_drop < BOUND_PER_DROP, f"{per_drop:.0f} B per dropped stream ({growth} B)"
