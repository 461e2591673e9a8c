"""Routing and failover behind circuit breakers (contract section 4), over real HTTP.

Each test gets a server of its own, so circuit states do not leak between tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import DEV_PUBLISHABLE, DEV_SECRET, start_server
from tests.support.graphql import GET, GraphQLClient, confirm, create_intent

RESET_SECONDS = 1.0
PROVIDERS = "query { providers { name methods circuit } }"
METHODS = 'query { paymentMethods(amount: "500.00") { type available } }'


@pytest.fixture
async def fresh(database_url) -> AsyncIterator[tuple[GraphQLClient, httpx.AsyncClient]]:
    thread = start_server(
        database_url, breaker_reset_seconds=RESET_SECONDS, provider_timeout_seconds=0.5
    )
    try:
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as http:
            yield GraphQLClient(http, DEV_SECRET), http
    finally:
        thread.stop()


async def fault(http: httpx.AsyncClient, provider: str, mode: str) -> None:
    response = await http.post(f"/sandbox/providers/{provider}/faults", json={"mode": mode})
    assert response.status_code == 200


async def circuits(api: GraphQLClient) -> dict[str, str]:
    return {p["name"]: p["circuit"] for p in (await api.data(PROVIDERS))["providers"]}


# A card tokenized at both PSPs (the sandbox's named tokens work at each), so it may
# fail over; a lone token goes to the first card PSP only.
BOTH_TOKENS = {"tokens": [{"provider": p, "token": "tok_visa"} for p in ("stripe", "conekta")]}


async def pay_card(api: GraphQLClient) -> dict:
    intent = await create_intent(api)
    return await confirm(api, intent["id"], card=BOTH_TOKENS)


def attempts(events: list[dict]) -> list[tuple[str, str]]:
    return [(e["type"], e["provider"]) for e in events if e["type"].startswith("provider.")]


async def test_card_fails_over_to_conekta_when_stripe_is_down(fresh):
    api, http = fresh
    await fault(http, "stripe", "down")
    paid = (await pay_card(api))["paymentIntent"]
    assert (paid["status"], paid["provider"]) == ("SUCCEEDED", "conekta")
    assert attempts(paid["events"]) == [
        ("provider.request", "stripe"),
        ("provider.error", "stripe"),
        ("provider.request", "conekta"),
        ("provider.response", "conekta"),
    ]


async def test_oxxo_fails_over_to_conekta_and_still_settles(fresh):
    api, http = fresh
    await fault(http, "stripe", "down")
    intent = await create_intent(api, "300.00")
    waiting = (await confirm(api, intent["id"], "OXXO", oxxo={"customerName": "Ana"}))[
        "paymentIntent"
    ]
    assert (waiting["status"], waiting["provider"]) == ("REQUIRES_ACTION", "conekta")
    reference = waiting["nextAction"]["reference"]
    assert (await http.post(f"/sandbox/oxxo/{reference}/pay")).json()["webhook_status"] == 200
    paid = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]
    assert paid["status"] == "SUCCEEDED"


async def test_a_slow_provider_times_out_and_a_voucher_comes_from_the_next(fresh):
    api, http = fresh
    await fault(http, "stripe", "slow")
    intent = await create_intent(api, "300.00")
    started = time.monotonic()
    waiting = (await confirm(api, intent["id"], "OXXO", oxxo={}))["paymentIntent"]
    assert (waiting["status"], waiting["provider"]) == ("REQUIRES_ACTION", "conekta")
    assert time.monotonic() - started < 5  # well before the sandbox's 10 s answer


async def test_a_card_is_never_sent_elsewhere_when_the_first_psp_may_have_charged_it(fresh):
    """A timeout after sending: Stripe may have charged. Conekta must not be tried;
    the next confirmation asks Stripe again with the same key and learns the answer."""
    api, http = fresh
    await fault(http, "stripe", "slow")
    intent = await create_intent(api)
    unknown = await confirm(api, intent["id"], card={"token": "tok_visa"})
    assert unknown["errors"][0]["code"] == "PROVIDER_UNAVAILABLE"
    assert "will not be charged twice" in unknown["errors"][0]["message"]
    events = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]["events"]
    assert attempts(events) == [("provider.request", "stripe"), ("provider.error", "stripe")]
    await fault(http, "stripe", "ok")
    retried = (await confirm(api, intent["id"], card={"token": "tok_visa"}))["paymentIntent"]
    assert (retried["status"], retried["provider"]) == ("SUCCEEDED", "stripe")
    # The retry replayed the first attempt (same key): one request, no new attempt.
    assert [t for t, _ in attempts(retried["events"])].count("provider.request") == 1
    assert "conekta" not in {p for _, p in attempts(retried["events"])}


async def test_a_flaky_provider_never_fails_a_payment(fresh):
    api, http = fresh
    await fault(http, "stripe", "flaky")
    outcomes = [(await pay_card(api))["paymentIntent"] for _ in range(4)]
    assert [p["status"] for p in outcomes] == ["SUCCEEDED"] * 4
    assert {p["provider"] for p in outcomes} == {"stripe", "conekta"}


async def test_five_failures_open_the_circuit_and_half_open_recovers(fresh):
    api, http = fresh
    assert (await circuits(api))["stripe"] == "CLOSED"
    await fault(http, "stripe", "down")
    for _ in range(5):
        assert (await pay_card(api))["paymentIntent"]["provider"] == "conekta"
    assert (await circuits(api))["stripe"] == "OPEN"
    skipped = (await pay_card(api))["paymentIntent"]
    assert attempts(skipped["events"]) == [
        ("provider.request", "conekta"),
        ("provider.response", "conekta"),
    ]  # an open circuit is not even tried
    await fault(http, "stripe", "ok")
    await asyncio.sleep(RESET_SECONDS + 0.1)
    assert (await circuits(api))["stripe"] == "HALF_OPEN"
    trial = (await pay_card(api))["paymentIntent"]
    assert (trial["status"], trial["provider"]) == ("SUCCEEDED", "stripe")
    assert (await circuits(api))["stripe"] == "CLOSED"


async def test_a_failed_trial_call_opens_the_circuit_again(fresh):
    api, http = fresh
    await fault(http, "stripe", "down")
    for _ in range(5):
        await pay_card(api)
    await asyncio.sleep(RESET_SECONDS + 0.1)
    assert (await circuits(api))["stripe"] == "HALF_OPEN"
    assert (await pay_card(api))["paymentIntent"]["provider"] == "conekta"
    assert (await circuits(api))["stripe"] == "OPEN"


async def test_every_provider_down_is_provider_unavailable_and_changes_nothing(fresh):
    api, http = fresh
    await fault(http, "stripe", "down")
    await fault(http, "conekta", "down")
    intent = await create_intent(api)
    refused = await confirm(api, intent["id"], card=BOTH_TOKENS)
    assert refused["paymentIntent"] is None
    assert refused["errors"][0]["code"] == "PROVIDER_UNAVAILABLE"
    still = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]
    assert (still["status"], still["version"]) == ("REQUIRES_PAYMENT_METHOD", 1)
    assert [t for t, _ in attempts(still["events"])].count("provider.error") == 2
    await fault(http, "stripe", "ok")
    await asyncio.sleep(0.1)
    retried = await confirm(api, intent["id"], card={"token": "tok_visa"})
    assert retried["paymentIntent"]["status"] == "SUCCEEDED"  # the intent stayed confirmable


async def test_methods_are_unavailable_when_every_provider_is_open(fresh):
    api, http = fresh
    public = GraphQLClient(http, DEV_PUBLISHABLE)
    available = {m["type"]: m["available"] for m in (await public.data(METHODS))["paymentMethods"]}
    assert available == {"CARD": True, "OXXO": True, "SPEI": True, "CRYPTO": True}
    await fault(http, "stripe", "down")
    await fault(http, "conekta", "down")
    for _ in range(5):
        await pay_card(api)
    available = {m["type"]: m["available"] for m in (await public.data(METHODS))["paymentMethods"]}
    assert available == {"CARD": False, "OXXO": False, "SPEI": True, "CRYPTO": True}


async def test_out_of_range_amounts_are_unavailable(http):
    public = GraphQLClient(http, DEV_PUBLISHABLE)
    methods = await public.data(
        'query { paymentMethods(amount: "50.00") { type available '
        "minAmount { amount } maxAmount { amount } settlement } }"
    )
    by_type = {m["type"]: m for m in methods["paymentMethods"]}
    assert by_type["CRYPTO"]["available"] is False  # from 100.00
    assert by_type["CARD"]["available"] is True
    assert by_type["OXXO"]["maxAmount"]["amount"] == "10000.00"
    assert by_type["SPEI"]["settlement"] == "DELAYED" and by_type["CARD"]["settlement"] == "INSTANT"
