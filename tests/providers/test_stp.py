"""The STP adapter against the STP emulator over real HTTP (and in-process where a test
reads the callbacks the emulator sends). Its pure wire pieces: test_stp_wire.py."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_public_key,
)

from app.domain.clabe import is_valid_clabe
from app.domain.errors import InvalidClabe
from app.domain.ids import new_id
from app.domain.methods import PaymentMethodType
from app.domain.money import Currency, Money
from app.domain.next_action import SpeiInstructions
from providers.base import (
    INVALID_REQUEST,
    PaymentRequest,
    ProviderConfig,
    ProviderError,
    ProviderStatus,
    RefundRequest,
)
from providers.sandbox.stp import SANDBOX_PUBLIC_PEM, StpEmulator
from providers.stp import StpProvider
from providers.stp_wire import (
    ORDEN_FIELDS,
    assigned_clabe,
    cadena_original,
    clave_rastreo,
)

PREFIX = StpEmulator.ADAPTER_OPTIONS["clabe_prefix"]
CUSTOMER_CLABE = "012180004643051249"  # BBVA, from cuenca-mx/cep-python's README


def stp_config(provider_config, **options: str) -> ProviderConfig:
    """provider_config carries no options; STP's come from its emulator."""
    base = provider_config("stp")
    return dataclasses.replace(base, options={**StpEmulator.ADAPTER_OPTIONS, **options})


def spei(reference_number: int | None = None) -> PaymentRequest:
    return PaymentRequest(
        intent_id="pi_stp",
        amount=Money(50_000, Currency.MXN),
        method=PaymentMethodType.SPEI,
        expires_at=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
        reference_number=reference_number or secrets.randbelow(10**7 - 1) + 1,
    )


def refund_request(refund_id: str | None = None, clabe: str = CUSTOMER_CLABE) -> RefundRequest:
    return RefundRequest(
        refund_id=refund_id or new_id("re"),
        intent_id="pi_test0001",
        amount=Money(123_456, Currency.MXN),
        clabe=clabe,
        beneficiary="José Pérez-López",
    )


@pytest.fixture
async def stp(provider_config):
    adapter = StpProvider(stp_config(provider_config))
    yield adapter
    await adapter.aclose()


# -- pay-in: one registered CLABE per attempt ---------------------------------------------


async def test_create_payment_gives_spei_instructions_for_a_fresh_clabe(stp):
    request = spei(1_234_567)
    payment = await stp.create_payment(request, "stp-create-1")
    instructions = payment.next_action
    assert payment.status is ProviderStatus.REQUIRES_ACTION
    assert isinstance(instructions, SpeiInstructions)
    assert instructions.clabe == payment.provider_ref == assigned_clabe(PREFIX, 1_234_567)
    assert is_valid_clabe(instructions.clabe) and instructions.clabe.startswith(PREFIX)
    assert (instructions.bank, instructions.beneficiary) == ("STP", "COBRO")
    assert instructions.reference == "1234567"
    assert instructions.expires_at == request.expires_at
    assert payment.lookup_keys == (instructions.clabe,)


async def test_a_deposit_to_the_clabe_is_received_right_after_create(stp, server):
    payment = await stp.create_payment(spei(), "stp-deposit-1")
    assert (await stp.fetch_payment(payment.provider_ref)).status is (
        ProviderStatus.REQUIRES_ACTION
    )
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{server.url}/sandbox/spei/deposits",
            json={"clabe": payment.provider_ref, "amount": "500.00"},
        )
    assert response.status_code == 200
    assert response.json()["clabe"] == payment.provider_ref
    fetched = await stp.fetch_payment(payment.provider_ref)
    assert fetched.status is ProviderStatus.SUCCEEDED
    assert fetched.amount_received == 50_000
    [deposit] = fetched.deposits
    assert deposit.amount == 50_000 and deposit.event_id.startswith("abono:")


async def test_cancel_deregisters_the_clabe_so_deposits_no_longer_land(stp, server):
    payment = await stp.create_payment(spei(), "stp-cancel-1")
    canceled = await stp.cancel_payment(payment.provider_ref, "stp-cancel-1-c")
    assert canceled.status is ProviderStatus.CANCELED
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{server.url}/sandbox/spei/deposits",
            json={"clabe": payment.provider_ref, "amount": "500.00"},
        )
    assert response.status_code == 404


