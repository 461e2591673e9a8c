"""Two API processes, one database, one Redis: subscribe on one, settle through the
other, and keep going when Redis restarts."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import DEV_SECRET
from tests.support.graphql import GraphQLClient, confirm, create_intent
from tests.support.process import ApiProcess
from tests.support.ws import INTENT_UPDATED, GraphQLWebSocket

pytestmark = pytest.mark.slow  # started first, so no worker ends on it alone


async def oxxo_voucher(http: httpx.AsyncClient) -> tuple[str, str]:
    api = GraphQLClient(http, DEV_SECRET)
    intent = await create_intent(api, "300.00")
    payload = await confirm(api, intent["id"], "OXXO", oxxo={"customerName": "Ana"})
    return intent["id"], payload["paymentIntent"]["nextAction"]["reference"]


def settled_by(process: ApiProcess) -> float:
    """How many intents this process has moved to SUCCEEDED (from its /metrics)."""
    wanted = 'cobro_intent_changes_total{status="SUCCEEDED"}'
    for line in httpx.get(f"{process.url}/metrics").text.splitlines():
        if line.startswith(wanted):
            return float(line.split()[-1])
    return 0.0


async def test_subscribe_on_one_settle_through_the_other(cluster):
    a, b = cluster
    async with httpx.AsyncClient(base_url=a.url, timeout=20) as http:
        intent_id, reference = await oxxo_voucher(http)
        before = settled_by(b)
        async with GraphQLWebSocket(a.url, DEV_SECRET) as ws:
            await ws.subscribe(INTENT_UPDATED, {"id": intent_id})
            assert (await ws.next_data())["paymentIntentUpdated"]["status"] == "REQUIRES_ACTION"
            paid = await http.post(f"/sandbox/oxxo/{reference}/pay")
            assert paid.json()["webhook_status"] == 200
            update = (await ws.next_data())["paymentIntentUpdated"]
            assert (update["status"], update["version"]) == ("SUCCEEDED", 3)
            assert (await ws.receive())["type"] == "complete"
        assert settled_by(b) == before + 1  # B applied the webhook, A pushed it


async def test_redis_restarting_mid_stream_loses_nothing(cluster, redis_server):
    a, _ = cluster
    async with httpx.AsyncClient(base_url=a.url, timeout=20) as http:
        intent_id, reference = await oxxo_voucher(http)
        async with GraphQLWebSocket(a.url, DEV_SECRET) as ws:
            await ws.subscribe(INTENT_UPDATED, {"id": intent_id})
            assert (await ws.next_data())["paymentIntentUpdated"]["version"] == 2
            # Redis goes away; the voucher is paid while it is gone; Redis comes back.
            await asyncio.to_thread(redis_server.stop)
            paid = await http.post(f"/sandbox/oxxo/{reference}/pay")
            assert paid.json()["webhook_status"] == 200  # stored and applied without Redis
            await asyncio.sleep(0.5)
            await asyncio.to_thread(redis_server.start)
            update = (await ws.next_data(timeout=20))["paymentIntentUpdated"]
            assert (update["status"], update["version"]) == ("SUCCEEDED", 3)
            assert (await ws.receive())["type"] == "complete"


async def test_a_circuit_opened_by_one_process_is_open_for_the_other(cluster):
    a, b = cluster
    providers = "query { providers { name circuit } }"
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=20) as on_a,
        httpx.AsyncClient(base_url=b.url, timeout=20) as on_b,
    ):
        await on_a.post("/sandbox/providers/bitso/faults", json={"mode": "down"})
        try:
            api = GraphQLClient(on_a, DEV_SECRET)
            for _ in range(5):
                intent = await create_intent(api, "500.00")
                refused = await confirm(api, intent["id"], "CRYPTO", crypto={})
                assert refused["errors"][0]["code"] == "PROVIDER_UNAVAILABLE"
            # B learns of it through Redis within about a second.
            for _ in range(30):
                seen_by_b = await GraphQLClient(on_b, DEV_SECRET).data(providers)
                circuits = {p["name"]: p["circuit"] for p in seen_by_b["providers"]}
                if circuits["bitso"] == "OPEN":
                    break
                await asyncio.sleep(0.1)
            assert circuits["bitso"] == "OPEN"
        finally:
            await on_a.post("/sandbox/providers/bitso/faults", json={"mode": "ok"})


async def test_a_voucher_issued_through_one_process_is_paid_through_the_others_sandbox(cluster):
    """The PSPs' state is in the database: B's sandbox knows the voucher A's issued."""
    a, b = cluster
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=20) as on_a,
        httpx.AsyncClient(base_url=b.url, timeout=20) as on_b,
    ):
        intent_id, reference = await oxxo_voucher(on_a)  # A's adapters reach A's sandbox
        async with GraphQLWebSocket(a.url, DEV_SECRET) as ws:
            await ws.subscribe(INTENT_UPDATED, {"id": intent_id})
            assert (await ws.next_data())["paymentIntentUpdated"]["status"] == "REQUIRES_ACTION"
            paid = await on_b.post(f"/sandbox/oxxo/{reference}/pay")
            assert (paid.status_code, paid.json()["webhook_status"]) == (200, 200)
            update = (await ws.next_data())["paymentIntentUpdated"]
            assert (update["status"], update["version"]) == ("SUCCEEDED", 3)
        again = await on_a.post(f"/sandbox/oxxo/{reference}/pay")
        assert again.status_code == 404  # paid once, whichever process is asked


async def test_a_fault_set_through_one_process_holds_for_the_others_sandbox(cluster):
    a, b = cluster
    missing = "/sandbox/stripe/v1/payment_intents/pi_missing"
    key = {"Authorization": "Bearer sandbox"}
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=20) as on_a,
        httpx.AsyncClient(base_url=b.url, timeout=20) as on_b,
    ):
        await on_b.post("/sandbox/providers/stripe/faults", json={"mode": "down"})
        try:
            assert (await on_a.get(missing, headers=key)).status_code == 503
        finally:
            await on_a.post("/sandbox/providers/stripe/faults", json={"mode": "ok"})
        assert (await on_b.get(missing, headers=key)).status_code == 404
