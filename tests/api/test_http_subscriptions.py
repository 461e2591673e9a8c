"""Subscriptions over plain HTTP (contract section 9): GraphQL over SSE and Apollo's
multipart protocol, with the WebSocket's authentication and `afterVersion`."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.api.test_metrics import eventually, scrape, value
from tests.conftest import DEV_PUBLISHABLE, DEV_SECRET, start_server
from tests.support.graphql import confirm, create_intent
from tests.support.http_streams import COMPLETE, MULTIPART, SSE, HTTPSubscription
from tests.support.payouts import WATCH_PAYOUT, create_payout, wait_for_status

WATCH = """
subscription Watch($id: ID!, $after: Int) {
  paymentIntentUpdated(id: $id, afterVersion: $after) { id status version }
}
"""
FEED = "subscription Feed { paymentIntentsUpdated { id status version } }"
TRANSPORTS = pytest.mark.parametrize("accept", [SSE, MULTIPART], ids=["sse", "multipart"])


@TRANSPORTS
async def test_snapshot_then_changes_then_complete(api, http, accept):
    intent = await create_intent(api)
    variables = {"id": intent["id"]}
    async with HTTPSubscription(http, WATCH, variables, key=DEV_SECRET, accept=accept) as sub:
        assert sub.status_code == 200
        assert sub.response is not None
        assert sub.response.headers["content-type"].startswith(accept.split(";")[0])
        first = (await sub.data())["paymentIntentUpdated"]
        assert (first["status"], first["version"]) == ("REQUIRES_PAYMENT_METHOD", 1)
        await confirm(api, intent["id"], card={"token": "tok_threeDSecureRequired"})
        second = (await sub.data())["paymentIntentUpdated"]
        assert (second["status"], second["version"]) == ("REQUIRES_ACTION", 2)
        await http.post(f"/sandbox/3ds/{intent['id']}/complete")
        third = (await sub.data())["paymentIntentUpdated"]
        assert (third["status"], third["version"]) == ("SUCCEEDED", 3)
        assert await sub.next() == COMPLETE
    if accept == MULTIPART:
        assert sub.keep_alives >= 1  # Strawberry's first keep-alive goes out at once


@TRANSPORTS
async def test_after_version_replays_what_was_missed(api, http, accept):
    intent = await create_intent(api)
    await confirm(api, intent["id"], card={"token": "tok_threeDSecureRequired"})
    await http.post(f"/sandbox/3ds/{intent['id']}/complete")
    variables = {"id": intent["id"], "after": 1}
    async with HTTPSubscription(http, WATCH, variables, key=DEV_SECRET, accept=accept) as sub:
        versions = [(await sub.data())["paymentIntentUpdated"]["version"] for _ in range(2)]
        assert versions == [2, 3]
        assert await sub.next() == COMPLETE
    variables = {"id": intent["id"], "after": 7}
    async with HTTPSubscription(http, WATCH, variables, key=DEV_SECRET, accept=accept) as sub:
        assert await sub.error_code() == "INVALID_INPUT"
        assert await sub.next() == COMPLETE


async def test_a_subscription_over_get(api, http):
    intent = await create_intent(api)
    variables = {"id": intent["id"]}
    async with HTTPSubscription(http, WATCH, variables, key=DEV_SECRET, method="GET") as sub:
        assert (await sub.data())["paymentIntentUpdated"]["version"] == 1


@TRANSPORTS
async def test_a_client_secret_watches_its_own_intent_only(api, http, accept):
    mine = await create_intent(api)
    other = await create_intent(api)
    secret = mine["clientSecret"]
    watch_mine = {"id": mine["id"]}
    async with HTTPSubscription(http, WATCH, watch_mine, key=secret, accept=accept) as sub:
        assert (await sub.data())["paymentIntentUpdated"]["id"] == mine["id"]
    watch_other = {"id": other["id"]}
    async with HTTPSubscription(http, WATCH, watch_other, key=secret, accept=accept) as sub:
        assert await sub.error_code() == "NOT_FOUND"
        assert await sub.next() == COMPLETE
    async with HTTPSubscription(http, FEED, key=secret, accept=accept) as sub:
        assert await sub.error_code() == "FORBIDDEN"
    async with HTTPSubscription(http, FEED, key=DEV_PUBLISHABLE, accept=accept) as sub:
        assert await sub.error_code() == "FORBIDDEN"


@TRANSPORTS
@pytest.mark.parametrize("key", ["sk_test_nope", "pi_nope_secret_nope", None])
async def test_no_key_or_a_bad_key_ends_the_stream_with_a_coded_error(api, http, accept, key):
    intent = await create_intent(api)
    async with HTTPSubscription(http, WATCH, {"id": intent["id"]}, key=key, accept=accept) as sub:
        assert await sub.error_code() == "UNAUTHENTICATED"
        assert await sub.next() == COMPLETE


async def test_the_merchant_feed_and_a_payout_over_sse(api, http):
    async with HTTPSubscription(http, FEED, key=DEV_SECRET) as feed:
        intent = await create_intent(api)
        change = (await feed.data())["paymentIntentsUpdated"]
        assert (change["id"], change["version"]) == (intent["id"], 1)
    payout = (await create_payout(api))["payout"]
    await wait_for_status(api, payout["id"], "PAID")
    variables = {"id": payout["id"], "after": 1}
    async with HTTPSubscription(http, WATCH_PAYOUT, variables, key=DEV_SECRET) as sub:
        seen = [(await sub.data())["payoutUpdated"]["status"] for _ in range(2)]
        assert seen == ["IN_TRANSIT", "PAID"]


async def test_a_mutation_is_not_run_over_multipart(api, http):
    """Apollo's multipart protocol is for subscriptions; anything else is refused
    with a code, changing nothing."""
    mutation = (
        "mutation { createPaymentIntent(input: {amount: 100, currency: MXN, "
        'description: "over multipart"}) { errors { code } } }'
    )
    async with HTTPSubscription(http, mutation, key=DEV_SECRET, accept=MULTIPART) as sub:
        assert await sub.error_code() == "GRAPHQL_VALIDATION_FAILED"
        assert await sub.next() == COMPLETE
    listed = await api.data("{ paymentIntents(first: 100) { edges { node { description } } } }")
    descriptions = [e["node"]["description"] for e in listed["paymentIntents"]["edges"]]
    assert "over multipart" not in descriptions


@TRANSPORTS
async def test_open_streams_are_counted_by_transport(api, http, accept):
    transport = "graphql-sse" if accept == SSE else "multipart-subscription"
    name = "cobro_subscriptions_open"
    intent = await create_intent(api)
    before = value(await scrape(http), name, transport=transport)
    async with HTTPSubscription(
        http, WATCH, {"id": intent["id"]}, key=DEV_SECRET, accept=accept
    ) as sub:
        await sub.data()
        assert value(await scrape(http), name, transport=transport) == before + 1

    async def closed() -> bool:
        return value(await scrape(http), name, transport=transport) == before

    assert await eventually(closed)


@pytest.fixture
def tight_server(database_url):
    thread = start_server(database_url, rate_limits={"secret": "2/minute"})
    yield thread
    thread.stop()


@TRANSPORTS
async def test_each_stream_counts_against_its_keys_rate_limit(tight_server, accept):
    async with httpx.AsyncClient(base_url=tight_server.url, timeout=30) as http:
        for _ in range(2):
            async with HTTPSubscription(http, FEED, key=DEV_SECRET, accept=accept) as sub:
                assert sub.status_code == 200
        async with HTTPSubscription(http, FEED, key=DEV_SECRET, accept=accept) as sub:
            assert sub.status_code == 429
            assert sub.response is not None
            assert 1 <= int(sub.response.headers["retry-after"]) <= 60
            assert await sub.error_code() == "RATE_LIMITED"
            assert await sub.next() == COMPLETE


async def test_a_stream_is_timed_until_it_starts_not_while_it_lasts(api, http):
    """A subscription open for minutes must not show as a request minutes slow."""
    intent = await create_intent(api)
    labels = {"route": "/graphql", "method": "POST", "status": "200"}
    name = "cobro_http_request_duration_seconds"
    before = await scrape(http)
    async with HTTPSubscription(http, WATCH, {"id": intent["id"]}, key=DEV_SECRET) as sub:
        await sub.data()
        await asyncio.sleep(1.5)

    async def counted() -> bool:
        now = await scrape(http)
        return value(now, f"{name}_count", **labels) == value(before, f"{name}_count", **labels) + 1

    assert await eventually(counted)
    took = value(await scrape(http), f"{name}_sum", **labels) - value(
        before, f"{name}_sum", **labels
    )
    assert took < 1.0, took
