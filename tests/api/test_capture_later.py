"""Capture later (contract section 7): authorize, capture all or part, void, lapse;
idempotent, replayed when its answer is lost; audited, pushed to merchant webhooks.
Over real HTTP through both card emulators."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta

import httpx
import pytest

from tests.conftest import DEV_SECRET, start_server
from tests.support.cards import mint
from tests.support.graphql import GraphQLClient, confirm, create_intent
from tests.support.receiver import Receiver

READ = """
query R($id: ID!) {
  paymentIntent(id: $id) {
    id status version provider captureMethod captureBefore
    amountCapturable { amount } amountReceived { amount } amountRefunded { amount }
    lastError { code message }
    events { type provider data }
  }
}
"""
CAPTURE = """
mutation C($input: CapturePaymentIntentInput!) {
  capturePaymentIntent(input: $input) {
    paymentIntent { id status version amountCapturable { amount } amountReceived { amount } }
    errors { code message field }
  }
}
"""
CANCEL = """
mutation X($id: ID!) {
  cancelPaymentIntent(input: {id: $id}) { paymentIntent { status } errors { code message } }
}
"""
REFUND = """
mutation F($input: RefundPaymentIntentInput!) {
  refundPaymentIntent(input: $input) {
    paymentIntent { amountRefunded { amount } } errors { code message }
  }
}
"""
ENDPOINT = """
mutation($url: String!) {
  createWebhookEndpoint(input: {url: $url}) { webhookEndpoint { id } errors { code } }
}
"""


async def read(api: GraphQLClient, intent_id: str) -> dict:
    intent: dict = (await api.data(READ, {"id": intent_id}))["paymentIntent"]
    return intent


async def capture(api: GraphQLClient, intent_id: str, **extra: object) -> dict:
    data = await api.data(CAPTURE, {"input": {"id": intent_id, **extra}})
    payload: dict = data["capturePaymentIntent"]
    return payload


async def authorized(
    api: GraphQLClient, http: httpx.AsyncClient, provider: str = "stripe", amount: str = "500.00"
) -> dict:
    intent = await create_intent(api, amount, captureMethod="MANUAL")
    card = {"tokens": [{"provider": provider, "token": await mint(http, provider)}]}
    payload = await confirm(api, intent["id"], card=card)
    assert payload["errors"] == []
    return await read(api, intent["id"])


@pytest.mark.parametrize("provider", ["stripe", "conekta"])
async def test_manual_capture_waits_then_takes_part_and_refunds_at_most_that(api, http, provider):
    before = datetime.now().astimezone()
    intent = await authorized(api, http, provider)
    assert (intent["status"], intent["captureMethod"], intent["provider"]) == (
        "REQUIRES_CAPTURE",
        "MANUAL",
        provider,
    )
    assert intent["amountCapturable"] == {"amount": "500.00"}
    assert intent["amountReceived"] == {"amount": "0.00"}
    lapses = datetime.fromisoformat(intent["captureBefore"]) - before
    assert timedelta(days=7) - timedelta(minutes=1) < lapses < timedelta(days=7, minutes=1)

    captured = await capture(api, intent["id"], amount="300.00")
    assert captured["errors"] == []
    paid = captured["paymentIntent"]
    assert (paid["status"], paid["amountReceived"], paid["amountCapturable"]) == (
        "SUCCEEDED",
        {"amount": "300.00"},
        {"amount": "0.00"},
    )
    trail = [e["type"] for e in (await read(api, intent["id"]))["events"]]
    assert trail[-5:] == [
        "intent.confirmed",
        "intent.requires_capture",
        "provider.capture",
        "provider.captured",
        "intent.succeeded",
    ]
    too_much = await api.data(REFUND, {"input": {"id": intent["id"], "amount": "300.01"}})
    assert too_much["refundPaymentIntent"]["errors"][0]["code"] == "REFUND_EXCEEDS_AMOUNT"
    refunded = await api.data(REFUND, {"input": {"id": intent["id"]}})
    assert refunded["refundPaymentIntent"]["errors"] == []
    assert refunded["refundPaymentIntent"]["paymentIntent"]["amountRefunded"] == {
        "amount": "300.00"
    }


async def test_a_capture_is_idempotent(api, http):
    intent = await authorized(api, http)
    first = await capture(api, intent["id"], idempotencyKey="cap-1")
    again = await capture(api, intent["id"], idempotencyKey="cap-1")
    assert first == again
    assert first["paymentIntent"]["amountReceived"] == {"amount": "500.00"}
    other = await capture(api, intent["id"], idempotencyKey="cap-1", amount="1.00")
    assert other["errors"][0]["code"] == "IDEMPOTENCY_CONFLICT"
    twice = await capture(api, intent["id"])
    assert twice["errors"][0]["code"] == "INVALID_STATE"
    captures = [
        e for e in (await read(api, intent["id"]))["events"] if e["type"] == "provider.capture"
    ]
    assert len(captures) == 1


@pytest.mark.parametrize(
    ("amount", "code"),
    [("500.01", "CAPTURE_EXCEEDS_AUTHORIZED"), ("0", "INVALID_AMOUNT"), ("-1", "INVALID_AMOUNT"),
     ("1.001", "INVALID_AMOUNT")],
)  # fmt: skip
async def test_a_capture_the_authorization_cannot_cover_changes_nothing(api, http, amount, code):
    intent = await authorized(api, http)
    refused = await capture(api, intent["id"], amount=amount)
    assert refused["paymentIntent"] is None
    assert refused["errors"][0]["code"] == code
    still = await read(api, intent["id"])
    assert (still["status"], still["version"], still["amountCapturable"]) == (
        "REQUIRES_CAPTURE",
        intent["version"],
        {"amount": "500.00"},
    )


async def test_only_an_authorized_intent_can_be_captured(api):
    intent = await create_intent(api)
    refused = await capture(api, intent["id"])
    assert refused["errors"][0]["code"] == "INVALID_STATE"
    paid = await create_intent(api)
    await confirm(api, paid["id"], card={"token": "tok_visa"})
    assert (await capture(api, paid["id"]))["errors"][0]["code"] == "INVALID_STATE"
    missing = await capture(api, "pi_doesnotexist")
    assert missing["errors"][0]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("provider", ["stripe", "conekta"])
async def test_cancel_voids_the_authorization(api, http, provider):
    intent = await authorized(api, http, provider)
    canceled = (await api.data(CANCEL, {"id": intent["id"]}))["cancelPaymentIntent"]
    assert (canceled["paymentIntent"]["status"], canceled["errors"]) == ("CANCELED", [])
    after = await read(api, intent["id"])
    assert after["amountCapturable"] == {"amount": "0.00"}
    voided = [e for e in after["events"] if e["type"] == "provider.canceled"]
    assert [e["provider"] for e in voided] == [provider]
    assert (await capture(api, intent["id"]))["errors"][0]["code"] == "INVALID_STATE"


async def test_manual_capture_is_for_cards(api):
    oxxo_only = await api.data(
        """mutation { createPaymentIntent(input: {amount: "500.00", captureMethod: MANUAL,
        allowedMethods: [OXXO]}) { paymentIntent { id } errors { code field } } }"""
    )
    assert oxxo_only["createPaymentIntent"]["errors"] == [
        {"code": "INVALID_INPUT", "field": ["input", "captureMethod"]}
    ]
    intent = await create_intent(api, captureMethod="MANUAL")
    refused = await confirm(api, intent["id"], "OXXO", oxxo={})
    assert refused["errors"][0]["code"] == "METHOD_NOT_ALLOWED"


async def test_three_d_secure_then_authorized(api, http):
    intent = await create_intent(api, captureMethod="MANUAL")
    waiting = await confirm(api, intent["id"], card={"token": "tok_threeDSecureRequired"})
    assert waiting["paymentIntent"]["status"] == "REQUIRES_ACTION"
    assert (await http.post(f"/sandbox/3ds/{intent['id']}/complete")).status_code == 200
    held = await read(api, intent["id"])
    assert (held["status"], held["amountCapturable"]) == ("REQUIRES_CAPTURE", {"amount": "500.00"})
    assert held["captureBefore"] is not None
    assert (await capture(api, intent["id"]))["paymentIntent"]["status"] == "SUCCEEDED"


@pytest.fixture
async def fresh(database_url) -> AsyncIterator[tuple[GraphQLClient, httpx.AsyncClient]]:
    """A server of our own: its sandbox clock, faults and webhooks are its own."""
    thread = start_server(
        database_url,
        provider_timeout_seconds=0.5,
        webhook_retry_base_seconds=0.1,
        delivery_poll_seconds=0.05,
    )
    try:
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as http:
            yield GraphQLClient(http, DEV_SECRET), http
    finally:
        thread.stop()


@pytest.mark.parametrize("provider", ["stripe", "conekta"])
async def test_an_authorization_not_captured_in_time_is_voided(fresh, provider):
    api, http = fresh
    intent = await authorized(api, http, provider)
    early = await http.post("/sandbox/clock/advance", json={"seconds": 6 * 86_400})
    assert early.json()["voided"] == 0
    late = await http.post("/sandbox/clock/advance", json={"seconds": 86_400 + 60})
    assert late.json()["voided"] == 1
    lapsed = await read(api, intent["id"])
    assert lapsed["status"] == "CANCELED"
    assert lapsed["lastError"]["code"] == "AUTHORIZATION_EXPIRED"
    assert lapsed["amountCapturable"] == {"amount": "0.00"}
    assert [e["provider"] for e in lapsed["events"] if e["type"] == "provider.canceled"] == [
        provider
    ]


async def test_a_capture_whose_answer_was_lost_is_replayed_never_sent_anew(fresh):
    api, http = fresh
    intent = await authorized(api, http)
    await http.post("/sandbox/providers/stripe/faults", json={"mode": "slow"})
    lost = await capture(api, intent["id"], amount="200.00")
    assert lost["errors"][0]["code"] == "PROVIDER_UNAVAILABLE"
    assert "never a second one" in lost["errors"][0]["message"]
    assert (await read(api, intent["id"]))["status"] == "REQUIRES_CAPTURE"
    await http.post("/sandbox/providers/stripe/faults", json={"mode": "ok"})
    # The retry asks for all of it, but the first capture (200.00) may have happened:
    # it is sent again as it was, with its key, and the PSP answers what it did.
    retried = await capture(api, intent["id"])
    assert retried["errors"] == []
    assert retried["paymentIntent"]["amountReceived"] == {"amount": "200.00"}
    events = (await read(api, intent["id"]))["events"]
    requested = [e["data"] for e in events if e["type"] == "provider.capture"]
    assert len(requested) == 1 and requested[0]["amount"] == "200.00"


@pytest.fixture
def receiver() -> Iterator[tuple[str, Receiver]]:
    thread, inbox = Receiver().start()
    yield thread.url, inbox
    thread.stop()


async def test_merchant_webhooks_tell_of_the_authorization_and_the_capture(fresh, receiver):
    api, http = fresh
    url, inbox = receiver
    registered = await api.data(ENDPOINT, {"url": f"{url}/hooks"})
    assert registered["createWebhookEndpoint"]["errors"] == []
    intent = await authorized(api, http)
    await capture(api, intent["id"])
    deadline = time.monotonic() + 10
    while len(inbox.events("/hooks")) < 3:
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
    events = [e.event for e in inbox.received[:3]]
    assert [e["type"] for e in events] == [
        "payment_intent.created",
        "payment_intent.amount_capturable_updated",
        "payment_intent.succeeded",
    ]
    held = events[1]["data"]["object"]
    assert (held["status"], held["amountCapturable"]["amount"]) == ("REQUIRES_CAPTURE", "500.00")


async def test_at_its_lapse_a_capture_left_unknown_is_replayed_not_voided(fresh):
    api, http = fresh
    intent = await authorized(api, http)
    await http.post("/sandbox/providers/stripe/faults", json={"mode": "slow"})
    lost = await capture(api, intent["id"], amount="100.00")
    assert lost["errors"][0]["code"] == "PROVIDER_UNAVAILABLE"
    await http.post("/sandbox/providers/stripe/faults", json={"mode": "ok"})
    swept = await http.post("/sandbox/clock/advance", json={"seconds": 7 * 86_400 + 60})
    assert swept.json()["voided"] == 0
    done = await read(api, intent["id"])
    assert (done["status"], done["amountReceived"]) == ("SUCCEEDED", {"amount": "100.00"})
    assert "provider.canceled" not in {e["type"] for e in done["events"]}
