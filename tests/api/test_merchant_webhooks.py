"""Merchant webhooks (contract section 6), to a real HTTP endpoint, verified with
Stripe's own signature verifier."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import stripe

from tests.conftest import DEV_PUBLISHABLE, DEV_SECRET, start_server
from tests.support.graphql import GraphQLClient, confirm, create_intent
from tests.support.payouts import create_payout
from tests.support.receiver import Receiver
from tests.support.server import ServerThread

CREATE = """
mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) {
    webhookEndpoint { id url events enabled secret }
    errors { code message field }
  }
}
"""
DELIVERIES = """
query($id: ID!) {
  webhookDeliveries(endpointId: $id) {
    id eventId eventType attempts lastStatusCode deliveredAt nextAttemptAt
  }
}
"""


@pytest.fixture
def receiver() -> Iterator[tuple[str, Receiver]]:
    thread, receiver = Receiver().start()
    yield thread.url, receiver
    thread.stop()


@pytest.fixture
async def fast(database_url) -> AsyncIterator[GraphQLClient]:
    """A server that retries failed deliveries after ~0.1 s instead of ~5 s."""
    thread: ServerThread = start_server(
        database_url, webhook_retry_base_seconds=0.1, delivery_poll_seconds=0.05
    )
    try:
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as http:
            yield GraphQLClient(http, DEV_SECRET)
    finally:
        thread.stop()


async def register(api: GraphQLClient, url: str, events: list[str] | None = None) -> dict:
    data = await api.data(CREATE, {"input": {"url": url, "events": events}})
    payload = data["createWebhookEndpoint"]
    assert payload["errors"] == [], payload["errors"]
    return payload["webhookEndpoint"]


async def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_card_payment_reaches_the_endpoint_signed_as_stripe_would(fast, receiver):
    url, inbox = receiver
    endpoint = await register(fast, f"{url}/hooks")
    assert endpoint["secret"].startswith("whsec_") and endpoint["events"] == ["*"]
    intent = await create_intent(fast)
    await confirm(fast, intent["id"], card={"token": "tok_visa"})
    await wait_for(lambda: len(inbox.events("/hooks")) >= 2)
    created, succeeded = inbox.received[:2]
    assert [created.event["type"], succeeded.event["type"]] == [
        "payment_intent.created",
        "payment_intent.succeeded",
    ]
    for delivery in (created, succeeded):
        event = stripe.Webhook.construct_event(
            delivery.body.decode(), delivery.headers["cobro-signature"], endpoint["secret"]
        )
        assert set(event.to_dict()) == {"id", "type", "created", "data"}
    obj = succeeded.event["data"]["object"]
    assert (obj["id"], obj["status"], obj["version"]) == (intent["id"], "SUCCEEDED", 2)
    assert obj["amountReceived"] == {"amount": "500.00", "currency": "MXN"}
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            succeeded.body.decode(), succeeded.headers["cobro-signature"], "whsec_wrong"
        )


async def test_a_failing_endpoint_is_retried_until_it_answers(fast, receiver):
    url, inbox = receiver
    inbox.fail_first["/flaky"] = 2
    endpoint = await register(fast, f"{url}/flaky", ["payment_intent.created"])
    await create_intent(fast)
    await wait_for(lambda: inbox.events("/flaky"))
    await asyncio.sleep(0.2)
    deliveries = (await fast.data(DELIVERIES, {"id": endpoint["id"]}))["webhookDeliveries"]
    assert len(deliveries) == 1
    delivery = deliveries[0]
    assert (delivery["attempts"], delivery["lastStatusCode"]) == (3, 200)
    assert delivery["deliveredAt"] and delivery["nextAttemptAt"] is None


async def test_an_endpoint_that_hangs_does_not_hold_up_the_others(fast, receiver):
    url, inbox = receiver
    inbox.hang.add("/stuck")
    await register(fast, f"{url}/stuck")
    await register(fast, f"{url}/quick")
    started = time.monotonic()
    await create_intent(fast)
    await wait_for(lambda: inbox.events("/quick"), timeout=5)
    assert time.monotonic() - started < 3


async def test_events_of_one_intent_arrive_in_version_order(fast, receiver):
    url, inbox = receiver
    inbox.fail_first["/ordered"] = 1  # the first event must be retried; the second waits
    await register(fast, f"{url}/ordered")
    intent = await create_intent(fast)
    await confirm(fast, intent["id"], card={"token": "tok_visa"})
    await wait_for(lambda: len(inbox.events("/ordered")) >= 2)
    versions = [e["data"]["object"]["version"] for e in inbox.events("/ordered")]
    assert versions == [1, 2]


async def test_an_endpoint_gets_only_the_types_it_asked_for(fast, receiver):
    url, inbox = receiver
    await register(fast, f"{url}/succeeded-only", ["payment_intent.succeeded"])
    intent = await create_intent(fast)
    await confirm(fast, intent["id"], card={"token": "tok_visa"})
    await wait_for(lambda: inbox.events("/succeeded-only"))
    await asyncio.sleep(0.2)
    assert [e["type"] for e in inbox.events("/succeeded-only")] == ["payment_intent.succeeded"]


async def test_a_deleted_endpoint_gets_nothing_more(fast, receiver):
    url, inbox = receiver
    endpoint = await register(fast, f"{url}/gone")
    deleted = await fast.data(
        "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) "
        "{ webhookEndpoint { id enabled secret } errors { code } } }",
        {"id": endpoint["id"]},
    )
    assert deleted["deleteWebhookEndpoint"]["webhookEndpoint"]["enabled"] is False
    assert deleted["deleteWebhookEndpoint"]["webhookEndpoint"]["secret"] is None
    await create_intent(fast)
    await asyncio.sleep(0.5)
    assert inbox.events("/gone") == []
    listed = await fast.data("query { webhookEndpoints { id } }")
    assert endpoint["id"] not in [e["id"] for e in listed["webhookEndpoints"]]


@pytest.mark.parametrize(
    ("url", "events", "field"),
    [
        ("ftp://example.test/hook", None, ["input", "url"]),
        ("not a url", None, ["input", "url"]),
        ("http://user:pw@example.test/", None, ["input", "url"]),
        ("https://example.test/hook", ["payment_intent.exploded"], ["input", "events"]),
    ],
)
async def test_bad_endpoints_are_refused(api, url, events, field):
    payload = (await api.data(CREATE, {"input": {"url": url, "events": events}}))[
        "createWebhookEndpoint"
    ]
    assert payload["webhookEndpoint"] is None
    assert (payload["errors"][0]["code"], payload["errors"][0]["field"]) == ("INVALID_INPUT", field)


async def test_another_merchants_endpoint_is_not_found(api, http, other_merchant):
    theirs = GraphQLClient(http, other_merchant.secret_key)
    endpoint = await register(theirs, "http://127.0.0.1:9/hook")
    body = await api.post(DELIVERIES, {"id": endpoint["id"]})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


ROLL_SECRET = """
mutation($id: ID!, $hours: Int) {
  rollWebhookEndpointSecret(id: $id, expireOldInHours: $hours) {
    webhookEndpoint { id url events enabled secret }
    errors { code message field }
  }
}
"""


async def roll_secret(api: GraphQLClient, endpoint_id: str, hours: int | None) -> dict:
    return (await api.data(ROLL_SECRET, {"id": endpoint_id, "hours": hours}))[
        "rollWebhookEndpointSecret"
    ]


async def next_delivery(api: GraphQLClient, inbox: Receiver, path: str):
    """Make a change and return the delivery it causes at `path`."""
    seen = len(inbox.events(path))
    await create_intent(api)
    await wait_for(lambda: len(inbox.events(path)) > seen)
    return [r for r in inbox.received if r.path == path][seen]


def v1s(header: str) -> list[str]:
    return [part[3:] for part in header.split(",") if part.startswith("v1=")]


def verifies(delivery, secret: str) -> bool:
    """Stripe's own verifier, as a merchant would run it (no tolerance: the test may
    have moved the sandbox clock ahead of the wall clock)."""
    try:
        stripe.WebhookSignature.verify_header(
            delivery.body.decode(), delivery.headers["cobro-signature"], secret
        )
        # None checks no age (stripe's verify_header defaults to it); construct_event's
        # annotation says int.
        stripe.Webhook.construct_event(
            delivery.body.decode(),
            delivery.headers["cobro-signature"],
            secret,
            tolerance=None,  # type: ignore[arg-type]
        )
    except stripe.SignatureVerificationError:
        return False
    return True


async def test_a_rolled_secret_signs_beside_the_old_one_until_the_overlap_ends(fast, receiver):
    url, inbox = receiver
    endpoint = await register(fast, f"{url}/rolled", ["payment_intent.created"])
    old = endpoint["secret"]
    rolled = await roll_secret(fast, endpoint["id"], 1)
    assert rolled["errors"] == []
    new = rolled["webhookEndpoint"]["secret"]
    assert new.startswith("whsec_") and new != old
    assert {**rolled["webhookEndpoint"], "secret": old} == endpoint
    listed = (await fast.data("query { webhookEndpoints { id secret } }"))["webhookEndpoints"]
    assert listed == [{"id": endpoint["id"], "secret": None}]

    during = await next_delivery(fast, inbox, "/rolled")
    assert len(v1s(during.headers["cobro-signature"])) == 2
    assert verifies(during, old) and verifies(during, new)
    assert not verifies(during, "whsec_wrong")

    moved = await fast.http.post("/sandbox/clock/advance", json={"seconds": 3601})
    assert moved.status_code == 200
    after = await next_delivery(fast, inbox, "/rolled")
    assert len(v1s(after.headers["cobro-signature"])) == 1
    assert verifies(after, new) and not verifies(after, old)


async def test_each_roll_in_the_overlap_adds_a_signature_and_zero_hours_drops_them(fast, receiver):
    url, inbox = receiver
    endpoint = await register(fast, f"{url}/twice", ["payment_intent.created"])
    secrets = [endpoint["secret"]]
    for _ in range(2):
        secrets.append((await roll_secret(fast, endpoint["id"], 24))["webhookEndpoint"]["secret"])
    delivery = await next_delivery(fast, inbox, "/twice")
    assert len(v1s(delivery.headers["cobro-signature"])) == 3
    assert all(verifies(delivery, secret) for secret in secrets)

    at_once = await roll_secret(fast, endpoint["id"], 0)
    newest = at_once["webhookEndpoint"]["secret"]
    delivery = await next_delivery(fast, inbox, "/twice")
    assert len(v1s(delivery.headers["cobro-signature"])) == 1
    assert verifies(delivery, newest)
    assert not any(verifies(delivery, secret) for secret in secrets)


async def test_a_bad_roll_is_refused_and_the_endpoint_signs_as_before(fast, receiver):
    url, inbox = receiver
    endpoint = await register(fast, f"{url}/kept", ["payment_intent.created"])
    for hours in (-1, 169):
        payload = await roll_secret(fast, endpoint["id"], hours)
        assert payload["webhookEndpoint"] is None
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [
            ("INVALID_INPUT", ["expireOldInHours"])
        ]
    unknown = await roll_secret(fast, "we_nope", 1)
    assert [(e["code"], e["field"]) for e in unknown["errors"]] == [("NOT_FOUND", ["id"])]
    public = await fast.as_key(DEV_PUBLISHABLE).post(ROLL_SECRET, {"id": endpoint["id"]})
    assert public["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    delivery = await next_delivery(fast, inbox, "/kept")
    assert v1s(delivery.headers["cobro-signature"]) and verifies(delivery, endpoint["secret"])
    assert len(v1s(delivery.headers["cobro-signature"])) == 1


async def test_another_merchant_cannot_roll_my_endpoints_secret(api, http, other_merchant):
    endpoint = await register(api, "http://127.0.0.1:9/mine")
    theirs = GraphQLClient(http, other_merchant.secret_key)
    payload = await roll_secret(theirs, endpoint["id"], 0)
    assert [e["code"] for e in payload["errors"]] == ["NOT_FOUND"]
    mine = await roll_secret(api, endpoint["id"], 0)
    assert mine["errors"] == [] and mine["webhookEndpoint"]["id"] == endpoint["id"]
    await api.data(
        "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { errors { code } } }",
        {"id": endpoint["id"]},
    )


async def test_payout_events_reach_the_endpoint_in_version_order(fast, receiver):
    url, inbox = receiver
    endpoint = await register(
        fast, f"{url}/payouts", ["payout.created", "payout.in_transit", "payout.paid"]
    )
    payout = (await create_payout(fast))["payout"]
    await wait_for(lambda: len(inbox.events("/payouts")) >= 3)
    events = inbox.events("/payouts")
    assert [e["type"] for e in events] == ["payout.created", "payout.in_transit", "payout.paid"]
    paid = events[-1]["data"]["object"]
    assert (paid["object"], paid["id"], paid["status"], paid["version"]) == (
        "payout",
        payout["id"],
        "PAID",
        3,
    )
    assert paid["amount"] == {"amount": "1500.00", "currency": "MXN"}
    assert paid["trackingKey"] == payout["trackingKey"]
    delivery = inbox.received[-1]
    stripe.Webhook.construct_event(
        delivery.body.decode(), delivery.headers["cobro-signature"], endpoint["secret"]
    )
