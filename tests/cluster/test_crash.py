"""SIGKILL on an API process in the middle of card confirmations.

The PSP (the sandbox, hosted by a process of its own, with its state in the
database) outlives the kill; a worker whose settings differ from the API's (no
public URL, another timeout) recovers what the dead process left, and customers
retry on another process with new idempotency keys, as checkouts do. Afterwards:
no card is charged twice, no intent is stuck, and every intent that succeeded has
its audit trail and exactly one `payment_intent.succeeded` merchant webhook."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter

import httpx
import pytest

from providers.registry import ADAPTERS
from tests.api.test_merchant_webhooks import register, wait_for
from tests.conftest import DEV_SECRET
from tests.support.graphql import GraphQLClient, confirm, create_intent
from tests.support.process import ApiProcess, start_all, worker_process
from tests.support.receiver import Receiver
from tests.support.server import free_port

pytestmark = pytest.mark.slow  # started first, so no worker ends on it alone

STALLED = 12  # confirmations whose PSP charges and then answers slowly: in flight at the kill
RUSHED = 36  # confirmations sent just before the kill, caught at any line
READ = "query($id: ID!) { paymentIntent(id: $id) { status events { type status } } }"


async def succeeded_charges(http: httpx.AsyncClient, sandbox: str, intent_id: str) -> int:
    """How many PaymentIntents the Stripe emulator charged for our intent."""
    found = await http.get(
        f"{sandbox}/sandbox/stripe/v1/payment_intents/search",
        params={"query": f"metadata['cobro_intent_id']:'{intent_id}'", "limit": 100},
        headers={"Authorization": "Bearer sandbox"},
    )
    assert found.status_code == 200, found.text
    return sum(1 for pi in found.json()["data"] if pi["status"] == "succeeded")


async def pay_as_customer(api: GraphQLClient, intent_id: str) -> str:
    """Retry the confirmation (a new key each time) until the intent is settled."""
    deadline = time.monotonic() + 60
    while True:
        read = await api.data(READ, {"id": intent_id})
        status = read["paymentIntent"]["status"]
        if status != "REQUIRES_PAYMENT_METHOD":
            return str(status)
        payload = await confirm(
            api, intent_id, "CARD", card={"token": "tok_visa"}, idempotencyKey=str(uuid.uuid4())
        )
        if payload["paymentIntent"] is not None:
            return str(payload["paymentIntent"]["status"])
        # Busy (the dead process's lease), or the PSP's answer not known yet: later.
        codes = {e["code"] for e in payload["errors"]}
        assert codes <= {"INVALID_STATE", "PROVIDER_UNAVAILABLE", "IDEMPOTENCY_IN_PROGRESS"}
        assert time.monotonic() < deadline, payload
        await asyncio.sleep(0.5)


async def test_sigkill_mid_confirmation_charges_no_card_twice(database_url, redis_server, tmp_path):
    hooks, inbox = Receiver().start()
    host_port = free_port()
    sandbox = f"http://127.0.0.1:{host_port}"
    shared = {
        "COBRO_ENV": "test",
        "COBRO_DATABASE_URL": database_url,
        "COBRO_REDIS_URL": redis_server.url,
        "COBRO_EMBEDDED_WORKER": "false",
        "COBRO_CONFIRM_LEASE_SECONDS": "4",
        "COBRO_UNANSWERED_SECONDS": "2",
        "COBRO_SANDBOX_WEBHOOK_URL": sandbox,
        **{
            f"COBRO_PROVIDERS__{name.upper()}__BASE_URL": f"{sandbox}/sandbox/{name}"
            for name in ADAPTERS
        },
    }
    # The PSPs' host, which customers retry on too; and the API process that dies.
    host = ApiProcess(
        {**shared, "COBRO_PROVIDER_TIMEOUT_SECONDS": "3"}, tmp_path / "host.log", host_port
    )
    victim = ApiProcess({**shared, "COBRO_PROVIDER_TIMEOUT_SECONDS": "15"}, tmp_path / "victim.log")
    # The worker's own settings: no public URL at all, a shorter PSP timeout.
    worker_env = {
        **shared,
        "COBRO_PROVIDER_TIMEOUT_SECONDS": "2",
        "COBRO_DELIVERY_POLL_SECONDS": "0.1",
    }
    worker = worker_process(worker_env, tmp_path / "worker.log")
    worker.env.pop("COBRO_PUBLIC_URL", None)
    start_all(host, victim, worker)
    try:
        async with (
            httpx.AsyncClient(base_url=victim.url, timeout=30) as on_victim,
            httpx.AsyncClient(base_url=sandbox, timeout=30) as on_host,
        ):
            merchant = GraphQLClient(on_victim, DEV_SECRET)
            await register(merchant, f"{hooks.url}/hooks", ["payment_intent.succeeded"])
            intents = [
                (await create_intent(merchant, "210.00"))["id"] for _ in range(STALLED + RUSHED)
            ]

            async def checkout(intent_id: str) -> None:
                with contextlib.suppress(httpx.HTTPError):
                    await on_victim.post(
                        "/graphql",
                        json={
                            "query": "mutation($i: ConfirmPaymentIntentInput!) { "
                            "confirmPaymentIntent(input: $i) { errors { code } } }",
                            "variables": {
                                "i": {
                                    "id": intent_id,
                                    "method": "CARD",
                                    "card": {"token": "tok_visa"},
                                }
                            },
                        },
                        headers={"Authorization": f"Bearer {DEV_SECRET}"},
                    )

            faults = "/sandbox/providers/stripe/faults"
            await on_host.post(faults, json={"mode": "slow"})
            stalled = [asyncio.create_task(checkout(i)) for i in intents[:STALLED]]
            await asyncio.sleep(1.0)
            await on_host.post(faults, json={"mode": "ok"})
            rushed = [asyncio.create_task(checkout(i)) for i in intents[STALLED:]]
            await asyncio.sleep(0.25)
            victim.process.kill()
            await asyncio.gather(*stalled, *rushed)

            customer = GraphQLClient(on_host, DEV_SECRET)
            outcomes = await asyncio.gather(*(pay_as_customer(customer, i) for i in intents))
            assert set(outcomes) == {"SUCCEEDED"}, Counter(outcomes)

            charged = [await succeeded_charges(on_host, sandbox, i) for i in intents]
            assert charged == [1] * len(intents), Counter(charged)
            for intent_id in intents:
                read = await customer.data(READ, {"id": intent_id})
                trail = {(e["type"], e["status"]) for e in read["paymentIntent"]["events"]}
                assert ("intent.created", "REQUIRES_PAYMENT_METHOD") in trail, trail
                assert any(status == "SUCCEEDED" for _, status in trail), trail

            await wait_for(lambda: len(inbox.events("/hooks")) >= len(intents), timeout=30)
            await asyncio.sleep(1.5)  # a second delivery of anything would be here by now
            paid = Counter(e["data"]["object"]["id"] for e in inbox.events("/hooks"))
            assert paid == Counter({intent_id: 1 for intent_id in intents})
    finally:
        hooks.stop()
        worker.stop()
        victim.stop()
        host.stop()
