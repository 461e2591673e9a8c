"""POST /webhooks/{provider}: signatures, replays, order, and settlement end to end."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from app.db.engine import Database
from app.services.sandbox_store import DatabaseSandboxStore
from providers.sandbox import faults
from providers.stripe_wire import sign_payload
from tests.conftest import DEV_SECRET, start_server
from tests.support.graphql import GET, GraphQLClient, confirm, create_intent


def stripe_event(event_id: str, kind: str, pi: dict, created: int | None = None) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": kind,
            "created": created or int(time.time()),
            "data": {"object": pi},
        }
    ).encode()


async def post_stripe(http, body: bytes, secret: str = "sandbox", at: int | None = None):
    header = sign_payload(body, secret, at or int(time.time()))
    return await http.post(
        "/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": header, "content-type": "application/json"},
    )


async def three_ds_intent(api) -> tuple[dict, str]:
    """An intent waiting for 3-D Secure, and Stripe's id for its payment."""
    intent = await create_intent(api)
    await confirm(api, intent["id"], card={"token": "tok_threeDSecureRequired"})
    events = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]["events"]
    provider_ref = next(
        e["data"]["provider_ref"] for e in events if e["type"] == "provider.response"
    )
    return intent, provider_ref


async def state(api, intent_id: str) -> dict:
    return (await api.data(GET, {"id": intent_id}))["paymentIntent"]


async def test_finishing_three_d_secure_settles_by_webhook(api, http):
    intent, _ = await three_ds_intent(api)
    response = await http.post(f"/sandbox/3ds/{intent['id']}/complete")
    assert response.json()["webhook_status"] == 200
    paid = await state(api, intent["id"])
    assert (paid["status"], paid["version"]) == ("SUCCEEDED", 3)
    assert paid["amountReceived"]["amount"] == "500.00"
    types = [e["type"] for e in paid["events"]]
    assert types[-2:] == ["webhook.received", "intent.succeeded"]


async def test_oxxo_through_stripe_end_to_end(api, http):
    intent = await create_intent(api, "250.00")
    voucher = (
        await confirm(api, intent["id"], "OXXO", oxxo={"customerName": "Ana", "expiresInDays": 2})
    )["paymentIntent"]
    assert voucher["status"] == "REQUIRES_ACTION"
    action = voucher["nextAction"]
    assert action["__typename"] == "OxxoVoucher"
    assert action["barcodeSvg"].startswith("<?xml") and "<svg" in action["barcodeSvg"]
    assert voucher["expiresAt"] == action["voucherExpiresAt"]
    paid = await http.post(f"/sandbox/oxxo/{action['reference']}/pay")
    assert paid.status_code == 200
    assert (await state(api, intent["id"]))["status"] == "SUCCEEDED"


async def test_a_replayed_event_is_applied_once_and_answered_200(api, http):
    intent, _ = await three_ds_intent(api)
    await http.post(f"/sandbox/3ds/{intent['id']}/complete")
    before = await state(api, intent["id"])
    again = await http.post("/sandbox/webhooks/redeliver", json={"count": 1})
    assert again.json()["statuses"] == [200]
    after = await state(api, intent["id"])
    assert after["version"] == before["version"]
    assert len(after["events"]) == len(before["events"])


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, None),  # no signature at all
        ({"Stripe-Signature": "t=1,v1=deadbeef"}, None),  # stale and wrong
        ("wrong-secret", None),
    ],
)
async def test_unsigned_webhooks_are_400_and_change_nothing(api, http, headers, body):
    intent, ref = await three_ds_intent(api)
    payload = body or stripe_event(
        "evt_bad",
        "payment_intent.succeeded",
        {"id": ref, "status": "succeeded", "amount_received": 50_000},
    )
    if headers == "wrong-secret":
        response = await post_stripe(http, payload, secret="whsec_not_ours")
    else:
        response = await http.post("/webhooks/stripe", content=payload, headers=headers)
    assert response.status_code == 400
    assert (await state(api, intent["id"]))["status"] == "REQUIRES_ACTION"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"this is not json", "not JSON"),
        (b'{"id": "evt_x"}', "event.type: expected a string, got null"),
        (
            b'{"id": "evt_x", "type": "payment_intent.succeeded", "created": "yesterday"}',
            "event.created: expected an integer, got a string",
        ),
    ],
)
async def test_signed_malformed_webhooks_are_kept_as_rejected_and_acknowledged(
    api, http, body, reason
):
    """Stripe sent it (the signature says so) and retries anything but a 2xx for three
    days: it is stored as rejected with its reason, acknowledged, and changes nothing."""
    intent, _ = await three_ds_intent(api)
    response = await post_stripe(http, body)
    assert response.status_code == 200
    [received] = response.json()["received"]
    assert received["outcome"] == "rejected"
    assert received["id"].startswith("rejected:")
    assert reason in received["reason"]
    again = await post_stripe(http, body)  # Stripe's retry: the same answer
    assert again.json() == response.json()
    assert (await state(api, intent["id"]))["status"] == "REQUIRES_ACTION"