# -- the cadena original and its firma ----------------------------------------------------


async def test_the_refund_order_on_the_wire_has_the_exact_cadena_and_a_valid_firma():
    sent: list[httpx.Request] = []

    def stp_answers(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"resultado": {"id": 7}})

    config = ProviderConfig("http://stp.test", "", options=StpEmulator.ADAPTER_OPTIONS)
    adapter = StpProvider(config, transport=httpx.MockTransport(stp_answers))
    refund = await adapter.refund(refund_request("re_test0001"), "stp-wire-1")
    await adapter.aclose()
    assert refund.provider_ref == "7"
    [request] = sent
    assert (request.method, request.url.path) == ("PUT", "/speiws/rest/ordenPago/registra")
    assert b'"monto": 1234.56,' in request.content  # a JSON number, as STP takes it
    order = json.loads(request.content, parse_float=Decimal)
    firma = base64.b64decode(order.pop("firma"))
    cadena = cadena_original(order, ORDEN_FIELDS)
    # contraparte, empresa, fecha, folio, rastreo, operante, monto, tipoPago,
    # tipoCuentaOrdenante, nombreOrdenante, cuentaOrdenante, rfcCurpOrdenante,
    # tipoCuentaBeneficiario, nombre, cuenta, rfcCurp, email, the four *2 fields, concepto,
    # concepto2, claveCat1, claveCat2, clavePago, refCobranza, referenciaNumerica (derived
    # from the refund id), tipoOperacion, topologia, usuario, medioEntrega, prioridad, iva.
    assert cadena == (
        "||40012|COBRO|||retest0001|90646|1234.56|1|40||646180123500000017||40|"
        "JOSE PEREZ-LOPEZ|012180004643051249|ND||||||DEVOLUCION pi_test0001||||||4169928|"
        "|T||3|0|||"
    )
    public_key = load_pem_public_key(SANDBOX_PUBLIC_PEM.encode())
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(firma, cadena.encode(), padding.PKCS1v15(), SHA256())


# -- refunds: outgoing orders -------------------------------------------------------------


async def test_refund_registers_an_order_and_returns_its_folio(stp):
    refund = await stp.refund(refund_request(), "stp-refund-1")
    assert refund.status is ProviderStatus.PENDING
    assert refund.provider_ref.isdigit() and int(refund.provider_ref) > 0


async def test_a_refund_retried_after_its_answer_was_lost_gets_the_first_order(stp):
    # The first try reached STP (its answer lost); the retry's claveRastreo is a
    # duplicate (-1), and the adapter finds the order by it instead of failing.
    request = refund_request()
    first = await stp.refund(request, "stp-retry-1")
    again = await stp.refund(request, "stp-retry-1")
    assert again.provider_ref == first.provider_ref
    assert again.status in {ProviderStatus.PENDING, ProviderStatus.SUCCEEDED}  # it may settle
    assert again.raw["claveRastreo"] == clave_rastreo(request.refund_id)


async def test_a_clave_rastreo_used_for_another_amount_is_still_refused(stp):
    request = refund_request()
    await stp.refund(request, "stp-dup-1")
    other = dataclasses.replace(request, amount=Money(1_000, Currency.MXN))
    with pytest.raises(ProviderError) as caught:
        await stp.refund(other, "stp-dup-2")
    assert not caught.value.retryable
    assert caught.value.code == INVALID_REQUEST
    assert "ya fue utilizada" in caught.value.message
    assert "STP error -1" in caught.value.message


def duplicate_then(found: dict | None, sent: list[httpx.Request]) -> httpx.MockTransport:
    """STP refusing the order as a duplicate, then answering consOrdEnvRastreo with `found`
    (None: STP's "No se encontró la orden")."""

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.url.path.endswith("/registra"):
            error = "La clave de rastreo {retest0002} para la fecha {20240517} ya fue utilizada"
            return httpx.Response(200, json={"resultado": {"id": -1, "descripcionError": error}})
        if found is None:
            error = "No se encontró la orden con rastreo retest0002"
            return httpx.Response(200, json={"resultado": {"id": -100, "descripcionError": error}})
        return httpx.Response(200, json={"resultado": {"id": 1, "ordenPago": found}})

    return httpx.MockTransport(answer)


