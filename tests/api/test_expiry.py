"""Time: vouchers, references and quotes expire through the sandbox clock; money
that arrives late is recorded and the merchant is told."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.api.test_merchant_webhooks import register, wait_for
from tests.conftest import DEV_SECRET, start_server
from tests.support.graphql import GET, GraphQLClient, confirm, create_intent
from tests.support.receiver import Receiver
from tests.support.server import ServerThread
from tests.support.ws import INTENT_UPDATED, GraphQLWebSocket

DAY = 86_400


@pytest.fixture
def clocked(database_url) -> Iterator[ServerThread]:
    """A server whose clock the test may move (the sandbox clock is shared per database)."""
    thread = start_server(
        database_url,
        webhook_retry_base_seconds=0.1,
        delivery_poll_seconds=0.05,
        expiry_sweep_seconds=0.2,
    )
    yield thread
    thread.stop()


@pytest.fixture
async def clients(clocked) -> AsyncIterator[tuple[GraphQLClient, httpx.AsyncClient]]:
    async with httpx.AsyncClient(base_url=clocked.url, timeout=30) as http:
        yield GraphQLClient(http, DEV_SECRET), http


async def advance(http: httpx.AsyncClient, seconds: int) -> dict:
    response = await http.post("/sandbox/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text
    return response.json()


async def state(api: GraphQLClient, intent_id: str) -> dict:
    return (await api.data(GET, {"id": intent_id}))["paymentIntent"]


async def test_an_unpaid_oxxo_voucher_expires_and_subscribers_are_told(clocked, clients):
    api, http = clients
    intent = await create_intent(api, "300.00")
    await confirm(api, intent["id"], "OXXO", oxxo={"expiresInDays": 1})
    async with GraphQLWebSocket(clocked.url, DEV_SECRET) as ws:
        await ws.subscribe(INTENT_UPDATED, {"id": intent["id"]})
        assert (await ws.next_data())["paymentIntentUpdated"]["status"] == "REQUIRES_ACTION"
        moved = await advance(http, 2 * DAY)
        assert moved["expired"] >= 1
        pushed = (await ws.next_data())["paymentIntentUpdated"]
        assert (pushed["status"], pushed["version"], pushed["nextAction"]) == ("EXPIRED", 3, None)
        assert (await ws.receive())["type"] == "complete"
    expired = await state(api, intent["id"])
    types = [e["type"] for e in expired["events"]]
    assert types[-2:] == ["provider.canceled", "intent.expired"]


async def test_a_voucher_is_not_expired_before_its_time(clients):
    api, http = clients
    intent = await create_intent(api, "300.00")
    await confirm(api, intent["id"], "OXXO", oxxo={"expiresInDays": 3})
    await advance(http, 1 * DAY)
    assert (await state(api, intent["id"]))["status"] == "REQUIRES_ACTION"


async def test_spei_references_expire_after_72_hours(clients):
    api, http = clients
    intent = await create_intent(api)
    await confirm(api, intent["id"], "SPEI", spei={})
    await advance(http, 71 * 3_600)
    assert (await state(api, intent["id"]))["status"] == "REQUIRES_ACTION"
    await advance(http, 2 * 3_600)
    assert (await state(api, intent["id"]))["status"] == "EXPIRED"


async def test_crypto_money_after_the_quote_expired_is_recorded_and_told(clocked, clients):
    api, http = clients
    thread, inbox = Receiver().start()
    try:
        await register(api, f"{thread.url}/late", ["payment_intent.late_payment"])
        intent = await create_intent(api, "500.00")
        quote = (await confirm(api, intent["id"], "CRYPTO", crypto={}))["paymentIntent"][
            "nextAction"
        ]
        await advance(http, 20 * 60)  # the sandbox quote lives 15 minutes
        assert (await state(api, intent["id"]))["status"] == "EXPIRED"
        sent = await http.post(
            "/sandbox/crypto/deposits",
            json={"address": quote["address"], "amount": quote["cryptoAmount"]},
        )
        assert sent.status_code == 200
        late = await state(api, intent["id"])
        assert (late["status"], late["amountReceived"]["amount"]) == ("EXPIRED", "500.00")
        assert "payment.late" in [e["type"] for e in late["events"]]
        await wait_for(lambda: inbox.events("/late"))
        told = inbox.events("/late")[0]["data"]["object"]
        assert (told["id"], told["status"], told["amountReceived"]["amount"]) == (
            intent["id"],
            "EXPIRED",
            "500.00",
        )
    finally:
        thread.stop()


async def test_a_paid_intent_never_expires(clients):
    api, http = clients
    intent = await create_intent(api, "300.00")
    voucher = (await confirm(api, intent["id"], "OXXO", oxxo={"expiresInDays": 1}))["paymentIntent"]
    await http.post(f"/sandbox/oxxo/{voucher['nextAction']['reference']}/pay")
    await advance(http, 3 * DAY)
    assert (await state(api, intent["id"]))["status"] == "SUCCEEDED"


@pytest.mark.parametrize("body", [{}, {"seconds": -5}, {"seconds": "soon"}, {"seconds": 10**9}])
async def test_bad_clock_moves_are_refused(http, body):
    response = await http.post("/sandbox/clock/advance", json=body)
    assert response.status_code == 400
    assert "seconds" in response.json()["error"]


async def test_the_embedded_worker_expires_without_being_asked(clocked, clients):
    """Time moves without the sandbox's sweep (as when another process moved it); the
    sweep running in the background picks the intent up on its own."""
    api, _ = clients
    intent = await create_intent(api, "300.00")
    await confirm(api, intent["id"], "OXXO", oxxo={"expiresInDays": 1})
    runtime = clocked.server.config.app.state.runtime
    runtime.services.clock.advance(2 * DAY)
    for _ in range(100):
        if (await state(api, intent["id"]))["status"] == "EXPIRED":
            break
        await asyncio.sleep(0.1)
    assert (await state(api, intent["id"]))["status"] == "EXPIRED"
