"""Subscriptions over a real WebSocket: snapshot, changes in order, completion, auth."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from tests.conftest import DEV_PUBLISHABLE, DEV_SECRET
from tests.support.graphql import GraphQLClient, confirm, create_intent
from tests.support.ws import INTENT_UPDATED, INTENTS_UPDATED, GraphQLWebSocket


async def test_snapshot_then_changes_then_complete(api, http, server):
    intent = await create_intent(api)
    async with GraphQLWebSocket(server.url, DEV_SECRET) as ws:
        op = await ws.subscribe(INTENT_UPDATED, {"id": intent["id"]})
        first = (await ws.next_data())["paymentIntentUpdated"]
        assert (first["status"], first["version"]) == ("REQUIRES_PAYMENT_METHOD", 1)
        await confirm(api, intent["id"], card={"token": "tok_threeDSecureRequired"})
        second = (await ws.next_data())["paymentIntentUpdated"]
        assert (second["status"], second["version"]) == ("REQUIRES_ACTION", 2)
        await http.post(f"/sandbox/3ds/{intent['id']}/complete")
        third = (await ws.next_data())["paymentIntentUpdated"]
        assert (third["status"], third["version"]) == ("SUCCEEDED", 3)
        done = await ws.receive()
        assert done == {"id": op, "type": "complete"}


async def test_after_version_replays_what_was_missed_in_order(api, http, server):
    intent = await create_intent(api)
    await confirm(api, intent["id"], card={"token": "tok_threeDSecureRequired"})
    await http.post(f"/sandbox/3ds/{intent['id']}/complete")
    async with GraphQLWebSocket(server.url, DEV_SECRET) as ws:
        await ws.subscribe(INTENT_UPDATED, {"id": intent["id"], "after": 1})
        versions = [(await ws.next_data())["paymentIntentUpdated"]["version"] for _ in range(2)]
        assert versions == [2, 3]
        assert (await ws.receive())["type"] == "complete"


async def test_after_version_already_current_skips_the_snapshot(api, server):
    intent = await create_intent(api)
    async with GraphQLWebSocket(server.url, DEV_SECRET) as ws:
        await ws.subscribe(INTENT_UPDATED, {"id": intent["id"], "after": 1})
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=0.3)
        await confirm(api, intent["id"], card={"token": "tok_visa"})
        change = (await ws.next_data())["paymentIntentUpdated"]
        assert (change["version"], change["status"]) == (2, "SUCCEEDED")


async def test_after_version_ahead_of_the_intent_is_an_error(api, server):
    intent = await create_intent(api)
    async with GraphQLWebSocket(server.url, DEV_SECRET) as ws:
        op = await ws.subscribe(INTENT_UPDATED, {"id": intent["id"], "after": 7})
        assert await ws.error_code(op) == "INVALID_INPUT"


async def test_client_secret_watches_its_own_intent_only(api, server):
    mine = await create_intent(api)
    other = await create_intent(api)
    async with GraphQLWebSocket(server.url, mine["clientSecret"]) as ws:
        await ws.subscribe(INTENT_UPDATED, {"id": mine["id"]})
        assert (await ws.next_data())["paymentIntentUpdated"]["id"] == mine["id"]
        refused = await ws.subscribe(INTENT_UPDATED, {"id": other["id"]})
        assert await ws.error_code(refused) == "NOT_FOUND"
        refused = await ws.subscribe(INTENTS_UPDATED)
        assert await ws.error_code(refused) == "FORBIDDEN"


async def test_a_bad_key_in_connection_init_is_refused(server):
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        async with GraphQLWebSocket(server.url, "sk_test_nope") as ws:
            await ws.receive()
    assert closed.value.rcvd.code == 4403


async def test_no_key_cannot_subscribe(api, server):
    intent = await create_intent(api)
    async with GraphQLWebSocket(server.url, None) as ws:
        op = await ws.subscribe(INTENT_UPDATED, {"id": intent["id"]})
        assert await ws.error_code(op) == "UNAUTHENTICATED"


async def test_publishable_key_cannot_subscribe(api, server):
    intent = await create_intent(api)
    async with GraphQLWebSocket(server.url, DEV_PUBLISHABLE) as ws:
        op = await ws.subscribe(INTENT_UPDATED, {"id": intent["id"]})
        assert await ws.error_code(op) == "FORBIDDEN"


async def test_merchant_stream_sees_its_own_changes_and_no_one_elses(
    api, http, server, other_merchant
):
    theirs = GraphQLClient(http, other_merchant.secret_key)
    async with GraphQLWebSocket(server.url, DEV_SECRET) as ws:
        await ws.subscribe(INTENTS_UPDATED)
        await asyncio.sleep(0.1)
        await create_intent(theirs)  # must not show up here
        intent = await create_intent(api)
        await confirm(api, intent["id"], card={"token": "tok_visa"})
        seen = [(await ws.next_data())["paymentIntentsUpdated"] for _ in range(2)]
        assert [(s["id"], s["version"], s["status"]) for s in seen] == [
            (intent["id"], 1, "REQUIRES_PAYMENT_METHOD"),
            (intent["id"], 2, "SUCCEEDED"),
        ]
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=0.3)


async def test_legacy_graphql_ws_protocol_works(api, server):
    intent = await create_intent(api)
    async with GraphQLWebSocket(server.url, DEV_SECRET, protocol="graphql-ws") as ws:
        await ws.subscribe(INTENT_UPDATED, {"id": intent["id"]})
        assert (await ws.next_data())["paymentIntentUpdated"]["version"] == 1


WITH_SECRET = """
subscription($id: ID!) { paymentIntentUpdated(id: $id) { id version clientSecret } }
"""
WITH_AMOUNT = """
subscription($id: ID!) { paymentIntentUpdated(id: $id) { version amount { amount } } }
"""


async def test_one_change_shared_by_subscribers_keeps_each_ones_shape_and_view(api, server):
    """A change is executed once per (document, variables, viewer), never across them:
    the client secret's view must not get the secret key's fields."""
    intent = await create_intent(api)
    sockets = [
        GraphQLWebSocket(server.url, DEV_SECRET),
        GraphQLWebSocket(server.url, DEV_SECRET),
        GraphQLWebSocket(server.url, DEV_SECRET),
        GraphQLWebSocket(server.url, intent["clientSecret"]),
    ]
    queries = [WITH_SECRET, WITH_SECRET, WITH_AMOUNT, WITH_SECRET]
    for ws in sockets:
        await ws.__aenter__()
    try:
        for ws, query in zip(sockets, queries, strict=True):
            await ws.subscribe(query, {"id": intent["id"]})
            await ws.next_data()  # the snapshot
        await confirm(api, intent["id"], card={"token": "tok_visa"})
        got = [(await ws.next_data())["paymentIntentUpdated"] for ws in sockets]
    finally:
        for ws in sockets:
            await ws.__aexit__(None, None, None)
    assert (
        got[0]
        == got[1]
        == {
            "id": intent["id"],
            "version": 2,
            "clientSecret": intent["clientSecret"],
        }
    )
    assert got[2] == {"version": 2, "amount": {"amount": "500.00"}}
    assert got[3] == {"id": intent["id"], "version": 2, "clientSecret": None}
