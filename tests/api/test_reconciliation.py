"""A lost webhook: reconciliation asks the PSP and applies its answer, once."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import DEV_SECRET, start_server
from tests.support.graphql import GET, GraphQLClient, confirm, create_intent
from tests.support.server import refused_port


async def test_a_payment_whose_webhook_was_lost_is_found_by_reconciliation(database_url):
    with refused_port() as port:  # every webhook is lost
        await _a_lost_webhook_is_found(database_url, f"http://127.0.0.1:{port}")


async def _a_lost_webhook_is_found(database_url: str, dead_end: str) -> None:
    thread = start_server(
        database_url,
        sandbox_webhook_url=dead_end,
        reconcile_after_seconds=0,
        reconcile_every_seconds=0.5,
    )
    try:
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as http:
            api = GraphQLClient(http, DEV_SECRET)
            intent = await create_intent(api, "300.00")
            voucher = (await confirm(api, intent["id"], "OXXO", oxxo={}))["paymentIntent"]
            paid = await http.post(f"/sandbox/oxxo/{voucher['nextAction']['reference']}/pay")
            assert paid.json()["webhook_status"] is None  # the PSP's webhook went nowhere
            for _ in range(100):
                found = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]
                if found["status"] == "SUCCEEDED":
                    break
                await asyncio.sleep(0.1)
            assert (found["status"], found["amountReceived"]["amount"]) == ("SUCCEEDED", "300.00")
            received = [e for e in found["events"] if e["type"] == "webhook.received"]
            assert len(received) == 1 and received[0]["data"]["type"] == "reconciliation"
            await asyncio.sleep(1.0)  # more rounds of reconciliation change nothing
            again = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]
            assert (again["version"], len(again["events"])) == (
                found["version"],
                len(found["events"]),
            )
    finally:
        thread.stop()
