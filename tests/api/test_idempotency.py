"""Contract section 3: same key + same input = first result; other input = conflict."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tests.conftest import DEV_SECRET, start_server
from tests.support.graphql import CREATE, GET, GraphQLClient, confirm, create_intent


async def test_create_with_the_same_key_returns_the_first_intent(api):
    key = str(uuid.uuid4())
    first = await create_intent(api, "500.00", idempotencyKey=key)
    again = await create_intent(api, "500.00", idempotencyKey=key)
    assert again["id"] == first["id"]
    assert again["clientSecret"] == first["clientSecret"]


async def test_create_with_the_same_key_and_other_input_conflicts(api):
    key = str(uuid.uuid4())
    await create_intent(api, "500.00", idempotencyKey=key)
    data = await api.data(CREATE, {"input": {"amount": "600.00", "idempotencyKey": key}})
    payload = data["createPaymentIntent"]
    assert payload["paymentIntent"] is None
    assert payload["errors"][0]["code"] == "IDEMPOTENCY_CONFLICT"


async def test_confirm_with_the_same_key_does_not_pay_twice(api):
    intent = await create_intent(api)
    key = str(uuid.uuid4())
    first = await confirm(api, intent["id"], card={"token": "tok_visa"}, idempotencyKey=key)
    again = await confirm(api, intent["id"], card={"token": "tok_visa"}, idempotencyKey=key)
    assert first["paymentIntent"]["status"] == again["paymentIntent"]["status"] == "SUCCEEDED"
    assert again["paymentIntent"]["version"] == first["paymentIntent"]["version"]
    events = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]["events"]
    assert [e["type"] for e in events].count("provider.request") == 1


async def test_a_declined_confirmation_replays_its_decline(api):
    intent = await create_intent(api)
    key = str(uuid.uuid4())
    first = await confirm(
        api, intent["id"], card={"token": "tok_chargeDeclined"}, idempotencyKey=key
    )
    again = await confirm(
        api, intent["id"], card={"token": "tok_chargeDeclined"}, idempotencyKey=key
    )
    assert (
        [e["code"] for e in again["errors"]]
        == [e["code"] for e in first["errors"]]
        == ["CARD_DECLINED"]
    )


async def test_confirm_with_the_same_key_and_another_card_conflicts(api):
    intent = await create_intent(api)
    key = str(uuid.uuid4())
    await confirm(api, intent["id"], card={"token": "tok_visa"}, idempotencyKey=key)
    other = await confirm(api, intent["id"], card={"token": "tok_mastercard"}, idempotencyKey=key)
    assert other["errors"][0]["code"] == "IDEMPOTENCY_CONFLICT"


@pytest.mark.slow
async def test_a_retry_while_the_first_request_runs_is_told_to_retry(database_url):
    """The first confirmation waits on a slow PSP; an identical retry meanwhile gets
    IDEMPOTENCY_IN_PROGRESS (retry later), other input under the key still gets
    IDEMPOTENCY_CONFLICT (never retry), and once the first is done the retry gets
    its result: one voucher, not two."""
    thread = start_server(database_url, provider_timeout_seconds=1.5)
    try:
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as http:
            api = GraphQLClient(http, DEV_SECRET)
            slow = await http.post("/sandbox/providers/stripe/faults", json={"mode": "slow"})
            assert slow.status_code == 200
            intent = await create_intent(api)
            key = str(uuid.uuid4())
            oxxo = {"customerName": "Ana", "expiresInDays": 3}
            first = asyncio.create_task(
                confirm(api, intent["id"], "OXXO", oxxo=oxxo, idempotencyKey=key)
            )
            await asyncio.sleep(0.5)  # the first is waiting on stripe now
            assert not first.done()
            retry = await confirm(api, intent["id"], "OXXO", oxxo=oxxo, idempotencyKey=key)
            assert retry["paymentIntent"] is None
            assert [(e["code"], e["field"]) for e in retry["errors"]] == [
                ("IDEMPOTENCY_IN_PROGRESS", ["input", "idempotencyKey"])
            ]
            other = await confirm(
                api, intent["id"], "OXXO", oxxo={**oxxo, "customerName": "Eva"}, idempotencyKey=key
            )
            assert [e["code"] for e in other["errors"]] == ["IDEMPOTENCY_CONFLICT"]
            done = await first
            assert done["errors"] == []
            voucher = done["paymentIntent"]["nextAction"]["reference"]
            again = await confirm(api, intent["id"], "OXXO", oxxo=oxxo, idempotencyKey=key)
            assert again["paymentIntent"]["nextAction"]["reference"] == voucher
            assert again["paymentIntent"]["version"] == done["paymentIntent"]["version"]
            requests = [
                e
                for e in (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]["events"]
                if e["type"] == "provider.request"
            ]
            assert len(requests) == 2  # stripe (timed out), then conekta: nothing for the retries
    finally:
        thread.stop()
