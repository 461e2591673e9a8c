"""PostgreSQL crashes and comes back while card payments are under way: Cobro
recovers by itself, and nothing is half-written (every intent's versions, outbox
rows and audit trail agree; every charge is recorded once)."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from tests.conftest import DEV_SECRET, start_server
from tests.support.graphql import GraphQLClient, confirm, create_intent

pytestmark = pytest.mark.slow  # started first, so no worker ends on it alone

CLIENTS = 6
BEFORE_SECONDS = 1.5
# The load goes on this long after PostgreSQL is back, however long it took to return.
AFTER_SECONDS = 2.0
FINAL = {"SUCCEEDED", "FAILED", "CANCELED", "EXPIRED"}


async def pay_until_settled(
    api: GraphQLClient, stop: asyncio.Event, made: dict[str, float]
) -> None:
    """One checkout after another until `stop` is set, each intent's id in `made` with
    the time its checkout began: a failed request is retried (same idempotency key),
    as a checkout does when the API says "retry later"."""
    while not stop.is_set():
        began = time.monotonic()
        intent = await retried(create_intent, api, "150.00", idempotencyKey=str(uuid.uuid4()))
        made[intent["id"]] = began
        key = str(uuid.uuid4())
        deadline = time.monotonic() + 30
        while True:
            payload = await retried(
                confirm, api, intent["id"], "CARD", card={"token": "tok_visa"}, idempotencyKey=key
            )
            status = (payload.get("paymentIntent") or {}).get("status")
            if status in FINAL:
                break
            assert time.monotonic() < deadline, payload
            await asyncio.sleep(0.2)


async def retried(call, *args, **kwargs):
    """`call` again while the API answers SERVICE_UNAVAILABLE (the test helpers assert
    on errors), for up to 30 s."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return await call(*args, **kwargs)
        except AssertionError as error:
            if "SERVICE_UNAVAILABLE" not in str(error) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_payments_survive_a_postgres_crash(own_postgres):
    url = own_postgres.url(own_postgres.new_database(migrated=False))
    thread = start_server(url, confirm_lease_seconds=2.0, provider_timeout_seconds=1.0)
    made: dict[str, float] = {}
    stop = asyncio.Event()
    try:
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as http:
            api = GraphQLClient(http, DEV_SECRET)
            load = [asyncio.create_task(pay_until_settled(api, stop, made)) for _ in range(CLIENTS)]
            await asyncio.sleep(BEFORE_SECONDS)
            crashed = time.monotonic()
            await asyncio.to_thread(own_postgres.restart, 1.0, crash=True)
            back = time.monotonic()
            await asyncio.sleep(AFTER_SECONDS)
            stop.set()
            await asyncio.gather(*load)
            for intent_id in made:
                read = await api.data(
                    "query($id: ID!) { paymentIntent(id: $id) { status } }", {"id": intent_id}
                )
                assert read["paymentIntent"]["status"] == "SUCCEEDED", intent_id
    finally:
        thread.stop()
    # The load really ran on both sides of the crash (a count would measure the machine).
    assert any(at < crashed for at in made.values()), "no checkout began before the crash"
    assert any(at > back for at in made.values()), "no checkout began after PostgreSQL was back"

    database = url.rsplit("/", 1)[1]
    half_written = own_postgres.sql(
        """SELECT i.id FROM payment_intents i
           WHERE i.version <> (SELECT count(*) FROM outbox o WHERE o.intent_id = i.id)
              OR 1 <> (SELECT count(*) FROM audit_events a
                       WHERE a.intent_id = i.id AND a.type = 'intent.created')
              OR (i.status = 'SUCCEEDED' AND 1 <> (SELECT count(*) FROM provider_payments p
                  WHERE p.intent_id = i.id AND p.status = 'succeeded'))
              OR (i.status = 'SUCCEEDED' AND NOT EXISTS (SELECT 1 FROM audit_events a
                  WHERE a.intent_id = i.id AND a.status = 'SUCCEEDED'))""",
        database,
    )
    assert half_written.split() == []
    assert own_postgres.sql("SELECT count(*) FROM payment_intents", database).strip() == str(
        len(made)
    )
