"""Bad card input (issue 13, item 5) gets the contract's codes and changes nothing."""

from __future__ import annotations

import pytest

from tests.support.graphql import GET, GraphQLClient, confirm, create_intent

STRIPE = {"provider": "stripe", "token": "tok_visa"}
CAPTURE = """
mutation C($input: CapturePaymentIntentInput!) {
  capturePaymentIntent(input: $input) { paymentIntent { id } errors { code field } }
}
"""


@pytest.mark.parametrize(
    ("card", "code", "field"),
    [
        ({}, "INVALID_INPUT", ["input", "card"]),
        ({"token": "tok_visa", "tokens": [STRIPE]}, "INVALID_INPUT", ["input", "card"]),
        ({"tokens": []}, "INVALID_INPUT", ["input", "card", "tokens"]),
        ({"tokens": [STRIPE, STRIPE]}, "INVALID_INPUT",
         ["input", "card", "tokens", "1", "provider"]),
        ({"tokens": [{"provider": "stripe", "token": " "}]}, "INVALID_INPUT",
         ["input", "card", "tokens", "0", "token"]),
        ({"token": "t" * 201}, "INVALID_INPUT", ["input", "card", "token"]),
        ({"tokens": [STRIPE, {"provider": "stp", "token": "tok_x"}]}, "INVALID_INPUT",
         ["input", "card", "tokens", "1", "provider"]),
        ({"tokens": [{"provider": "paypal", "token": "tok_x"}]}, "INVALID_INPUT",
         ["input", "card", "tokens", "0", "provider"]),
        ({"token": "tok_visa", "installments": 0}, "INSTALLMENTS_UNAVAILABLE",
         ["input", "card", "installments"]),
        ({"token": "tok_visa", "installments": 99}, "INSTALLMENTS_UNAVAILABLE",
         ["input", "card", "installments"]),
    ],
    ids=["no-token", "both", "empty-list", "twice", "blank", "too-long", "not-a-card-psp",
         "unknown-psp", "zero-months", "absurd-months"],
)  # fmt: skip
async def test_bad_card_input_changes_nothing(api: GraphQLClient, card, code, field):
    intent = await create_intent(api, "1500.00")
    refused = await confirm(api, intent["id"], card=card)
    assert refused["paymentIntent"] is None
    assert (refused["errors"][0]["code"], refused["errors"][0]["field"]) == (code, field)
    still = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]
    assert (still["status"], still["version"]) == ("REQUIRES_PAYMENT_METHOD", 1)
    assert [e["type"] for e in still["events"]] == ["intent.created"]


async def test_only_the_secret_key_captures(api: GraphQLClient):
    intent = await create_intent(api, captureMethod="MANUAL")
    await confirm(api, intent["id"], card={"token": "tok_visa"})
    checkout = api.as_key(intent["clientSecret"])
    body = await checkout.post(CAPTURE, {"input": {"id": intent["id"]}})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    still = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]
    assert still["status"] == "REQUIRES_CAPTURE"
