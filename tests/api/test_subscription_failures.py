"""A subscription whose stream fails, for any reason, tells its client so.

The failure is injected where a stream waits: its broker inbox (app/events/broker.py
Subscription), on the real server's loop. An exception there stands for a broken
broker or database; a cancellation the subscriber did not ask for stands for shared
work cancelled by someone else. Either must end the operation with an `error` (or
errors, then `complete`), logged once, never silence.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable

import pytest

from app.events.messages import intent_channel
from tests.conftest import DEV_SECRET
from tests.support.graphql import create_intent
from tests.support.ws import INTENT_UPDATED, GraphQLWebSocket


def break_waiting_stream(server, intent_id: str, fail: Callable[[asyncio.Future], None]) -> None:
    """Fail the wait of the one subscription on `intent_id`'s channel, on the server's loop."""
    fanout = server.server.config.app.state.runtime.broker.fanout
    loop = server.server.servers[0].get_loop()

    async def inject() -> None:
        for _ in range(200):  # until the stream is waiting for its next change
            (subscription,) = fanout._by_channel[intent_channel(intent_id)]
            if subscription._waiter is not None:
                fail(subscription._waiter)
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the stream never waited")

    asyncio.run_coroutine_threadsafe(inject(), loop).result(timeout=5)


def cancel(waiter: asyncio.Future) -> None:
    waiter.cancel()


def raise_error(waiter: asyncio.Future) -> None:
    waiter.set_exception(RuntimeError("the broker broke"))


@pytest.mark.parametrize("fail", [cancel, raise_error])
@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_a_failed_stream_ends_with_an_error_not_silence(api, server, caplog, fail, protocol):
    intent = await create_intent(api)
    async with GraphQLWebSocket(server.url, DEV_SECRET, protocol=protocol) as ws:
        op = await ws.subscribe(INTENT_UPDATED, {"id": intent["id"]})
        assert (await ws.next_data())["paymentIntentUpdated"]["version"] == 1
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            break_waiting_stream(server, intent["id"], fail)
            final = await ws.receive(timeout=5)
            assert final["id"] == op
            if final["type"] in ("next", "data"):  # errors in a result, then complete
                assert final["payload"]["errors"], final
                final = await ws.receive(timeout=5)
                assert final == {"id": op, "type": "complete"}
            elif final["type"] == "error":
                assert final["payload"], final
            else:
                # graphql-ws answers a cancellation with `complete`, which it can act on
                assert (protocol, fail, final["type"]) == ("graphql-ws", cancel, "complete")
            await asyncio.sleep(0.1)
        if not (protocol == "graphql-ws" and fail is cancel):
            errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(errors) == 1, [r.getMessage() for r in errors]

        # The connection lives on, and the ended operation's id is free again.
        ws._ids = itertools.count(int(op))
        assert await ws.subscribe(INTENT_UPDATED, {"id": intent["id"]}) == op
        assert (await ws.next_data())["paymentIntentUpdated"]["version"] == 1