async def test_unknown_provider_is_404(http):
    assert (await http.post("/webhooks/paypal", content=b"{}")).status_code == 404


async def test_events_out_of_order_never_move_backwards(api, http):
    intent, ref = await three_ds_intent(api)
    succeeded = stripe_event(
        "evt_ooo_2",
        "payment_intent.succeeded",
        {"id": ref, "status": "succeeded", "amount_received": 50_000},
    )
    processing = stripe_event(
        "evt_ooo_1", "payment_intent.processing", {"id": ref, "status": "processing"}
    )
    assert (await post_stripe(http, succeeded)).status_code == 200
    late = await post_stripe(http, processing)
    assert late.status_code == 200
    assert late.json()["received"][0]["outcome"] == "ignored"
    final = await state(api, intent["id"])
    assert final["status"] == "SUCCEEDED"
    assert final["events"][-1]["type"] == "webhook.ignored"
    assert "SUCCEEDED cannot become PROCESSING" in final["events"][-1]["data"]["reason"]


async def test_an_event_for_no_known_payment_is_kept_and_acknowledged(http):
    body = stripe_event(
        "evt_orphan_1",
        "payment_intent.succeeded",
        {"id": "pi_nobody", "status": "succeeded", "amount_received": 100},
    )
    response = await post_stripe(http, body)
    assert response.status_code == 200
    assert response.json()["received"] == [{"id": "evt_orphan_1", "outcome": "unmatched"}]


async def test_a_webhook_that_beats_the_confirmation_answer_settles_the_intent_once(
    database_url, monkeypatch
):
    """Stripe has made the voucher but its answer is late (the slow fault), and the
    customer pays at the store meanwhile: the event names Cobro's intent in its
    metadata and settles it at once; the late answer is recorded and moves nothing."""
    monkeypatch.setattr(faults, "SLOW_SECONDS", 2.0)
    thread = start_server(database_url, provider_timeout_seconds=10.0)
    try:
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as http:
            api = GraphQLClient(http, DEV_SECRET)
            await http.post("/sandbox/providers/stripe/faults", json={"mode": "slow"})
            intent = await create_intent(api, "250.00")
            confirming = asyncio.ensure_future(confirm(api, intent["id"], "OXXO", oxxo={}))
            voucher = await _stripe_voucher_of(database_url, intent["id"])
            paid = await http.post(f"/sandbox/oxxo/{voucher}/pay")
            assert paid.json()["webhook_status"] == 200  # applied before the answer came
            assert not confirming.done()
            payload = await confirming
            await http.post("/sandbox/providers/stripe/faults", json={"mode": "ok"})
            events = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]["events"]
    finally:
        thread.stop()
    assert payload["errors"] == []
    assert payload["paymentIntent"]["status"] == "SUCCEEDED"
    types = [e["type"] for e in events]
    assert types == [
        "intent.created",
        "provider.request",
        "webhook.received",
        "intent.succeeded",
        "provider.response",
    ]


async def _stripe_voucher_of(database_url: str, intent_id: str) -> str:
    """The OXXO number of the payment Stripe holds for this intent, read from the
    sandbox's own store (asking its API would wait out the slow fault too)."""
    store = DatabaseSandboxStore(Database(database_url))
    try:
        for _ in range(250):
            found = await store.find("stripe", "payment_intent", intent_id)
            if found:
                ((_, doc),) = found
                return str(doc.body["next_action"]["oxxo_display_details"]["number"])
            await asyncio.sleep(0.02)
    finally:
        await store.db.dispose()
    raise AssertionError("Stripe never made the voucher")
