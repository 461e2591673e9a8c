"""A token per PSP (contract section 7): tokenizers, the sandbox's tokens, honest card
failover and CARD_TOKEN_INVALID, over real HTTP through the emulators."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import DEV_PUBLISHABLE, DEV_SECRET, start_server
from tests.support.cards import DECLINED, THREE_D_SECURE, mint, tokens
from tests.support.graphql import GET, GraphQLClient, confirm, create_intent

METHODS = """
query M($amount: Decimal!) {
  paymentMethods(amount: $amount) {
    type tokenizers { provider publishableKey tokenizeUrl }
  }
}
"""
PROVIDERS = "query { providers { name circuit } }"


@pytest.fixture
async def fresh(database_url) -> AsyncIterator[tuple[GraphQLClient, httpx.AsyncClient, str]]:
    """A server of our own: faults and circuits do not leak into other tests."""
    thread = start_server(database_url, provider_timeout_seconds=0.5)
    try:
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as http:
            yield GraphQLClient(http, DEV_SECRET), http, thread.url
    finally:
        thread.stop()


def tried(events: list[dict]) -> list[tuple[str, str]]:
    return [(e["type"], e["provider"]) for e in events if e["type"].startswith("provider.")]


async def test_payment_methods_list_each_card_psps_tokenizer(api, http, server):
    public = GraphQLClient(http, DEV_PUBLISHABLE)
    methods = {
        m["type"]: m["tokenizers"]
        for m in (await public.data(METHODS, {"amount": "500.00"}))["paymentMethods"]
    }
    assert methods["CARD"] == [
        {"provider": p, "publishableKey": "sandbox", "tokenizeUrl": f"{server.url}/sandbox/tokens"}
        for p in ("stripe", "conekta")
    ]
    assert methods["OXXO"] == methods["SPEI"] == methods["CRYPTO"] == []


async def test_the_sandbox_mints_tokens_each_psp_shapes_its_own_way(http):
    stripe, conekta = await mint(http, "stripe"), await mint(http, "conekta")
    assert stripe.startswith("tok_") and not stripe.startswith("tok_test_")
    assert conekta.startswith("tok_test_")
    response = await http.post(
        "/sandbox/tokens",
        json={"provider": "stripe", "number": "4242424242424242", "expMonth": 12,
              "expYear": 2030, "cvc": "123"},
    )  # fmt: skip
    assert response.json()["card"] == {
        "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030
    }  # fmt: skip
    assert "number" not in response.text


@pytest.mark.parametrize(
    "body",
    [
        {"provider": "stp", "number": "4242424242424242"},
        {"provider": "stripe", "number": "4111111111111111"},
        {"provider": "stripe", "number": "4242424242424242", "expMonth": 13},
        {"provider": "stripe", "number": "4242424242424242", "expYear": 2001},
        {"provider": "stripe", "number": "4242424242424242", "cvc": "12"},
    ],
    ids=["not-a-card-psp", "not-a-test-card", "month", "year", "cvc"],
)
async def test_the_tokenizer_refuses_what_is_not_a_sandbox_card(http, body):
    card = {"expMonth": 12, "expYear": 2030, "cvc": "123", **body}
    response = await http.post("/sandbox/tokens", json=card)
    assert response.status_code == 400
    assert response.json()["error"]


async def test_a_lone_token_goes_to_the_first_card_psp(api, http):
    intent = await create_intent(api)
    paid = await confirm(api, intent["id"], card={"token": await mint(http, "stripe")})
    assert paid["errors"] == []
    assert (paid["paymentIntent"]["status"], paid["paymentIntent"]["provider"]) == (
        "SUCCEEDED",
        "stripe",
    )


async def test_a_card_with_a_token_per_psp_fails_over_with_the_right_token(fresh):
    api, http, _ = fresh
    await http.post("/sandbox/providers/stripe/faults", json={"mode": "down"})
    intent = await create_intent(api)
    paid = (await confirm(api, intent["id"], card={"tokens": await tokens(http)}))["paymentIntent"]
    assert (paid["status"], paid["provider"]) == ("SUCCEEDED", "conekta")
    assert tried(paid["events"]) == [
        ("provider.request", "stripe"),
        ("provider.error", "stripe"),
        ("provider.request", "conekta"),
        ("provider.response", "conekta"),
    ]


async def test_a_lone_token_never_fails_over(fresh):
    """Conekta could not charge Stripe's token: with Stripe down the payment waits."""
    api, http, _ = fresh
    await http.post("/sandbox/providers/stripe/faults", json={"mode": "down"})
    intent = await create_intent(api)
    refused = await confirm(api, intent["id"], card={"token": await mint(http, "stripe")})
    assert refused["errors"][0]["code"] == "PROVIDER_UNAVAILABLE"
    still = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]
    assert (still["status"], still["version"]) == ("REQUIRES_PAYMENT_METHOD", 1)
    assert "conekta" not in {p for _, p in tried(still["events"])}