@pytest.mark.parametrize(
    ("estado", "status"),
    [
        ("E", ProviderStatus.PENDING),
        ("LQ", ProviderStatus.SUCCEEDED),
        ("D", ProviderStatus.FAILED),
        ("XYZ", ProviderStatus.PENDING),
    ],
)
async def test_the_order_found_by_its_clave_rastreo_answers_the_retry(estado, status):
    sent: list[httpx.Request] = []
    found = {"idEF": 7838161, "claveRastreo": "retest0002", "estado": estado}
    found |= {"cuentaBeneficiario": CUSTOMER_CLABE, "monto": 1234.56, "fechaOperacion": 20240517}
    config = ProviderConfig("http://stp.test", "", options=StpEmulator.ADAPTER_OPTIONS)
    adapter = StpProvider(config, transport=duplicate_then(found, sent))
    refund = await adapter.refund(refund_request("re_test0002"), "stp-found-1")
    await adapter.aclose()
    assert (refund.provider_ref, refund.status) == ("7838161", status)
    query = json.loads(sent[1].content)
    assert sent[1].url.path == "/speiws/rest/ordenPago/consOrdEnvRastreo"
    assert {k: query[k] for k in ("empresa", "claveRastreo", "institucionOperante")} == {
        "empresa": "COBRO",
        "claveRastreo": "retest0002",
        "institucionOperante": 90646,
    }
    public_key = load_pem_public_key(SANDBOX_PUBLIC_PEM.encode())
    assert isinstance(public_key, rsa.RSAPublicKey)
    cadena = "|||COBRO|||retest0002|90646" + "|" * 30  # stpmex-python's query cadena
    public_key.verify(
        base64.b64decode(query["firma"]), cadena.encode(), padding.PKCS1v15(), SHA256()
    )


async def test_a_clave_rastreo_used_but_not_found_is_an_unknown_outcome():
    config = ProviderConfig("http://stp.test", "", options=StpEmulator.ADAPTER_OPTIONS)
    adapter = StpProvider(config, transport=duplicate_then(None, []))
    with pytest.raises(ProviderError) as caught:
        await adapter.refund(refund_request("re_test0002"), "stp-lost-1")
    await adapter.aclose()
    # Money may have moved, and a new try could send it twice: neither retry nor forget.
    assert (caught.value.retryable, caught.value.outcome_unknown) == (False, True)
    assert "consOrdEnvRastreo" in caught.value.message


async def test_a_firma_from_another_key_is_refused(provider_config):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    adapter = StpProvider(stp_config(provider_config, private_key=pem))
    try:
        with pytest.raises(ProviderError) as refund_error:
            await adapter.refund(refund_request(), "stp-badfirma-1")
        with pytest.raises(ProviderError) as create_error:
            await adapter.create_payment(spei(), "stp-badfirma-2")
    finally:
        await adapter.aclose()
    for caught in (refund_error, create_error):
        assert not caught.value.retryable
        assert caught.value.code == "PROVIDER_AUTH"
    assert "Error validando la firma" in refund_error.value.message
    assert "Firma Invalida" in create_error.value.message


async def test_an_invalid_beneficiary_clabe_fails_before_any_call():
    calls: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(500))
    config = ProviderConfig("http://stp.test", "", options=StpEmulator.ADAPTER_OPTIONS)
    adapter = StpProvider(config, transport=transport)
    with pytest.raises(InvalidClabe):
        await adapter.refund(refund_request(clabe="012180004643051240"), "stp-badclabe-1")
    await adapter.aclose()
    assert calls == []


async def test_stp_down_is_retryable(stp, sandbox, faults):
    faults.append("stp")
    await sandbox.post("/providers/stp/faults", json={"mode": "down"})
    with pytest.raises(ProviderError) as caught:
        await stp.refund(refund_request(), "stp-down-1")
    assert caught.value.retryable
    assert "503" in caught.value.message


def test_the_adapter_refuses_to_start_without_its_options():
    with pytest.raises(ValueError, match="rfc"):
        StpProvider(
            ProviderConfig("http://stp.test", "", options={"empresa": "COBRO"}),
        )
