"""The Stripe adapter against the Stripe emulator, over real HTTP (in-process where a
test reads the webhooks the emulator sends)."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import httpx
import pytest
import stripe

from app.domain.methods import PaymentMethodType
from app.domain.money import Currency, Money
from app.domain.next_action import OxxoVoucher, RedirectToUrl
from providers.base import (
    PaymentRequest,
    ProviderConfig,
    ProviderStatus,
    RefundRequest,
    WebhookRejected,
)
from providers.stripe import StripeProvider
from providers.stripe_wire import payment_from_stripe, sign_payload, verify_signature


def card(token: str, intent_id: str = "pi_test", amount: int = 50_000) -> PaymentRequest:
    return PaymentRequest(
        intent_id=intent_id,
        amount=Money(amount, Currency.MXN),
        method=PaymentMethodType.CARD,
        card_token=token,
    )


@pytest.fixture
async def stripe_adapter(provider_config):
    adapter = StripeProvider(provider_config("stripe"))
    yield adapter
    await adapter.aclose()


async def test_tok_visa_succeeds(stripe_adapter):
    payment = await stripe_adapter.create_payment(card("tok_visa"), "key-visa-1")
    assert payment.status is ProviderStatus.SUCCEEDED
    assert payment.provider_ref.startswith("pi_")
    assert payment.amount_received == 50_000


async def test_declined_card_is_an_answer_not_an_error(stripe_adapter):
    payment = await stripe_adapter.create_payment(card("tok_chargeDeclined"), "key-decline-1")
    assert payment.status is ProviderStatus.FAILED
    assert payment.error_code == "CARD_DECLINED"
    assert payment.provider_ref.startswith("pi_")


async def test_a_card_error_that_is_no_decline_is_still_card_declined(stripe_adapter):
    payment = await stripe_adapter.create_payment(
        card("tok_chargeDeclinedProcessingError"), "key-processing-1"
    )
    message = "An error occurred while processing your card. Try again in a little bit."
    assert (payment.status, payment.error_code) == (ProviderStatus.FAILED, "CARD_DECLINED")
    assert payment.error_message == message
    assert payment.raw["code"] == "processing_error"  # Stripe's own code stays in raw
    fetched = await stripe_adapter.fetch_payment(payment.provider_ref)
    assert (fetched.status, fetched.error_code) == (ProviderStatus.FAILED, "CARD_DECLINED")
    assert fetched.error_message == message


@pytest.mark.parametrize("code", ["authentication_required", "processing_error", "new_code"])
async def test_every_card_error_is_card_declined_with_stripes_message(code):
    message = "Your card was declined. This transaction requires authentication."
    error = {"type": "card_error", "code": code, "message": message}
    intent = {"id": "pi_1", "status": "requires_payment_method", "last_payment_error": error}
    answer = httpx.Response(402, json={"error": {**error, "payment_intent": intent}})
    adapter = StripeProvider(
        ProviderConfig("http://stripe.test", "sk"), transport=httpx.MockTransport(lambda _: answer)
    )
    payment = await adapter.create_payment(card("tok_any"), "key-card-error-1")
    await adapter.aclose()
    assert (payment.provider_ref, payment.status) == ("pi_1", ProviderStatus.FAILED)
    assert (payment.error_code, payment.error_message) == ("CARD_DECLINED", message)
    fetched = payment_from_stripe(intent)  # as fetch_payment and webhooks read it
    assert (fetched.error_code, fetched.error_message) == ("CARD_DECLINED", message)


def test_an_earlier_error_on_an_intent_that_moved_on_is_not_reported():
    error = {"type": "card_error", "code": "card_declined", "message": "declined"}
    intent = {"id": "pi_1", "status": "requires_action", "last_payment_error": error}
    payment = payment_from_stripe(intent)
    assert (payment.status, payment.error_code, payment.error_message) == (
        ProviderStatus.REQUIRES_ACTION,
        None,
        None,
    )


async def test_three_d_secure_needs_a_redirect(stripe_adapter, server):
    payment = await stripe_adapter.create_payment(
        card("tok_threeDSecureRequired", "pi_3ds"), "k3ds"
    )
    assert payment.status is ProviderStatus.REQUIRES_ACTION
    assert isinstance(payment.next_action, RedirectToUrl)
    assert payment.next_action.url == f"{server.url}/sandbox/3ds/pi_3ds"


def test_the_prepared_request_is_all_a_payment_depends_on(stripe_adapter):
    request = replace(card("tok_visa"), return_url="https://a.example/r", attempt_id="pp_1")
    wire = stripe_adapter.prepare_payment(request, "key-wire-1")
    assert (wire.method, wire.path) == ("POST", "/v1/payment_intents")
    assert b"return_url=https%3A%2F%2Fa.example%2Fr" in wire.body
    assert b"metadata%5Bcobro_attempt_id%5D=pp_1" in wire.body


async def test_oxxo_gives_a_voucher(stripe_adapter):
    request = PaymentRequest(
        intent_id="pi_oxxo",
        amount=Money(20_000, Currency.MXN),
        method=PaymentMethodType.OXXO,
        customer_name="Ana",
        customer_email="ana@example.test",
        expires_in_days=3,
    )
    payment = await stripe_adapter.create_payment(request, "key-oxxo-1")
    assert payment.status is ProviderStatus.REQUIRES_ACTION
    voucher = payment.next_action
    assert isinstance(voucher, OxxoVoucher)
    assert voucher.reference.isdigit() and len(voucher.reference) == 14
    assert voucher.reference in payment.lookup_keys
    assert voucher.expires_at.timestamp() > time.time() + 2 * 86_400


async def test_a_paid_card_is_refunded(stripe_adapter):
    paid = await stripe_adapter.create_payment(card("tok_visa"), "key-refund-1")
    refund = await stripe_adapter.refund(
        RefundRequest("re_1", "pi_x", Money(10_000, Currency.MXN), provider_ref=paid.provider_ref),
        "key-refund-1-r",
    )
    assert refund.status is ProviderStatus.SUCCEEDED


# -- webhook signatures: our scheme is Stripe's scheme ---------------------------------

BODY = json.dumps(
    {
        "id": "evt_1",
        "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_1", "status": "succeeded"}},
    }
).encode()


def test_stripes_own_verifier_accepts_our_signature():
    now = int(time.time())
    header = sign_payload(BODY, "whsec_test", now)
    event = stripe.Webhook.construct_event(BODY.decode(), header, "whsec_test")
    assert event["id"] == "evt_1"


def test_we_accept_stripes_own_signature():
    now = int(time.time())
    signature = stripe.WebhookSignature._compute_signature(f"{now}.{BODY.decode()}", "whsec_test")
    verify_signature(BODY, f"t={now},v1={signature}", ("whsec_test",), now=now)


def test_any_v1_may_match_during_secret_rotation():
    now = int(time.time())
    old = sign_payload(BODY, "whsec_old", now).split("v1=")[1]
    new = sign_payload(BODY, "whsec_new", now).split("v1=")[1]
    verify_signature(BODY, f"t={now},v1={old},v1={new}", ("whsec_new",), now=now)
    verify_signature(BODY, f"t={now},v1={new}", ("whsec_old", "whsec_new"), now=now)


@pytest.mark.parametrize(
    "header",
    ["", "t=abc,v1=00", "v1=00", "t=123", "garbage", "t=,v1="],
)
def test_malformed_signature_headers_are_rejected(header):
    with pytest.raises(WebhookRejected):
        verify_signature(BODY, header, ("whsec_test",), now=int(time.time()))


@pytest.mark.parametrize(
    ("signed_with", "verified_with", "body"),
    [
        ("whsec_test", ("whsec_other",), BODY),  # wrong secret
        ("", ("",), BODY),  # an empty secret must never verify: anyone could forge it
        ("whsec_test", ("whsec_test",), BODY + b" "),  # body changed after signing
    ],
)
def test_signatures_that_do_not_match_are_rejected(signed_with, verified_with, body):
    now = int(time.time())
    with pytest.raises(WebhookRejected, match="no v1 signature matches"):
        verify_signature(body, sign_payload(BODY, signed_with, now), verified_with, now=now)


def test_stale_timestamps_are_rejected_after_300_seconds():
    now = int(time.time())
    verify_signature(BODY, sign_payload(BODY, "s", now - 299), ("s",), now=now)
    with pytest.raises(WebhookRejected, match="tolerance"):
        verify_signature(BODY, sign_payload(BODY, "s", now - 301), ("s",), now=now)


# -- webhooks name our intent ---------------------------------------------------------------


def stripe_event(kind: str, obj: dict) -> bytes:
    return json.dumps({"id": "evt_2", "type": kind, "created": 1, "data": {"object": obj}}).encode()


def test_payment_events_carry_the_intent_id_from_metadata_and_refunds_do_not():
    now = int(time.time())
    adapter = StripeProvider(ProviderConfig("http://stripe.invalid", "sk", webhook_secrets=("s",)))
    paid = {"id": "pi_1", "status": "succeeded", "metadata": {"cobro_intent_id": "pi_ours"}}
    refund = {"id": "re_1", "status": "succeeded", "metadata": {"cobro_refund_id": "re_ours"}}
    bare = {"id": "pi_2", "status": "processing"}
    hints = []
    for kind, obj in [
        ("payment_intent.succeeded", paid),
        ("refund.updated", refund),
        ("payment_intent.processing", bare),
    ]:
        body = stripe_event(kind, obj)
        [event] = adapter.parse_webhook(
            {"stripe-signature": sign_payload(body, "s", now)}, body, now
        )
        hints.append(event.intent_hint)
    assert hints == ["pi_ours", None, None]


async def test_the_emulator_answers_amounts_too_large_for_64_bits(sandbox):
    """Its JSON encoder (orjson) refuses such integers; the emulator still answers."""
    huge = "9" * 30
    response = await sandbox.post(
        "/stripe/v1/payment_intents",
        data={
            "amount": huge,
            "currency": "mxn",
            "payment_method_data[type]": "card",
            "payment_method_data[card][token]": "tok_visa",
        },
        headers={"Authorization": "Bearer sandbox", "Idempotency-Key": "huge-1"},
    )
    assert response.status_code == 200
    assert response.json()["amount"] == int(huge)