async def test_failover_goes_only_to_psps_that_got_a_token(fresh):
    api, http, _ = fresh
    await http.post("/sandbox/providers/stripe/faults", json={"mode": "down"})
    intent = await create_intent(api)
    only_stripe = [{"provider": "stripe", "token": await mint(http, "stripe")}]
    refused = await confirm(api, intent["id"], card={"tokens": only_stripe})
    assert refused["errors"][0]["code"] == "PROVIDER_UNAVAILABLE"
    events = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]["events"]
    assert {p for _, p in tried(events)} == {"stripe"}


async def test_each_emulator_refuses_the_other_psps_token(api, http):
    """Stripe is given Conekta's token and refuses it with its own error; Conekta,
    given its own, takes the payment."""
    conekta_token = await mint(http, "conekta")
    intent = await create_intent(api)
    card = {
        "tokens": [
            {"provider": "stripe", "token": conekta_token},
            {"provider": "conekta", "token": conekta_token},
        ]
    }
    paid = (await confirm(api, intent["id"], card=card))["paymentIntent"]
    assert (paid["status"], paid["provider"]) == ("SUCCEEDED", "conekta")
    errors = [
        e for e in (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]["events"]
        if e["type"] == "provider.error"
    ]  # fmt: skip
    assert [(e["provider"], e["data"]["code"]) for e in errors] == [
        ("stripe", "CARD_TOKEN_INVALID")
    ]
    assert "No such token" in errors[0]["data"]["message"]


async def test_a_token_no_psp_knows_is_card_token_invalid_and_changes_nothing(api, http):
    stripe_token = await mint(http, "stripe")
    intent = await create_intent(api)
    # Stripe's token handed to Conekta: refused with Conekta's own error.
    refused = await confirm(
        api, intent["id"], card={"tokens": [{"provider": "conekta", "token": stripe_token}]}
    )
    assert refused["paymentIntent"] is None
    assert refused["errors"][0]["code"] == "CARD_TOKEN_INVALID"
    assert "The card token does not exist" in refused["errors"][0]["message"]
    still = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]
    assert (still["status"], still["version"]) == ("REQUIRES_PAYMENT_METHOD", 1)


async def test_unknown_tokens_do_not_count_against_the_circuit(fresh):
    api, _, _ = fresh
    for _ in range(6):  # one more than the breaker's fail_max
        intent = await create_intent(api)
        refused = await confirm(api, intent["id"], card={"token": "tok_test_nobodys"})
        assert refused["errors"][0]["code"] == "CARD_TOKEN_INVALID"
    circuits = {p["name"]: p["circuit"] for p in (await api.data(PROVIDERS))["providers"]}
    assert circuits["stripe"] == "CLOSED"


@pytest.mark.parametrize(
    ("number", "status", "code"),
    [(DECLINED, "FAILED", "CARD_DECLINED"), (THREE_D_SECURE, "REQUIRES_ACTION", None)],
    ids=["declined", "3ds"],
)
@pytest.mark.parametrize("provider", ["stripe", "conekta"])
async def test_minted_test_cards_behave_as_the_contract_says(
    api, http, provider, number, status, code
):
    intent = await create_intent(api)
    card = {"tokens": [{"provider": provider, "token": await mint(http, provider, number)}]}
    payload = await confirm(api, intent["id"], card=card)
    assert payload["paymentIntent"]["status"] == status
    assert payload["paymentIntent"]["provider"] == provider
    assert [e["code"] for e in payload["errors"]] == ([code] if code else [])
