"""The Conekta adapter against the Conekta emulator, over real HTTP. Its webhooks, and
those the emulator sends: test_conekta_webhooks.py."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.domain.clabe import is_valid_clabe
from app.domain.expiry import oxxo_expires_at
from app.domain.methods import PaymentMethodType
from app.domain.money import Currency, Money
from app.domain.next_action import OxxoVoucher, RedirectToUrl, SpeiInstructions
from providers.base import (
    INVALID_REQUEST,
    PaymentRequest,
    ProviderConfig,
    ProviderError,
    ProviderStatus,
    RefundRequest,
)
from providers.conekta import ConektaProvider
from providers.sandbox.conekta import (
    ConektaEmulator,
)

NOW = int(time.time())


def key() -> str:
    """A fresh Idempotency-Key: the session server outlives any one test."""
    return f"key-{uuid.uuid4()}"


def card(token: str, intent_id: str = "pi_test", amount: int = 50_000) -> PaymentRequest:
    return PaymentRequest(
        intent_id=intent_id,
        amount=Money(amount, Currency.MXN),
        method=PaymentMethodType.CARD,
        card_token=token,
    )


def oxxo(amount: int = 20_000) -> PaymentRequest:
    return PaymentRequest(
        intent_id=f"pi_{uuid.uuid4().hex}",
        amount=Money(amount, Currency.MXN),
        method=PaymentMethodType.OXXO,
        customer_name="Ana",
        customer_email="ana@example.test",
        expires_in_days=3,
        expires_at=oxxo_expires_at(datetime.now(UTC), 3),
    )


def spei(amount: int = 50_000, reference_number: int = 42) -> PaymentRequest:
    return PaymentRequest(
        intent_id=f"pi_{uuid.uuid4().hex}",
        amount=Money(amount, Currency.MXN),
        method=PaymentMethodType.SPEI,
        expires_at=datetime.now(UTC) + timedelta(hours=72),
        reference_number=reference_number,
    )


def with_sandbox_key(config: ProviderConfig) -> ProviderConfig:
    return replace(config, options=ConektaEmulator.ADAPTER_OPTIONS)


@pytest.fixture
async def conekta(provider_config):
    adapter = ConektaProvider(with_sandbox_key(provider_config("conekta")))
    yield adapter
    await adapter.aclose()


# -- cards -----------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["tok_visa", "tok_mastercard"])
async def test_sandbox_success_tokens_are_paid(conekta, token):
    payment = await conekta.create_payment(card(token), key())
    assert payment.status is ProviderStatus.SUCCEEDED
    assert payment.provider_ref.startswith("ord_")
    assert payment.amount_received == 50_000
    assert payment.lookup_keys == ()


async def test_declined_card_is_an_answer_not_an_error(conekta):
    payment = await conekta.create_payment(card("tok_chargeDeclined"), key())
    assert payment.status is ProviderStatus.FAILED
    assert payment.error_code == "CARD_DECLINED"
    assert payment.provider_ref.startswith("ord_")
    fetched = await conekta.fetch_payment(payment.provider_ref)
    assert fetched.status is ProviderStatus.FAILED
    assert fetched.amount_received == 0


@pytest.mark.parametrize(
    "code",
    [
        "conekta.errors.processing.charge.card_payment.suspicious_behaviour",
        "conekta.errors.processing.antifraud.rejected",  # outside any decline list
        "",
    ],
)
async def test_every_402_is_card_declined_with_conektas_message(code):
    detail = {"code": code, "message": "La tarjeta no pudo ser procesada."}
    order = {"id": "ord_1", "object": "order", "payment_status": "declined"}
    body = {"object": "error", "type": "processing_error", "details": [detail], "data": order}
    transport = httpx.MockTransport(lambda _: httpx.Response(402, json=body))
    adapter = ConektaProvider(ProviderConfig("http://conekta.test", "k"), transport=transport)
    payment = await adapter.create_payment(card("tok_any"), key())
    await adapter.aclose()
    assert (payment.provider_ref, payment.status) == ("ord_1", ProviderStatus.FAILED)
    assert payment.error_code == "CARD_DECLINED"
    assert payment.error_message == "La tarjeta no pudo ser procesada."


async def test_three_d_secure_redirects_and_completing_it_pays(conekta, server, sandbox):
    intent_id = f"pi_{uuid.uuid4().hex}"
    request = replace(
        card("tok_threeDSecureRequired", intent_id),
        return_url=f"https://shop.example/payments/{intent_id}/return",
    )
    payment = await conekta.create_payment(request, key())
    assert payment.status is ProviderStatus.REQUIRES_ACTION
    assert isinstance(payment.next_action, RedirectToUrl)
    assert payment.next_action.url == f"{server.url}/sandbox/3ds/{intent_id}"
    assert payment.next_action.return_url == request.return_url
    done = await sandbox.post(f"/3ds/{intent_id}/complete")
    assert done.status_code == 200
    assert (await conekta.fetch_payment(payment.provider_ref)).status is ProviderStatus.SUCCEEDED


# -- OXXO and SPEI ---------------------------------------------------------------------


async def test_oxxo_gives_a_voucher_with_its_reference_as_lookup_key(conekta):
    request = oxxo()
    payment = await conekta.create_payment(request, key())
    assert payment.status is ProviderStatus.REQUIRES_ACTION
    voucher = payment.next_action
    assert isinstance(voucher, OxxoVoucher)
    assert voucher.reference.isdigit() and len(voucher.reference) == 14
    assert voucher.expires_at == request.expires_at.replace(microsecond=0)
    assert voucher.hosted_voucher_url is None  # Conekta hosts no voucher page
    assert payment.lookup_keys == (voucher.reference,)


async def test_oxxo_outside_10_to_10000_pesos_is_refused(conekta):
    for amount in (9_99, 10_000_01):
        with pytest.raises(ProviderError) as caught:
            await conekta.create_payment(oxxo(amount), key())
        assert caught.value.code == INVALID_REQUEST
        assert not caught.value.retryable


async def test_spei_gives_a_valid_stp_clabe_as_lookup_key(conekta):
    payment = await conekta.create_payment(spei(reference_number=42), key())
    assert payment.status is ProviderStatus.REQUIRES_ACTION
    instructions = payment.next_action
    assert isinstance(instructions, SpeiInstructions)
    assert is_valid_clabe(instructions.clabe)
    assert instructions.clabe.startswith("646")
    assert instructions.bank == "STP"
    assert instructions.beneficiary == "Cobro"
    assert instructions.reference == "43"  # referencia numérica from the attempt's number
    assert instructions.expires_at is not None
    assert payment.lookup_keys == (instructions.clabe,)


async def test_every_spei_order_gets_its_own_clabe(conekta):
    clabes = {(await conekta.create_payment(spei(), key())).lookup_keys[0] for _ in range(3)}
    assert len(clabes) == 3


# -- idempotency, fetch, cancel, refund ------------------------------------------------


async def test_fetching_an_unknown_order_is_refused(conekta):
    with pytest.raises(ProviderError) as caught:
        await conekta.fetch_payment("ord_doesnotexist00000")
    assert caught.value.code == INVALID_REQUEST
    assert "404" in caught.value.message


async def test_a_paid_order_cannot_be_canceled(conekta):
    paid = await conekta.create_payment(card("tok_visa"), key())
    with pytest.raises(ProviderError) as caught:
        await conekta.cancel_payment(paid.provider_ref, key())
    assert caught.value.code == INVALID_REQUEST
    assert "428" in caught.value.message


async def test_card_refund_succeeds_up_to_what_was_paid(conekta):
    paid = await conekta.create_payment(card("tok_visa"), key())
    refund = await conekta.refund(
        RefundRequest("re_1", "pi_x", Money(10_000, Currency.MXN), provider_ref=paid.provider_ref),
        key(),
    )
    assert refund.status is ProviderStatus.SUCCEEDED
    assert refund.provider_ref
    assert (await conekta.fetch_payment(paid.provider_ref)).status is ProviderStatus.SUCCEEDED
    with pytest.raises(ProviderError) as caught:
        await conekta.refund(
            RefundRequest("re_2", "pi_x", Money(45_000, Currency.MXN), paid.provider_ref), key()
        )
    assert caught.value.code == INVALID_REQUEST


# -- faults ----------------------------------------------------------------------------


# -- settling through the sandbox controls ---------------------------------------------


async def test_an_exact_spei_transfer_pays_the_order(conekta, sandbox):
    payment = await conekta.create_payment(spei(50_000), key())
    sent = await sandbox.post(
        "/spei/deposits", json={"clabe": payment.lookup_keys[0], "amount": "500.00"}
    )
    assert sent.status_code == 200
    fetched = await conekta.fetch_payment(payment.provider_ref)
    assert fetched.status is ProviderStatus.SUCCEEDED
    assert fetched.amount_received == 50_000
    # Paid in full or not at all, by one order.paid under Conekta's own event id: there
    # is no per-transfer Deposit to name (see providers/conekta.py).
    assert fetched.deposits == ()


async def test_a_spei_transfer_of_another_amount_is_returned(conekta, sandbox):
    payment = await conekta.create_payment(spei(50_000), key())
    for amount in ("499.99", "500.01"):
        sent = await sandbox.post(
            "/spei/deposits", json={"clabe": payment.lookup_keys[0], "amount": amount}
        )
        assert sent.status_code == 200
        assert sent.json()["webhook_status"] is None  # no webhook for a returned transfer
    fetched = await conekta.fetch_payment(payment.provider_ref)
    assert fetched.status is ProviderStatus.REQUIRES_ACTION
    assert fetched.amount_received == 0
