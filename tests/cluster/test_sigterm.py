"""SIGTERM on an API process, as an orchestrator sends it before replacing one:
requests in flight finish, WebSockets close with 1012 (service restart) so clients
reconnect, and a client that reconnects elsewhere with `afterVersion` misses
nothing that happened meanwhile."""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest
import websockets

from providers.registry import ADAPTERS
from tests.conftest import DEV_SECRET
from tests.support.graphql import GraphQLClient, confirm, create_intent
from tests.support.process import ApiProcess, serve_process, start_all
from tests.support.server import free_port
from tests.support.ws import INTENT_UPDATED, GraphQLWebSocket

pytestmark = pytest.mark.slow  # started first, so no worker ends on it alone

RESUME = """subscription($id: ID!, $after: Int) {
  paymentIntentUpdated(id: $id, afterVersion: $after) { id status version } }"""


async def test_sigterm_finishes_requests_and_clients_resume_elsewhere(
    database_url, redis_server, tmp_path
):
    b_port = free_port()
    sandbox = f"http://127.0.0.1:{b_port}"  # B hosts the PSPs, so they outlive A
    common = {
        "COBRO_ENV": "test",
        "COBRO_DATABASE_URL": database_url,
        "COBRO_REDIS_URL": redis_server.url,
        "COBRO_PROVIDER_TIMEOUT_SECONDS": "1.5",
        **{
            f"COBRO_PROVIDERS__{name.upper()}__BASE_URL": f"{sandbox}/sandbox/{name}"
            for name in ADAPTERS
        },
    }
    b = ApiProcess({**common, "COBRO_SANDBOX_WEBHOOK_URL": sandbox}, tmp_path / "b.log", b_port)
    a = serve_process(common, tmp_path / "a.log")
    start_all(b, a)
    try:
        async with (
            httpx.AsyncClient(base_url=a.url, timeout=20) as on_a,
            httpx.AsyncClient(base_url=b.url, timeout=20) as on_b,
        ):
            api_a = GraphQLClient(on_a, DEV_SECRET)
            voucher = await create_intent(api_a, "300.00")
            issued = await confirm(api_a, voucher["id"], "OXXO", oxxo={"customerName": "Ana"})
            reference = issued["paymentIntent"]["nextAction"]["reference"]
            card = await create_intent(api_a, "90.00")

            async with GraphQLWebSocket(a.url, DEV_SECRET) as ws:
                await ws.subscribe(INTENT_UPDATED, {"id": voucher["id"]})
                seen = (await ws.next_data())["paymentIntentUpdated"]["version"]

                # A request in flight when SIGTERM arrives: a card at a slow PSP.
                await on_b.post("/sandbox/providers/stripe/faults", json={"mode": "slow"})
                in_flight = asyncio.create_task(
                    confirm(api_a, card["id"], "CARD", card={"token": "tok_visa"})
                )
                await asyncio.sleep(0.5)
                a.process.terminate()
                # Answered in full, a second after SIGTERM: the PSP's silence reported.
                answered = await in_flight
                assert [e["code"] for e in answered["errors"]] == ["PROVIDER_UNAVAILABLE"]
                try:
                    await ws.receive(timeout=10)
                    raise AssertionError("the WebSocket should have been closed")
                except websockets.ConnectionClosed as closed:
                    assert closed.rcvd is not None and closed.rcvd.code == 1012
            # uvicorn shuts down, then dies of the signal it caught, as a process should.
            assert await asyncio.to_thread(a.process.wait, 30) == -signal.SIGTERM
            assert "Traceback" not in (tmp_path / "a.log").read_text()

            await on_b.post("/sandbox/providers/stripe/faults", json={"mode": "ok"})
            paid = await on_b.post(f"/sandbox/oxxo/{reference}/pay")
            assert paid.json()["webhook_status"] == 200

            async with GraphQLWebSocket(b.url, DEV_SECRET) as ws:
                await ws.subscribe(RESUME, {"id": voucher["id"], "after": seen})
                update = (await ws.next_data())["paymentIntentUpdated"]
                assert (update["status"], update["version"]) == ("SUCCEEDED", seen + 1)
                assert (await ws.receive())["type"] == "complete"
    finally:
        a.stop()
        b.stop()
