"""payoutUpdated: the snapshot, every version in order, resumable with afterVersion,
completing after a final status; another merchant's payout is NOT_FOUND."""

from __future__ import annotations

from tests.conftest import DEV_SECRET
from tests.support.payouts import WATCH_PAYOUT, create_payout, wait_for_status
from tests.support.ws import GraphQLWebSocket


async def _until_complete(ws: GraphQLWebSocket, op_id: str) -> list[dict]:
    seen: list[dict] = []
    while True:
        message = await ws.receive(timeout=15)
        if message.get("id") != op_id:
            continue
        if message["type"] == "complete":
            return seen
        assert message["type"] == "next", message
        assert not message["payload"].get("errors"), message
        seen.append(message["payload"]["data"]["payoutUpdated"])


async def test_a_subscriber_sees_paid_then_returned_and_the_stream_completes(api, http, server):
    payout = (await create_payout(api))["payout"]
    async with GraphQLWebSocket(server.url, DEV_SECRET) as ws:
        op_id = await ws.subscribe(WATCH_PAYOUT, {"id": payout["id"]})
        first = (await ws.next_data())["payoutUpdated"]
        assert first["id"] == payout["id"] and first["version"] >= 2
        paid = await wait_for_status(api, payout["id"], "PAID")
        back = await http.post(f"/sandbox/spei/payouts/{paid['trackingKey']}/return", json={})
        assert back.status_code == 200, back.text
        rest = await _until_complete(ws, op_id)
    versions = [first["version"]] + [p["version"] for p in rest]
    assert versions == list(range(first["version"], 5))
    assert [p["status"] for p in rest][-1] == "RETURNED"
    assert rest[-1]["returnReason"]["code"] == "03"
    assert rest[-1]["proofUrl"]  # it was paid: the CEP stays

    async with GraphQLWebSocket(server.url, DEV_SECRET) as ws:
        op_id = await ws.subscribe(WATCH_PAYOUT, {"id": payout["id"], "after": 1})
        resumed = await _until_complete(ws, op_id)
    assert [(p["version"], p["status"]) for p in resumed] == [
        (2, "IN_TRANSIT"),
        (3, "PAID"),
        (4, "RETURNED"),
    ]


async def test_another_merchants_payout_cannot_be_watched(api, server, other_merchant):
    payout = (await create_payout(api))["payout"]
    async with GraphQLWebSocket(server.url, other_merchant.secret_key) as ws:
        op_id = await ws.subscribe(WATCH_PAYOUT, {"id": payout["id"]})
        assert await ws.error_code(op_id) == "NOT_FOUND"
    async with GraphQLWebSocket(server.url, DEV_SECRET) as ws:
        op_id = await ws.subscribe(WATCH_PAYOUT, {"id": payout["id"], "after": 99})
        assert await ws.error_code(op_id) == "INVALID_INPUT"
