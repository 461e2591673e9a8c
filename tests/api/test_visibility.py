"""Contract section 2, field by field: what each kind of key reads of an intent.

The merchant's secret key reads everything. A client secret is held by the
customer's checkout: it reads what a checkout shows, and `metadata`, `events`,
`clientSecret` and the PSP's references (`provider`, `lastError.provider`) are null
for it. A publishable key and another merchant's secret key read nothing (null).
Over HTTP (query and mutation payloads) and over WebSocket (subscriptions, where
executions are shared between subscribers of one viewer).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import DEV_PUBLISHABLE, DEV_SECRET
from tests.support.graphql import GraphQLClient, create_intent
from tests.support.ws import GraphQLWebSocket

INTENT_FIELDS = """
  id status version method provider description metadata clientSecret
  amount { amount currency } amountReceived { amount currency } amountRefunded { amount }
  nextAction {
    __typename
    ... on RedirectToUrl { url returnUrl }
    ... on OxxoVoucher { reference barcodeSvg hostedVoucherUrl voucherExpiresAt: expiresAt }
  }
  lastError { code message provider }
  createdAt updatedAt expiresAt
  events { id type status provider at data }
"""
READ = "query($id: ID!) { paymentIntent(id: $id) { " + INTENT_FIELDS + " } }"
CONFIRM = (
    "mutation($input: ConfirmPaymentIntentInput!) { confirmPaymentIntent(input: $input) { "
    "paymentIntent { " + INTENT_FIELDS + " } errors { code message } } }"
)
WATCH = "subscription($id: ID!) { paymentIntentUpdated(id: $id) { " + INTENT_FIELDS + " } }"

# What a checkout reads (contract section 2): id, status, version, amounts, method,
# description, nextAction, lastError (without the PSP), times.
CHECKOUT = {
    "id", "status", "version", "method", "description", "amount", "amountReceived",
    "amountRefunded", "nextAction", "lastError", "createdAt", "updatedAt", "expiresAt",
}  # fmt: skip
# Reserved for the merchant's secret key.
SECRET_ONLY = {"metadata", "events", "clientSecret", "provider"}


def as_checkout_sees(whole: dict[str, Any]) -> dict[str, Any]:
    """The secret key's view of an intent, as a client secret must see it."""
    assert set(whole) == CHECKOUT | SECRET_ONLY  # no field left unclassified
    seen = {name: (value if name in CHECKOUT else None) for name, value in whole.items()}
    if seen["lastError"] is not None:
        seen["lastError"] = {**seen["lastError"], "provider": None}
    return seen


def assert_secret_fields_present(whole: dict[str, Any]) -> None:
    """The secret key's view has every reserved field, so hiding them is visible."""
    assert whole["metadata"] == {"order": "A-17", "note": "gift"}
    assert whole["clientSecret"].startswith(f"{whole['id']}_secret_")
    assert whole["provider"] == "stripe"
    assert whole["events"][0]["type"] == "intent.created"


async def a_confirmed_intent(api: GraphQLClient, card_token: str) -> dict[str, Any]:
    intent = await create_intent(
        api, description="Tacos", metadata={"order": "A-17", "note": "gift"}
    )
    data = await api.data(
        CONFIRM, {"input": {"id": intent["id"], "method": "CARD", "card": {"token": card_token}}}
    )
    return {"id": intent["id"], "clientSecret": intent["clientSecret"], **data}


@pytest.mark.parametrize(
    "token", ["tok_threeDSecureRequired", "tok_chargeDeclined"], ids=["3ds", "declined"]
)
async def test_each_key_kind_reads_its_share_field_by_field(http, api, other_merchant, token):
    made = await a_confirmed_intent(api, token)
    whole = (await api.data(READ, {"id": made["id"]}))["paymentIntent"]
    assert_secret_fields_present(whole)
    if token == "tok_chargeDeclined":
        assert whole["lastError"]["provider"] == "stripe"
    else:
        assert whole["nextAction"]["__typename"] == "RedirectToUrl"

    checkout = GraphQLClient(http, made["clientSecret"])
    assert (await checkout.data(READ, {"id": made["id"]}))["paymentIntent"] == as_checkout_sees(
        whole
    )
    for key in (DEV_PUBLISHABLE, other_merchant.secret_key):
        assert (await api.as_key(key).data(READ, {"id": made["id"]}))["paymentIntent"] is None


