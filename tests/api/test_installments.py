"""Meses sin intereses (contract section 7): plans in paymentMethods, the plan sent
to each PSP in its own terms, INSTALLMENTS_UNAVAILABLE, failover only to a PSP with
the same plan; over real HTTP through the emulators."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import DEV_PUBLISHABLE, DEV_SECRET, start_server
from tests.support.cards import NO_INSTALLMENTS, mint, tokens
from tests.support.graphql import GraphQLClient, confirm, create_intent

PLANS = """
query M($amount: Decimal!) {
  paymentMethods(amount: $amount) {
    type installmentPlans { count minAmount { amount currency } providers }
  }
}
"""
READ = """
query R($id: ID!) {
  paymentIntent(id: $id) { status version provider installments events { type provider } }
}
"""


async def installment_plans(client: GraphQLClient, amount: str) -> dict[str, list[dict]]:
    found = (await client.data(PLANS, {"amount": amount}))["paymentMethods"]
    return {m["type"]: m["installmentPlans"] for m in found}


def plan(count: int, low: str, providers: list[str]) -> dict[str, object]:
    return {"count": count, "minAmount": {"amount": low, "currency": "MXN"}, "providers": providers}


BOTH = ["stripe", "conekta"]


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("299.99", []),
        ("300.00", [plan(3, "300.00", BOTH)]),
        ("700.00", [plan(3, "300.00", BOTH), plan(6, "600.00", BOTH)]),
        (
            "1500.00",
            [
                plan(3, "300.00", BOTH),
                plan(6, "600.00", BOTH),
                plan(9, "900.00", BOTH),
                plan(12, "1200.00", BOTH),
            ],
        ),
    ],
)
async def test_payment_methods_list_the_plans_the_amount_qualifies_for(http, amount, expected):
    found = await installment_plans(GraphQLClient(http, DEV_PUBLISHABLE), amount)
    assert found["CARD"] == expected
    assert found["OXXO"] == found["SPEI"] == found["CRYPTO"] == []


async def test_an_msi_payment_succeeds_and_the_intent_shows_its_months(api, http):
    intent = await create_intent(api, "700.00")
    card = {"token": await mint(http, "stripe"), "installments": 6}
    paid = await confirm(api, intent["id"], card=card)
    assert paid["errors"] == []
    read = (await api.data(READ, {"id": intent["id"]}))["paymentIntent"]
    assert (read["status"], read["provider"], read["installments"]) == ("SUCCEEDED", "stripe", 6)


async def test_one_payment_is_no_plan(api, http):
    intent = await create_intent(api, "100.00")
    paid = await confirm(api, intent["id"], card={"token": "tok_visa", "installments": 1})
    assert paid["errors"] == []
    read = (await api.data(READ, {"id": intent["id"]}))["paymentIntent"]
    assert (read["status"], read["installments"]) == ("SUCCEEDED", None)


@pytest.mark.parametrize("provider", ["stripe", "conekta"])
async def test_each_psp_takes_the_plan_in_its_own_terms(api, http, provider):
    intent = await create_intent(api, "1500.00")
    card = {
        "tokens": [{"provider": provider, "token": await mint(http, provider)}],
        "installments": 12,
    }
    paid = await confirm(api, intent["id"], card=card)
    assert paid["errors"] == []
    read = (await api.data(READ, {"id": intent["id"]}))["paymentIntent"]
    assert (read["status"], read["provider"], read["installments"]) == (
        "SUCCEEDED",
        provider,
        12,
    )


@pytest.mark.parametrize(
    ("amount", "count", "number", "provider"),
    [
        ("500.00", 6, None, "stripe"),  # 6 months start at 600.00
        ("5000.00", 5, None, "stripe"),  # no 5-month plan anywhere
        ("700.00", 3, NO_INSTALLMENTS, "stripe"),  # the issuer offers none on this card
        ("700.00", 3, NO_INSTALLMENTS, "conekta"),
    ],
    ids=["amount", "count", "card-stripe", "card-conekta"],
)
async def test_a_plan_the_amount_card_or_route_lacks_is_refused_and_changes_nothing(
    api, http, amount, count, number, provider
):
    intent = await create_intent(api, amount)
    token = await mint(http, provider, number) if number else await mint(http, provider)
    card = {"tokens": [{"provider": provider, "token": token}], "installments": count}
    refused = await confirm(api, intent["id"], card=card)
    assert refused["paymentIntent"] is None
    assert refused["errors"][0]["code"] == "INSTALLMENTS_UNAVAILABLE"
    read = (await api.data(READ, {"id": intent["id"]}))["paymentIntent"]
    assert (read["status"], read["version"], read["installments"]) == (
        "REQUIRES_PAYMENT_METHOD",
        1,
        None,
    )


async def test_installments_on_another_method_are_refused(api):
    intent = await create_intent(api, "700.00")
    refused = await confirm(
        api, intent["id"], "OXXO", oxxo={}, card={"token": "tok_visa", "installments": 3}
    )
    assert refused["errors"][0]["code"] == "INSTALLMENTS_UNAVAILABLE"
    assert refused["errors"][0]["field"] == ["input", "card", "installments"]


@pytest.fixture
async def conekta_offers_three(
    database_url,
) -> AsyncIterator[tuple[GraphQLClient, httpx.AsyncClient]]:
    """A server whose Conekta is configured to offer 3 months only."""
    thread = start_server(
        database_url,
        provider_timeout_seconds=0.5,
        providers={"conekta": {"installment_plans": {"3": "300.00"}}},
    )
    try:
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as http:
            yield GraphQLClient(http, DEV_SECRET), http
    finally:
        thread.stop()


async def test_plans_are_configured_per_psp(conekta_offers_three):
    api, _ = conekta_offers_three
    assert (await installment_plans(api, "700.00"))["CARD"] == [
        plan(3, "300.00", BOTH),
        plan(6, "600.00", ["stripe"]),
    ]


async def test_failover_goes_only_to_a_psp_offering_the_same_plan(conekta_offers_three):
    api, http = conekta_offers_three
    await http.post("/sandbox/providers/stripe/faults", json={"mode": "down"})
    six = await create_intent(api, "700.00")
    refused = await confirm(api, six["id"], card={"tokens": await tokens(http), "installments": 6})
    assert refused["errors"][0]["code"] == "PROVIDER_UNAVAILABLE"
    events = (await api.data(READ, {"id": six["id"]}))["paymentIntent"]["events"]
    assert "conekta" not in {e["provider"] for e in events}
    three = await create_intent(api, "700.00")
    paid = await confirm(api, three["id"], card={"tokens": await tokens(http), "installments": 3})
    assert paid["errors"] == []
    read = (await api.data(READ, {"id": three["id"]}))["paymentIntent"]
    assert (read["status"], read["provider"], read["installments"]) == ("SUCCEEDED", "conekta", 3)
