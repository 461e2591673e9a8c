"""Contract section 2: who may do what, and nobody sees another merchant's data."""

from __future__ import annotations

import pytest

from tests.conftest import DEV_PUBLISHABLE
from tests.support.graphql import CONFIRM, CREATE, GET, GraphQLClient, confirm, create_intent

METHODS = 'query { paymentMethods(amount: "500.00") { type available } }'


@pytest.mark.parametrize(
    ("key", "code"),
    [
        (None, "UNAUTHENTICATED"),
        ("sk_test_wrong", "UNAUTHENTICATED"),
        ("pi_nope_secret_nope", "UNAUTHENTICATED"),
        (DEV_PUBLISHABLE, "FORBIDDEN"),
    ],
)
async def test_create_needs_a_secret_key(http, key, code):
    body = await GraphQLClient(http, key).post(CREATE, {"input": {"amount": "500.00"}})
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == code


async def test_a_malformed_authorization_header_is_unauthenticated(http):
    response = await http.post(
        "/graphql", json={"query": METHODS}, headers={"Authorization": "Basic abc"}
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_publishable_key_sees_payment_methods_only(http, api):
    public = GraphQLClient(http, DEV_PUBLISHABLE)
    methods = (await public.data(METHODS))["paymentMethods"]
    assert {m["type"] for m in methods} == {"CARD", "OXXO", "SPEI", "CRYPTO"}
    intent = await create_intent(api)
    assert (await public.data(GET, {"id": intent["id"]}))["paymentIntent"] is None
    body = await public.post(
        CONFIRM, {"input": {"id": intent["id"], "method": "CARD", "card": {"token": "tok_visa"}}}
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    providers = await public.post("query { providers { name } }")
    assert providers["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_client_secret_opens_its_own_intent_only(http, api):
    mine = await create_intent(api)
    other = await create_intent(api)
    checkout = GraphQLClient(http, mine["clientSecret"])
    read = (await checkout.data(GET, {"id": mine["id"]}))["paymentIntent"]
    assert read["id"] == mine["id"]
    assert read["clientSecret"] is None  # only the secret-key holder sees it
    assert (await checkout.data(GET, {"id": other["id"]}))["paymentIntent"] is None
    refused = await confirm(checkout, other["id"], card={"token": "tok_visa"})
    assert refused["errors"][0]["code"] == "NOT_FOUND"
    paid = await confirm(checkout, mine["id"], card={"token": "tok_visa"})
    assert paid["paymentIntent"]["status"] == "SUCCEEDED"
    # paymentMethods answers a client secret with what its intent allows (its checkout
    # lists them: tests/web/test_pages.py), and nothing else of the merchant's.
    assert "errors" not in await checkout.post(METHODS)
    body = await checkout.post(CREATE, {"input": {"amount": "500.00"}})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_merchants_never_see_each_other(http, api, other_merchant):
    theirs = GraphQLClient(http, other_merchant.secret_key)
    mine = await create_intent(api)
    assert (await theirs.data(GET, {"id": mine["id"]}))["paymentIntent"] is None
    payload = await confirm(theirs, mine["id"], card={"token": "tok_visa"})
    assert payload["errors"][0]["code"] == "NOT_FOUND"
    canceled = await theirs.data(
        "mutation($i: CancelPaymentIntentInput!) { cancelPaymentIntent(input: $i) "
        "{ errors { code } } }",
        {"i": {"id": mine["id"]}},
    )
    assert canceled["cancelPaymentIntent"]["errors"][0]["code"] == "NOT_FOUND"
    still = (await api.data(GET, {"id": mine["id"]}))["paymentIntent"]
    assert still["status"] == "REQUIRES_PAYMENT_METHOD" and still["version"] == 1
