"""createPaymentIntent, paymentIntent and paymentIntents over real HTTP."""

from __future__ import annotations

import pytest

from tests.conftest import DEV_PUBLISHABLE
from tests.support.graphql import CREATE, GET, GraphQLClient, create_intent

LIST = """
query List($first: Int, $after: String, $status: PaymentIntentStatus) {
  paymentIntents(first: $first, after: $after, status: $status) {
    edges { cursor node { id status amount { amount } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_create_returns_an_intent_waiting_for_a_method(api):
    intent = await create_intent(api, "500.00", description="Tacos", metadata={"order": "A-1"})
    assert intent["id"].startswith("pi_")
    assert intent["status"] == "REQUIRES_PAYMENT_METHOD"
    assert intent["version"] == 1
    assert intent["amount"] == {"amount": "500.00", "currency": "MXN"}
    assert intent["clientSecret"].startswith(f"{intent['id']}_secret_")
    fetched = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]
    assert [e["type"] for e in fetched["events"]] == ["intent.created"]


async def test_integer_amounts_are_accepted(api):
    intent = await create_intent(api, 250)
    assert intent["amount"]["amount"] == "250.00"


@pytest.mark.parametrize(
    ("amount", "code", "fragment"),
    [
        ("-5.00", "INVALID_AMOUNT", "negative"),
        ("10.001", "INVALID_AMOUNT", "more than 2 decimals"),
        ("ten", "INVALID_AMOUNT", "not a number"),
        ("0", "INVALID_AMOUNT", "greater than zero"),
        ("99999999999999", "INVALID_AMOUNT", "too large"),
        ("0.50", "AMOUNT_OUT_OF_RANGE", "fits no payment method"),
    ],
)
async def test_bad_amounts_are_user_errors_and_create_nothing(api, amount, code, fragment):
    before = await _count(api)
    data = await api.data(CREATE, {"input": {"amount": amount}})
    payload = data["createPaymentIntent"]
    assert payload["paymentIntent"] is None
    assert [e["code"] for e in payload["errors"]] == [code]
    assert fragment in payload["errors"][0]["message"]
    assert payload["errors"][0]["field"] == ["input", "amount"]
    assert await _count(api) == before


async def test_a_float_amount_is_refused_at_the_door(api):
    body = await api.post(CREATE, {"input": {"amount": 500.5}})
    assert body["data"] is None
    assert "Decimal takes a string" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


@pytest.mark.parametrize(
    ("extra", "code", "field"),
    [
        (
            {"currency": "USD", "allowedMethods": ["OXXO"]},
            "UNSUPPORTED_CURRENCY",
            ["input", "currency"],
        ),
        ({"metadata": ["not", "an", "object"]}, "INVALID_INPUT", ["input", "metadata"]),
        ({"metadata": {"nested": {"a": 1}}}, "INVALID_INPUT", ["input", "metadata"]),
        ({"metadata": {f"k{i}": i for i in range(51)}}, "INVALID_INPUT", ["input", "metadata"]),
        ({"description": "x" * 1001}, "INVALID_INPUT", ["input", "description"]),
        ({"idempotencyKey": ""}, "INVALID_INPUT", ["input", "idempotencyKey"]),
        ({"idempotencyKey": "k" * 256}, "INVALID_INPUT", ["input", "idempotencyKey"]),
    ],
)
async def test_bad_create_inputs_are_user_errors(api, extra, code, field):
    data = await api.data(CREATE, {"input": {"amount": "500.00", **extra}})
    payload = data["createPaymentIntent"]
    assert payload["paymentIntent"] is None
    assert payload["errors"][0]["code"] == code
    assert payload["errors"][0]["field"] == field


async def test_usd_card_payments_are_fine(api):
    intent = await create_intent(api, "20.00", currency="USD", allowedMethods=["CARD"])
    assert intent["amount"] == {"amount": "20.00", "currency": "USD"}


async def test_unknown_id_is_null(api):
    assert (await api.data(GET, {"id": "pi_doesnotexist"}))["paymentIntent"] is None


async def test_pagination_walks_every_intent_once_newest_first(http, other_merchant):
    # A merchant of its own, so that other tests' intents do not interleave.
    merchant = GraphQLClient(http, other_merchant.secret_key)
    created = [(await create_intent(merchant, f"{100 + i}.00"))["id"] for i in range(5)]
    seen: list[str] = []
    after = None
    while True:
        page = (await merchant.data(LIST, {"first": 2, "after": after}))["paymentIntents"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen[: len(created)] == list(reversed(created))
    assert len(seen) == len(set(seen))


async def test_status_filter(api):
    page = await api.data(LIST, {"first": 100, "status": "REQUIRES_PAYMENT_METHOD"})
    statuses = {edge["node"]["status"] for edge in page["paymentIntents"]["edges"]}
    assert statuses <= {"REQUIRES_PAYMENT_METHOD"}


@pytest.mark.parametrize(
    ("variables", "fragment"),
    [
        ({"first": 0}, "between 1 and 100"),
        ({"first": 101}, "between 1 and 100"),
        ({"after": "not-a-cursor"}, "not a cursor"),
    ],
)
async def test_bad_pagination_arguments_are_clear_errors(api, variables, fragment):
    body = await api.post(LIST, variables)
    assert fragment in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def _count(api: GraphQLClient) -> int:
    page = await api.data(LIST, {"first": 100})
    return len(page["paymentIntents"]["edges"])


async def test_publishable_key_lists_nothing(http):
    client = GraphQLClient(http, DEV_PUBLISHABLE)
    body = await client.post(LIST, {})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
