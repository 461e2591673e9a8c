"""Conekta webhooks: the Digest signature, the events' mapping, and the webhooks the
emulator sends, read back in-process."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette

from app.clock import Clock
from providers.base import ProviderConfig, ProviderStatus, WebhookRejected
from providers.conekta import ConektaProvider
from providers.conekta_wire import sign_payload
from providers.sandbox.common import EmulatorConfig
from providers.sandbox.conekta import ConektaEmulator
from providers.sandbox.conekta_wire import SANDBOX_WEBHOOK_PRIVATE_KEY, sign_webhook
from providers.sandbox.state import SandboxState
from tests.providers.test_conekta import NOW, key, oxxo, spei, with_sandbox_key
from tests.support.sandbox import last_webhook, receive, settle


def order_event(kind: str = "order.paid", **order: object) -> bytes:
    obj = {
        "id": "ord_2tUigJ8DgBhbp6w5D",
        "object": "order",
        "payment_status": "paid",
        "charges": {
            "object": "list",
            "data": [
                {
                    "id": "63efa757cf65380001aec040",
                    "object": "charge",
                    "order_id": "ord_2tUigJ8DgBhbp6w5D",
                    "amount": 13500,
                    "status": "paid",
                    "payment_method": {"object": "cash_payment", "reference": "93000262276908"},
                }
            ],
        },
        **order,
    }
    event = {"id": "6307a60c41de27127515a575", "object": "event", "type": kind}
    return json.dumps({**event, "created_at": NOW, "data": {"object": obj}}).encode()


def other_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def adapter() -> ConektaProvider:
    return ConektaProvider(with_sandbox_key(ProviderConfig("http://conekta.invalid", "k")))


def test_the_digest_header_is_found_whatever_its_case(adapter):
    body = order_event()
    digest = sign_payload(body, SANDBOX_WEBHOOK_PRIVATE_KEY)
    for name in ("Digest", "digest", "DIGEST"):
        assert adapter.parse_webhook({name: digest}, body, NOW)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Digest": sign_payload(order_event(), other_private_key())}, order_event()),
        ({"Digest": "not base64!"}, order_event()),
        ({"Digest": base64.b64encode(b"short").decode()}, order_event()),
    ],
    ids=["wrong key", "not base64", "not a signature"],
)
def test_webhooks_that_do_not_verify_are_rejected(adapter, headers, body):
    with pytest.raises(WebhookRejected):
        adapter.parse_webhook(headers, body, NOW)


def test_order_paid_maps_to_succeeded_with_order_reference_and_amount(adapter):
    body = order_event("order.paid")
    [event] = adapter.parse_webhook(sign_webhook(body, NOW), body, NOW)
    assert event.status is ProviderStatus.SUCCEEDED
    assert event.provider_ref == "ord_2tUigJ8DgBhbp6w5D"
    assert event.lookup_key == "93000262276908"
    assert event.amount == 13500
    assert event.occurred_at == datetime.fromtimestamp(NOW, UTC)


def test_order_events_carry_the_intent_id_from_the_orders_metadata(adapter):
    body = order_event("order.paid", metadata={"cobro_intent_id": "pi_ours"})
    [event] = adapter.parse_webhook(sign_webhook(body, NOW), body, NOW)
    assert event.intent_hint == "pi_ours"
    for bare in (order_event("order.paid"), order_event("order.paid", metadata={"x": 1})):
        [event] = adapter.parse_webhook(sign_webhook(bare, NOW), bare, NOW)
        assert event.intent_hint is None


def test_charge_paid_for_spei_maps_to_succeeded_with_the_clabe(adapter):
    charge = {
        "id": "6408c87bde4b8e00010744e3",
        "object": "charge",
        "order_id": "ord_2tVLUFrQBB4HKz1zj",
        "amount": 40000,
        "status": "paid",
        "payment_method": {"object": "bank_transfer_payment", "clabe": "646180111805035472"},
    }
    body = json.dumps({"id": "e2", "type": "charge.paid", "data": {"object": charge}}).encode()
    [event] = adapter.parse_webhook(sign_webhook(body, NOW), body, NOW)
    assert event.status is ProviderStatus.SUCCEEDED
    assert event.provider_ref == "ord_2tVLUFrQBB4HKz1zj"
    assert event.lookup_key == "646180111805035472"
    assert event.amount == 40000
    assert event.intent_hint is None  # a charge carries no order metadata


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("order.pending_payment", ProviderStatus.REQUIRES_ACTION),
        ("order.expired", ProviderStatus.EXPIRED),
        ("charge.expired", ProviderStatus.EXPIRED),
        ("order.canceled", ProviderStatus.CANCELED),
        ("charge.declined", ProviderStatus.FAILED),
        ("order.updated", None),  # not acted on, still acknowledged
    ],
)
def test_event_types_map_through_the_table(adapter, kind, status):
    body = order_event(kind, payment_status="pending_payment")
    [event] = adapter.parse_webhook(sign_webhook(body, NOW), body, NOW)
    assert event.status is status
    assert event.type == kind
    assert event.amount is None


def test_order_refunded_names_the_refund(adapter):
    refund = {"id": "6407b5bee1329a000175ba11", "object": "refund", "amount": -13500}
    body = order_event("order.refunded", payment_status="refunded")
    event_json = json.loads(body)
    charge = event_json["data"]["object"]["charges"]["data"][0]
    charge.update(status="refunded", refunds={"object": "list", "data": [refund]})
    body = json.dumps(event_json).encode()
    [event] = adapter.parse_webhook(sign_webhook(body, NOW), body, NOW)
    assert event.status is ProviderStatus.SUCCEEDED
    assert event.refund_ref == "6407b5bee1329a000175ba11"
    # Refund news names the refund alone, so the core applies it to the refund.
    assert (event.provider_ref, event.lookup_key, event.amount) == (None, None, None)


# -- the emulator's own webhooks, read in-process --------------------------------------


@pytest.fixture
async def in_process():
    """An emulator without a server, so its sent webhooks can be read back."""
    state = SandboxState(clock=Clock(), public_url="http://cobro.test")
    emulator = ConektaEmulator(state, EmulatorConfig("sandbox", "sandbox", "unused"))
    transport = httpx.ASGITransport(app=Starlette(routes=emulator.routes()))
    config = with_sandbox_key(ProviderConfig("http://conekta.test", "sandbox"))
    adapter = ConektaProvider(config, transport=transport)
    yield emulator, adapter
    await adapter.aclose()


async def test_the_webhook_after_a_spei_transfer_carries_the_clabe(in_process):
    emulator, adapter = in_process
    payment = await adapter.create_payment(spei(50_000), key())
    clabe = payment.lookup_keys[0]
    await receive(emulator, f"clabe:{clabe}", 49_999)
    # a short transfer is returned, and Conekta says nothing
    assert not await emulator.store.recent_webhooks(1)
    await receive(emulator, f"clabe:{clabe}", 50_000)
    [event] = adapter.parse_webhook(*await last_webhook(emulator, NOW), NOW)
    assert (event.type, event.status) == ("order.paid", ProviderStatus.SUCCEEDED)
    assert (event.provider_ref, event.lookup_key) == (payment.provider_ref, clabe)
    assert event.amount == 50_000


async def test_an_expired_voucher_can_no_longer_be_paid(in_process):
    emulator, adapter = in_process
    payment = await adapter.create_payment(oxxo(), key())
    emulator.state.clock.advance(8 * 86_400)
    assert await settle(emulator, f"oxxo:{payment.next_action.reference}") is None
    assert (await adapter.fetch_payment(payment.provider_ref)).status is ProviderStatus.EXPIRED
