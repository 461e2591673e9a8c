"""Subscribers who vanish mid-change cost the ones who stay nothing.

Subscribers with the same document and viewer share one execution of each change
(resolvers/shared_events.py). Here clients drop abruptly (TCP closed, no graphql-ws
`complete`) while such executions run, as phones on a train do; the ones who stay
must receive every change.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct

from tests.conftest import DEV_SECRET
from tests.support.graphql import create_intent
from tests.support.ws import GraphQLWebSocket

# `events` is resolved asynchronously (a DataLoader read), so each shared execution
# spans several turns of the server's loop: the window a drop must hit.
DASHBOARD = """
subscription Dashboard { paymentIntentsUpdated { id status version events { type } } }
"""
STAYERS = 20
DROPPERS_AT_ONCE = 8
CHANGES = 40


async def drop_abruptly(ws: GraphQLWebSocket) -> None:
    """Close the TCP connection with a reset: no close frame, no `complete`."""
    transport = ws.ws.transport
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def collect(ws: GraphQLWebSocket, seen: set[str]) -> None:
    """Every intent id this stayer is told about, until cancelled."""
    while True:
        message = await ws.receive(timeout=60)
        assert message["type"] == "next", message
        payload = message["payload"]
        assert not payload.get("errors"), payload
        seen.add(payload["data"]["paymentIntentsUpdated"]["id"])


async def wait_until(condition, timeout: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_stayers_receive_every_change_while_others_drop_mid_execution(api, server):
    stayers = [GraphQLWebSocket(server.url, DEV_SECRET) for _ in range(STAYERS)]
    seen: list[set[str]] = [set() for _ in stayers]
    readers: list[asyncio.Task[None]] = []
    producing = True
    drops = 0

    async def keep_dropping() -> None:
        nonlocal drops
        while producing:
            ws = GraphQLWebSocket(server.url, DEV_SECRET)
            await ws.__aenter__()
            await ws.subscribe(DASHBOARD)
            # Gone at a random moment, most likely while a change is being executed.
            await asyncio.sleep(random.uniform(0.0, 0.05))
            await drop_abruptly(ws)
            drops += 1

    try:
        for ws, mine in zip(stayers, seen, strict=True):
            await ws.__aenter__()
            await ws.subscribe(DASHBOARD)
            readers.append(asyncio.create_task(collect(ws, mine)))
        marker = (await create_intent(api))["id"]
        assert await wait_until(lambda: all(marker in s for s in seen), 10), "not subscribed"

        droppers = [asyncio.create_task(keep_dropping()) for _ in range(DROPPERS_AT_ONCE)]
        created = []
        try:
            for _ in range(CHANGES):
                created.append((await create_intent(api))["id"])
                await asyncio.sleep(random.uniform(0.0, 0.02))
        finally:
            producing = False
            await asyncio.gather(*droppers)
        assert drops >= CHANGES, f"only {drops} drops"

        everyone_has_all = lambda: all(set(created) <= s for s in seen)  # noqa: E731
        await wait_until(everyone_has_all, 10)
        for reader in readers:
            if reader.done():
                reader.result()  # a reader that failed says why
        missing = [len(set(created) - s) for s in seen]
        assert missing == [0] * STAYERS, f"changes missed by each stayer: {missing}"
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for ws in stayers:
            if ws.ws is not None:
                await ws.__aexit__(None, None, None)
