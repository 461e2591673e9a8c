"""refundPaymentIntent for cards: full, partial, never more than paid."""

from __future__ import annotations

import uuid

import pytest

from tests.support.graphql import GET, confirm, create_intent

REFUND = """
mutation Refund($input: RefundPaymentIntentInput!) {
  refundPaymentIntent(input: $input) {
    paymentIntent { id status version amountRefunded { amount } amountReceived { amount } }
    errors { code message field }
  }
}
"""


async def paid_card_intent(api, amount: str = "500.00") -> dict:
    intent = await create_intent(api, amount)
    paid = await confirm(api, intent["id"], card={"token": "tok_visa"})
    assert paid["paymentIntent"]["status"] == "SUCCEEDED"
    return paid["paymentIntent"]


async def refund(api, **input_) -> dict:
    return (await api.data(REFUND, {"input": input_}))["refundPaymentIntent"]


async def test_full_refund_by_default(api):
    intent = await paid_card_intent(api)
    done = await refund(api, id=intent["id"])
    assert done["errors"] == []
    assert done["paymentIntent"]["amountRefunded"]["amount"] == "500.00"
    assert done["paymentIntent"]["status"] == "SUCCEEDED"  # Stripe keeps the status too
    assert done["paymentIntent"]["version"] == intent["version"] + 1
    events = [
        e["type"] for e in (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]["events"]
    ]
    assert events[-2:] == ["refund.requested", "refund.succeeded"]


async def test_partial_refunds_add_up_and_stop_at_the_amount_paid(api):
    intent = await paid_card_intent(api, "300.00")
    first = await refund(api, id=intent["id"], amount="100.00")
    assert first["paymentIntent"]["amountRefunded"]["amount"] == "100.00"
    second = await refund(api, id=intent["id"], amount="150.50")
    assert second["paymentIntent"]["amountRefunded"]["amount"] == "250.50"
    too_much = await refund(api, id=intent["id"], amount="49.51")
    assert too_much["paymentIntent"] is None
    assert too_much["errors"][0]["code"] == "REFUND_EXCEEDS_AMOUNT"
    assert "49.50" in too_much["errors"][0]["message"]
    rest = await refund(api, id=intent["id"])
    assert rest["paymentIntent"]["amountRefunded"]["amount"] == "300.00"
    nothing_left = await refund(api, id=intent["id"])
    assert nothing_left["errors"][0]["code"] == "REFUND_EXCEEDS_AMOUNT"


@pytest.mark.parametrize(
    ("extra", "code", "field"),
    [
        ({"amount": "-1"}, "INVALID_AMOUNT", ["input", "amount"]),
        ({"amount": "1.001"}, "INVALID_AMOUNT", ["input", "amount"]),
        ({"amount": "500.01"}, "REFUND_EXCEEDS_AMOUNT", ["input", "amount"]),
        ({"clabe": "002010077777777771"}, "INVALID_INPUT", ["input", "clabe"]),
        ({"reason": "x" * 501}, "INVALID_INPUT", ["input", "reason"]),
    ],
)
async def test_bad_refunds_change_nothing(api, extra, code, field):
    intent = await paid_card_intent(api)
    bad = await refund(api, id=intent["id"], **extra)
    assert bad["paymentIntent"] is None
    assert (bad["errors"][0]["code"], bad["errors"][0]["field"]) == (code, field)
    after = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]
    assert after["amountRefunded"]["amount"] == "0.00"
    assert after["version"] == intent["version"]


async def test_an_unpaid_intent_cannot_be_refunded(api):
    intent = await create_intent(api)
    bad = await refund(api, id=intent["id"])
    assert bad["errors"][0]["code"] == "INVALID_STATE"


async def test_unknown_intent(api):
    assert (await refund(api, id="pi_missing"))["errors"][0]["code"] == "NOT_FOUND"


async def test_refund_idempotency(api):
    intent = await paid_card_intent(api)
    key = str(uuid.uuid4())
    first = await refund(api, id=intent["id"], amount="100.00", idempotencyKey=key)
    again = await refund(api, id=intent["id"], amount="100.00", idempotencyKey=key)
    assert again["paymentIntent"]["amountRefunded"] == first["paymentIntent"]["amountRefunded"]
    assert again["paymentIntent"]["amountRefunded"]["amount"] == "100.00"
    conflict = await refund(api, id=intent["id"], amount="200.00", idempotencyKey=key)
    assert conflict["errors"][0]["code"] == "IDEMPOTENCY_CONFLICT"
