"""Two `cobro worker` processes on one database deliver each merchant event once."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from tests.api.test_merchant_webhooks import register, wait_for
from tests.conftest import DEV_SECRET
from tests.support.graphql import GraphQLClient, confirm, create_intent
from tests.support.process import ApiProcess, start_all, worker_process
from tests.support.receiver import Receiver

pytestmark = pytest.mark.slow  # started first, so no worker ends on it alone

PAYMENTS = 15


async def test_two_workers_deliver_every_event_exactly_once(tmp_path, database_url):
    env = {
        "COBRO_ENV": "test",
        "COBRO_DATABASE_URL": database_url,
        "COBRO_WEBHOOK_RETRY_BASE_SECONDS": "0.1",
        "COBRO_DELIVERY_POLL_SECONDS": "0.05",
    }
    api_process = ApiProcess({**env, "COBRO_EMBEDDED_WORKER": "false"}, tmp_path / "api.log")
    workers = [worker_process(env, tmp_path / f"worker{i}.log") for i in range(2)]
    start_all(api_process, *workers)
    thread, inbox = Receiver().start()
    inbox.fail_first["/hook"] = 3  # some retries, so leases and backoff are in play
    try:
        async with httpx.AsyncClient(base_url=api_process.url, timeout=30) as http:
            api = GraphQLClient(http, DEV_SECRET)
            await register(api, f"{thread.url}/hook")
            for _ in range(PAYMENTS):
                intent = await create_intent(api)
                await confirm(api, intent["id"], card={"token": "tok_visa"})
        await wait_for(lambda: len(inbox.events("/hook")) >= 2 * PAYMENTS, timeout=30)
        await asyncio.sleep(1.0)  # anything sent twice would arrive by now
        counts = Counter(e["id"] for e in inbox.events("/hook"))
        assert len(counts) == 2 * PAYMENTS
        assert set(counts.values()) == {1}
    finally:
        thread.stop()
        exits = [worker.stop() for worker in workers]
        api_process.stop()
    assert exits == [0, 0]  # SIGTERM ends a worker cleanly
