"""Thousands of abrupt drops leave nothing behind once the server is idle.

Clients connect, subscribe and vanish (TCP closed, no `complete`) while changes
flow to subscribers who stay. The memory the process holds afterwards (traced by
tracemalloc from before the warm-up, so bounded caches are full by then; after a
full collection, so garbage awaiting the cycle collector does not count) must be
about what it was before. It grew by ~1.6 KB per drop here, because each change a
long-lived subscription executed stayed in graphql-core's memo of subfields.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

import pytest

from tests.api.test_subscription_drops import drop_abruptly
from tests.conftest import DEV_SECRET
from tests.support.graphql import create_intent
from tests.support.ws import GraphQLWebSocket

FEED = "subscription Feed%d { paymentIntentsUpdated { id version amount { amount currency } } }"
CANCEL = "mutation($id: ID!) { cancelPaymentIntent(input: {id: $id}) { errors { code } } }"
STAYERS = 5
AT_ONCE = 10
WARM_UP = 600
DROPS = 1_200
# Bytes still held per dropped connection once idle: 20-130 measured on a quiet
# machine, up to ~300 with other suites running beside it (allocator noise). A leaked
# connection would be kilobytes; the old per-change growth came to ~1.6 KB per drop.
BOUND_PER_DROP = 600


async def drops_while_changing(server, change, count: int) -> int:
    """`count` connect-subscribe-drop cycles while `change()` keeps changing intents."""
    done = 0
    changes = 0

    async def drop_some(n: int) -> None:
        nonlocal done
        for _ in range(n):
            ws = GraphQLWebSocket(server.url, DEV_SECRET)
            await ws.__aenter__()
            await ws.subscribe(FEED % 0)  # shares its executions with stayer 0
            await asyncio.sleep(0.002)
            await drop_abruptly(ws)
            done += 1

    async def keep_changing() -> None:
        nonlocal changes
        while done < count and await change():
            changes += 1

    producer = asyncio.create_task(keep_changing())
    await asyncio.gather(*(drop_some(count // AT_ONCE) for _ in range(AT_ONCE)))
    await producer
    return changes


async def settled_memory() -> int:
    await asyncio.sleep(0.5)  # the server notices the last drops and goes idle
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def drain(ws: GraphQLWebSocket) -> None:
    while True:
        await ws.receive(timeout=60)


@pytest.mark.slow
async def test_dropped_connections_leave_nothing_behind(api, server):
    stayers = [GraphQLWebSocket(server.url, DEV_SECRET) for _ in range(STAYERS)]
    readers = []
    created: list[str] = []

    async def create() -> bool:
        created.append((await create_intent(api))["id"])
        return True

    async def warm_up() -> bool:
        # Both kinds of change, so that the code paths (and their caches) are warm.
        return await (cancel() if len(created) % 3 == 2 else create())

    async def cancel() -> bool:
        # A new version of an intent the stayers know: their per-intent memory of
        # the last version sent (bounded, app/services/live.py) does not grow.
        if not created:
            return await create()
        await api.data(CANCEL, {"id": created.pop()})
        return True

    tracemalloc.start()
    try:
        for n, ws in enumerate(stayers):
            await ws.__aenter__()
            await ws.subscribe(FEED % n)  # a document each: each executes every change
            readers.append(asyncio.create_task(drain(ws)))
        await drops_while_changing(server, warm_up, WARM_UP)
        before = await settled_memory()
        changes = await drops_while_changing(server, cancel, DROPS)
        after = await settled_memory()
    finally:
        tracemalloc.stop()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for ws in stayers:
            if ws.ws is not None:
                await ws.__aexit__(None, None, None)
    assert changes > DROPS // 40, f"only {changes} changes"
    per_drop = (after - before) / DROPS
    assert per_drop < BOUND_PER_DROP, f"{per_drop:.0f} B per drop ({changes} changes)"