async def test_a_client_secret_confirming_gets_the_checkout_view_in_the_payload(http, api):
    intent = await create_intent(api, metadata={"order": "A-17", "note": "gift"})
    checkout = GraphQLClient(http, intent["clientSecret"])
    data = await checkout.data(
        CONFIRM,
        {"input": {"id": intent["id"], "method": "OXXO", "oxxo": {"customerName": "Ana"}}},
    )
    payload = data["confirmPaymentIntent"]
    assert payload["errors"] == []
    whole = (await api.data(READ, {"id": intent["id"]}))["paymentIntent"]
    assert_secret_fields_present(whole)
    assert whole["nextAction"]["__typename"] == "OxxoVoucher"
    assert payload["paymentIntent"] == as_checkout_sees(whole)


async def test_a_declined_retry_under_the_secret_keys_key_is_still_the_checkout_view(http, api):
    """An idempotent replay is presented for whoever asks again, not for whoever
    asked first."""
    intent = await create_intent(api, metadata={"order": "A-17", "note": "gift"})
    confirm = {
        "id": intent["id"],
        "method": "CARD",
        "card": {"token": "tok_chargeDeclined"},
        "idempotencyKey": f"decline-{intent['id']}",
    }
    first = (await api.data(CONFIRM, {"input": confirm}))["confirmPaymentIntent"]
    assert first["paymentIntent"]["events"] and first["paymentIntent"]["provider"] == "stripe"
    checkout = GraphQLClient(http, intent["clientSecret"])
    again = (await checkout.data(CONFIRM, {"input": confirm}))["confirmPaymentIntent"]
    assert again["paymentIntent"] == as_checkout_sees(first["paymentIntent"])


async def test_subscribers_of_each_kind_get_their_own_share_of_one_change(
    http, api, server, other_merchant
):
    """The secret key's and the client secret's subscribers ask the same document at
    the same time; each change is executed per viewer, so the checkout never gets
    the secret key's fields, in the snapshot or in a change."""
    intent = await create_intent(api, metadata={"order": "A-17", "note": "gift"})
    owners = [GraphQLWebSocket(server.url, DEV_SECRET) for _ in range(2)]
    checkouts = [GraphQLWebSocket(server.url, intent["clientSecret"]) for _ in range(2)]
    outsiders = [
        GraphQLWebSocket(server.url, DEV_PUBLISHABLE),
        GraphQLWebSocket(server.url, other_merchant.secret_key),
    ]
    sockets = [*owners, *checkouts, *outsiders]
    for ws in sockets:
        await ws.__aenter__()
    try:
        for ws in [*owners, *checkouts]:
            await ws.subscribe(WATCH, {"id": intent["id"]})
        refused = [await ws.subscribe(WATCH, {"id": intent["id"]}) for ws in outsiders]
        assert [await ws.error_code(op) for ws, op in zip(outsiders, refused, strict=True)] == [
            "FORBIDDEN",
            "NOT_FOUND",
        ]
        snapshots = [(await ws.next_data())["paymentIntentUpdated"] for ws in [*owners, *checkouts]]
        await asyncio.sleep(0.05)
        confirm = {
            "id": intent["id"],
            "method": "CARD",
            "card": {"token": "tok_threeDSecureRequired"},
        }
        await api.data(CONFIRM, {"input": confirm})
        changes = [(await ws.next_data())["paymentIntentUpdated"] for ws in [*owners, *checkouts]]
    finally:
        for ws in sockets:
            await ws.__aexit__(None, None, None)
    for got in (snapshots, changes):
        owner_a, owner_b, checkout_a, checkout_b = got
        assert owner_a == owner_b
        assert owner_a["metadata"] == {"order": "A-17", "note": "gift"}
        assert owner_a["clientSecret"] == intent["clientSecret"]
        assert owner_a["events"]
        assert checkout_a == checkout_b == as_checkout_sees(owner_a)
    assert changes[0]["provider"] == "stripe"
    assert changes[2]["nextAction"] == changes[0]["nextAction"] is not None
