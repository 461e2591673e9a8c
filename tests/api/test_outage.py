"""PostgreSQL or Redis going away: requests are answered at once with
SERVICE_UNAVAILABLE (or served, where Redis is not needed), the outage is logged once
rather than once per request, and Cobro recovers by itself when the server is back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.api.test_webhooks import post_stripe, stripe_event
from tests.conftest import DEV_SECRET, start_server
from tests.support.graphql import GraphQLClient, confirm, create_intent
from tests.support.postgres import PostgresServer
from tests.support.server import ServerThread

READ = "query($id: ID!) { paymentIntent(id: $id) { id status } }"
CREATE_ONE = """mutation { createPaymentIntent(input: {amount: "25.00", currency: MXN}) {
  paymentIntent { id } errors { code message } } }"""
# Far longer than a refused connection takes; far shorter than asyncpg's own minute.
QUICKLY = 3.5


@pytest.fixture
def on_own_postgres(own_postgres: PostgresServer) -> Iterator[ServerThread]:
    url = own_postgres.url(own_postgres.new_database(migrated=False))
    thread = start_server(url, expiry_sweep_seconds=0.2, delivery_poll_seconds=0.1)
    yield thread
    thread.stop()


def codes(body: dict) -> set[str]:
    found = {e.get("extensions", {}).get("code") for e in body.get("errors") or []}
    for payload in (body.get("data") or {}).values():
        if isinstance(payload, dict):
            found |= {e["code"] for e in payload.get("errors") or []}
    return found


def tracebacks(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if r.exc_info]


@pytest.mark.slow
async def test_postgres_down_is_service_unavailable_logged_once_and_recovered(
    own_postgres, on_own_postgres, caplog
):
    caplog.set_level(logging.INFO)
    async with httpx.AsyncClient(base_url=on_own_postgres.url, timeout=30) as http:
        api = GraphQLClient(http, DEV_SECRET)
        intent = await create_intent(api, "120.00")
        caplog.clear()

        own_postgres.stop()
        for _ in range(15):
            for query, variables in ((READ, {"id": intent["id"]}), (CREATE_ONE, None)):
                started = time.monotonic()
                body = await api.post(query, variables)
                assert time.monotonic() - started < QUICKLY
                assert codes(body) == {"SERVICE_UNAVAILABLE"}, body
        # A PSP's webhook is not acknowledged (so the PSP sends it again later).
        event = stripe_event("evt_outage", "payment_intent.succeeded", {"id": "pi_x"})
        assert (await post_stripe(http, event)).status_code == 503
        await asyncio.sleep(1.0)  # the embedded worker's jobs and the relay fail too

        down = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(down) == 1, [r.getMessage() for r in caplog.records]
        assert tracebacks(caplog.records) == []

        own_postgres.start()
        deadline = time.monotonic() + 15
        while codes(body := await api.post(READ, {"id": intent["id"]})):
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.2)
        assert body["data"]["paymentIntent"]["status"] == "REQUIRES_PAYMENT_METHOD"
        paid = await confirm(api, intent["id"], "CARD", card={"token": "tok_visa"})
        assert paid["paymentIntent"]["status"] == "SUCCEEDED"
        assert any("reachable again" in r.getMessage() for r in caplog.records)
        assert tracebacks(caplog.records) == []


@pytest.mark.slow
async def test_redis_down_payments_go_on_and_push_catches_up(database_url, tmp_path, caplog):
    """Redis carries pushes between processes; while it is away payments are still
    taken (nothing waits on it), its absence is not a traceback per change, and the
    changes reach subscribers' channels once it is back."""
    from tests.support.redis_server import RedisServer

    redis = RedisServer(tmp_path).start()
    thread = start_server(database_url, redis_url=redis.url)
    caplog.set_level(logging.INFO)
    try:
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as http:
            api = GraphQLClient(http, DEV_SECRET)
            redis.stop()
            caplog.clear()
            for _ in range(5):
                intent = await create_intent(api, "80.00")
                paid = await confirm(api, intent["id"], "CARD", card={"token": "tok_visa"})
                assert paid["paymentIntent"]["status"] == "SUCCEEDED"
            await asyncio.sleep(1.5)
            assert tracebacks(caplog.records) == []
            relay_lines = [r for r in caplog.records if r.name == "cobro.relay"]
            assert len(relay_lines) <= 1, [r.getMessage() for r in relay_lines]
            redis.start()
            deadline = time.monotonic() + 20
            while not any("reachable again" in r.getMessage() for r in caplog.records):
                assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
                await asyncio.sleep(0.2)
    finally:
        thread.stop()
        redis.stop()
