"""Card payments end to end over HTTP: success, declines, 3-D Secure, bad input."""

from __future__ import annotations

import pytest

from tests.support.graphql import GET, confirm, create_intent

CANCEL = """
mutation Cancel($input: CancelPaymentIntentInput!) {
  cancelPaymentIntent(input: $input) {
    paymentIntent { id status version }
    errors { code message field }
  }
}
"""


async def test_tok_visa_succeeds_with_its_audit_trail(api):
    intent = await create_intent(api, "500.00")
    payload = await confirm(api, intent["id"], card={"token": "tok_visa"})
    assert payload["errors"] == []
    paid = payload["paymentIntent"]
    assert paid["status"] == "SUCCEEDED"
    assert (paid["method"], paid["provider"]) == ("CARD", "stripe")
    assert paid["amountReceived"] == {"amount": "500.00", "currency": "MXN"}
    assert paid["version"] == 2
    assert [e["type"] for e in paid["events"]] == [
        "intent.created",
        "provider.request",
        "provider.response",
        "intent.confirmed",
        "intent.succeeded",
    ]


async def test_declined_card_fails_the_intent(api):
    intent = await create_intent(api)
    payload = await confirm(api, intent["id"], card={"token": "tok_chargeDeclined"})
    failed = payload["paymentIntent"]
    assert failed["status"] == "FAILED"
    assert failed["lastError"]["code"] == "CARD_DECLINED"
    assert failed["lastError"]["provider"] == "stripe"
    assert [e["code"] for e in payload["errors"]] == ["CARD_DECLINED"]


async def test_three_d_secure_asks_for_a_redirect(api, server):
    intent = await create_intent(api)
    payload = await confirm(api, intent["id"], card={"token": "tok_threeDSecureRequired"})
    waiting = payload["paymentIntent"]
    assert waiting["status"] == "REQUIRES_ACTION"
    assert waiting["nextAction"]["__typename"] == "RedirectToUrl"
    assert waiting["nextAction"]["url"] == f"{server.url}/sandbox/3ds/{intent['id']}"


@pytest.mark.parametrize(
    ("inputs", "code", "field"),
    [
        ({}, "INVALID_INPUT", ["input", "card"]),
        ({"card": {"token": ""}}, "INVALID_INPUT", ["input", "card", "token"]),
        ({"card": {"token": "tok_visa"}, "oxxo": {}}, "INVALID_INPUT", ["input", "oxxo"]),
        ({"card": {"token": "tok_unknown"}}, "CARD_TOKEN_INVALID", ["input", "card"]),
    ],
)
async def test_bad_card_input_changes_nothing(api, inputs, code, field):
    intent = await create_intent(api)
    payload = await confirm(api, intent["id"], **inputs)
    assert payload["paymentIntent"] is None
    assert payload["errors"][0]["code"] == code
    assert payload["errors"][0]["field"] == field
    after = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]
    assert (after["status"], after["version"]) == ("REQUIRES_PAYMENT_METHOD", 1)


async def test_a_paid_intent_cannot_be_confirmed_again(api):
    intent = await create_intent(api)
    await confirm(api, intent["id"], card={"token": "tok_visa"})
    again = await confirm(api, intent["id"], card={"token": "tok_visa"})
    assert again["errors"][0]["code"] == "INVALID_STATE"


async def test_method_not_allowed_by_the_intent(api):
    intent = await create_intent(api, allowedMethods=["OXXO"])
    payload = await confirm(api, intent["id"], card={"token": "tok_visa"})
    assert payload["errors"][0]["code"] == "METHOD_NOT_ALLOWED"


async def test_amount_outside_the_method_range(api):
    intent = await create_intent(api, "5.00")  # fits SPEI (from 1.00) but not CARD (from 10.00)
    payload = await confirm(api, intent["id"], card={"token": "tok_visa"})
    assert payload["errors"][0]["code"] == "AMOUNT_OUT_OF_RANGE"


async def test_unknown_intent_is_not_found(api):
    payload = await confirm(api, "pi_nothere", card={"token": "tok_visa"})
    assert payload["errors"][0]["code"] == "NOT_FOUND"


async def test_cancel(api):
    intent = await create_intent(api)
    canceled = (await api.data(CANCEL, {"input": {"id": intent["id"]}}))["cancelPaymentIntent"]
    assert canceled["errors"] == []
    assert (canceled["paymentIntent"]["status"], canceled["paymentIntent"]["version"]) == (
        "CANCELED",
        2,
    )
    again = (await api.data(CANCEL, {"input": {"id": intent["id"]}}))["cancelPaymentIntent"]
    assert again["errors"][0]["code"] == "INVALID_STATE"
    missing = (await api.data(CANCEL, {"input": {"id": "pi_nope"}}))["cancelPaymentIntent"]
    assert missing["errors"][0]["code"] == "NOT_FOUND"


async def test_cancel_voids_a_pending_three_d_secure_at_stripe(api, http):
    intent = await create_intent(api)
    await confirm(api, intent["id"], card={"token": "tok_threeDSecureRequired"})
    canceled = (await api.data(CANCEL, {"input": {"id": intent["id"]}}))["cancelPaymentIntent"]
    assert canceled["paymentIntent"]["status"] == "CANCELED"
    events = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]["events"]
    assert "provider.canceled" in [e["type"] for e in events]
    # The customer can no longer finish it at the PSP either.
    response = await http.post(f"/sandbox/3ds/{intent['id']}/complete")
    assert response.status_code in (200, 404)
