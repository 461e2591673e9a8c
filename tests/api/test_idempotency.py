"""Contract section 3: same key + same input = first result; other input = conflict."""

from __future__ import annotations

import uuid

from tests.support.graphql import CREATE, GET, confirm, create_intent


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
