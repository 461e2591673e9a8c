"""Payouts across two API processes, one database, one Redis (contract section 8:
payoutUpdated "across processes"): a subscriber on one process sees what the other
commits. A hosts the PSP sandbox; the sandbox's callbacks go to B (as in
test_two_processes.py)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import DEV_SECRET
from tests.support.graphql import GraphQLClient
from tests.support.payouts import CANCEL_PAYOUT, WATCH_PAYOUT, create_payout, wait_for_status
from tests.support.ws import GraphQLWebSocket

pytestmark = pytest.mark.slow  # started first, so no worker ends on it alone


async def _faults(http: httpx.AsyncClient, mode: str) -> None:
    for provider in ("stp", "conekta"):
        answer = await http.post(f"/sandbox/providers/{provider}/faults", json={"mode": mode})
        assert answer.status_code == 200


async def test_a_payout_returned_through_one_process_reaches_a_subscriber_on_the_other(
    cluster,
):
    """Paid, then returned: STP's DEVOLUCION callback is applied by B, the subscriber
    on A hears it through Redis."""
    a, b = cluster
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=20) as on_a,
        httpx.AsyncClient(base_url=b.url, timeout=20) as on_b,
    ):
        api_a = GraphQLClient(on_a, DEV_SECRET)
        created = (await create_payout(api_a, amount="321.00"))["payout"]
        paid = await wait_for_status(GraphQLClient(on_b, DEV_SECRET), created["id"], "PAID")
        assert paid["status"] == "PAID"
        async with GraphQLWebSocket(a.url, DEV_SECRET) as ws:
            await ws.subscribe(WATCH_PAYOUT, {"id": created["id"]})
            snapshot = (await ws.next_data())["payoutUpdated"]
            assert (snapshot["status"], snapshot["version"]) == ("PAID", paid["version"])
            back = await on_a.post(
                f"/sandbox/spei/payouts/{paid['trackingKey']}/return", json={"reason": "03"}
            )
            assert back.status_code == 200, back.text
            update = (await ws.next_data(timeout=15))["payoutUpdated"]
            assert (update["status"], update["version"]) == ("RETURNED", paid["version"] + 1)
            assert update["returnReason"] == {"code": "03", "message": "account canceled"}
            assert (await ws.receive())["type"] == "complete"
        applied_by_b = [
            e for e in (await _events(on_b, created["id"])) if e["type"] == "webhook.payout"
        ]
        assert [e["data"]["state"] for e in applied_by_b] == ["paid", "returned"]


async def test_a_payout_canceled_through_one_process_reaches_a_subscriber_on_the_other(
    cluster,
):
    a, b = cluster
    async with httpx.AsyncClient(base_url=a.url, timeout=20) as on_a:
        await _faults(on_a, "down")  # no PSP takes it: it waits PENDING
        try:
            created = (await create_payout(GraphQLClient(on_a, DEV_SECRET)))["payout"]
            assert created["status"] == "PENDING"
            async with GraphQLWebSocket(b.url, DEV_SECRET) as ws:
                await ws.subscribe(WATCH_PAYOUT, {"id": created["id"]})
                assert (await ws.next_data())["payoutUpdated"]["status"] == "PENDING"
                canceled = (
                    await GraphQLClient(on_a, DEV_SECRET).data(CANCEL_PAYOUT, {"id": created["id"]})
                )["cancelPayout"]
                assert canceled["errors"] == []
                update = (await ws.next_data(timeout=15))["payoutUpdated"]
                assert (update["status"], update["version"]) == ("CANCELED", 2)
                assert (await ws.receive())["type"] == "complete"
        finally:
            await _faults(on_a, "ok")


async def _events(http: httpx.AsyncClient, payout_id: str) -> list[dict]:
    query = "query($id: ID!) { payout(id: $id) { events { type provider data } } }"
    found: list[dict] = (await GraphQLClient(http, DEV_SECRET).data(query, {"id": payout_id}))[
        "payout"
    ]["events"]
    return found
