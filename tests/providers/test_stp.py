"""The STP adapter against the STP emulator over real HTTP, plus its pure wire pieces:
the CLABEs it assigns, the cadena original and firma, and callback verification."""

from __future__ import annotations

import asyncio
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
from starlette.applications import Starlette
from starlette.routing import Mount

from app.clock import Clock
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
    WebhookRejected,
)
from providers.sandbox.common import EmulatorConfig
from providers.sandbox.state import SandboxState
from providers.sandbox.stp import SANDBOX_PUBLIC_PEM, StpEmulator
from providers.stp import (
    ORDEN_FIELDS,
    StpProvider,
    abono_reply,
    assigned_clabe,
    cadena_original,
    clave_rastreo,
    monto_text,
    sign_callback,
    stp_json,
)

PREFIX = StpEmulator.ADAPTER_OPTIONS["clabe_prefix"]
CUSTOMER_CLABE = "012180004643051249"  # BBVA, from cuenca-mx/cep-python's README
SECRET = "sandbox"  # what provider_config("stp") puts in webhook_secrets


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


def test_assigned_clabes_are_valid_prefixed_and_one_per_reference_number():
    clabes = [assigned_clabe(PREFIX, n) for n in range(1, 2_001)]
    assert all(is_valid_clabe(c) and c.startswith(PREFIX) for c in clabes)
    assert len(set(clabes)) == len(clabes)
    assert assigned_clabe(PREFIX, 42) == "646180123400000421"  # 6461801234 + 0000042 + 1


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


async def test_creating_the_same_attempt_again_reuses_its_clabe(stp):
    request = spei()
    first = await stp.create_payment(request, "stp-again-1")
    again = await stp.create_payment(request, "stp-again-1")  # STP: "Cuenta Duplicada"
    assert again.provider_ref == first.provider_ref
    assert again.status is ProviderStatus.REQUIRES_ACTION


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


def test_cadena_original_matches_stpmex_pythons_published_vector():
    # cuenca-mx/stpmex-python tests/test_auth.py, test_join_fields_for_orden.
    orden = {
        "institucionContraparte": "40072",
        "empresa": "TAMIZI",
        "claveRastreo": "CR1564969083",
        "institucionOperante": "90646",
        "monto": Decimal("1.2"),
        "tipoPago": 1,
        "tipoCuentaOrdenante": 40,
        "cuentaOrdenante": "646180110400000007",
        "tipoCuentaBeneficiario": 40,
        "nombreBeneficiario": "Ricardo Sanchez",
        "cuentaBeneficiario": "072691004495711499",
        "rfcCurpBeneficiario": "ND",
        "conceptoPago": "Prueba",
        "referenciaNumerica": 5273144,
        "topologia": "T",
        "medioEntrega": 3,
        "prioridad": 0,
    }
    assert cadena_original(orden, ORDEN_FIELDS) == (
        "||40072|TAMIZI|||CR1564969083|90646|1.20|1|40||646180110400000007||40|"
        "Ricardo Sanchez|072691004495711499|ND||||||Prueba||||||5273144||T||3|0|||"
    )


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


def test_money_crosses_as_exact_decimals():
    assert [monto_text(m) for m in (123_456, 5, 100, 10)] == ["1234.56", "0.05", "1.00", "0.10"]
    assert stp_json({"monto": Decimal("1234.56"), "n": 1}) == b'{"monto": 1234.56, "n": 1}'


def test_clave_rastreo_is_alphanumeric_short_and_unique():
    keys = {clave_rastreo(new_id("re")) for _ in range(500)}
    assert len(keys) == 500
    assert all(k.isascii() and k.isalnum() and len(k) <= 29 for k in keys)
    long_key = clave_rastreo("refund-" + "x" * 60)
    assert long_key.isalnum() and len(long_key) == 29


# -- refunds: outgoing orders -------------------------------------------------------------


async def test_refund_registers_an_order_and_returns_its_folio(stp):
    refund = await stp.refund(refund_request(), "stp-refund-1")
    assert refund.status is ProviderStatus.PENDING
    assert refund.provider_ref.isdigit() and int(refund.provider_ref) > 0


async def test_a_repeated_clave_rastreo_is_refused(stp):
    request = refund_request()
    await stp.refund(request, "stp-dup-1")
    with pytest.raises(ProviderError) as caught:
        await stp.refund(request, "stp-dup-1")
    assert not caught.value.retryable
    assert caught.value.code == INVALID_REQUEST
    assert "ya fue utilizada" in caught.value.message
    assert "STP error -1" in caught.value.message


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


# -- callbacks: abono (money in) and order status (refunds) ------------------------------

ABONO = {
    "id": 3191365,
    "fechaOperacion": 20200127,
    "institucionOrdenante": 40012,
    "institucionBeneficiaria": 90646,
    "claveRastreo": "12345",
    "nombreOrdenante": "STP",
    "cuentaOrdenante": CUSTOMER_CLABE,
    "cuentaBeneficiario": "646180123400000421",
    "referenciaNumerica": 42,
    "tsLiquidacion": 1580152320000,
}


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Stp-Signature": sign_callback(body, secret)}


def abono_body(monto: str) -> bytes:
    """An abono with `monto` written as is: a JSON number (1234.56) or string ("0.10")."""
    return json.dumps({**ABONO, "monto": "@"}).replace('"@"', monto).encode()


@pytest.mark.parametrize(
    ("monto", "centavos"),
    [
        ("1234.56", 123_456),
        ('"0.10"', 10),
        ("0.01", 1),
        ("500", 50_000),
        ("1.2E7", 1_200_000_000),  # Java writes doubles of 10^7 and more this way
    ],
)
def test_an_abono_becomes_a_payment_event_with_exact_centavos(stp, monto, centavos):
    body = abono_body(monto)
    [event] = stp.parse_webhook(signed(body), body, now=0)
    assert event.status is ProviderStatus.SUCCEEDED
    assert event.amount == centavos
    assert event.lookup_key == event.provider_ref == "646180123400000421"
    assert event.event_id == "abono:20200127:40012:12345"
    assert event.occurred_at == datetime(2020, 1, 27, 19, 12, tzinfo=UTC)


@pytest.mark.parametrize("monto", ["1.005", '"-5.00"', "0", '"abc"', "null"])
def test_an_abono_with_an_impossible_amount_is_rejected(stp, monto):
    body = abono_body(monto)
    with pytest.raises(WebhookRejected):
        stp.parse_webhook(signed(body), body, now=0)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Stp-Signature": ""},
        {"X-Stp-Signature": "00" * 32},
        signed(abono_body("1.00"), "another-secret"),
        signed(abono_body("2.00")),  # signs a different body
        {"X-Stp-Webhook-Token": "not-the-token"},
    ],
)
def test_a_callback_without_a_valid_signature_or_token_is_rejected(stp, headers):
    with pytest.raises(WebhookRejected, match="X-Stp-Signature"):
        stp.parse_webhook(headers, abono_body("1.00"), now=0)


def test_any_configured_secret_may_sign_and_header_case_does_not_matter(provider_config):
    body = abono_body("1.00")
    config = dataclasses.replace(stp_config(provider_config), webhook_secrets=("new", SECRET))
    adapter = StpProvider(config)
    assert adapter.parse_webhook({"x-stp-signature": sign_callback(body, "new")}, body, 0)
    assert adapter.parse_webhook({"X-STP-SIGNATURE": sign_callback(body, SECRET)}, body, 0)


def test_the_url_token_authenticates_a_callback_but_an_empty_token_never_does(stp, provider_config):
    body = abono_body("1.00")
    token = StpEmulator.ADAPTER_OPTIONS["webhook_token"]
    assert stp.parse_webhook({"X-Stp-Webhook-Token": token}, body, now=0)
    tokenless = StpProvider(stp_config(provider_config, webhook_token=""))
    with pytest.raises(WebhookRejected):
        tokenless.parse_webhook({"X-Stp-Webhook-Token": ""}, body, now=0)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"hello": "world"}', b'{"Estado": "LIQUIDACION"}', b""],
)
def test_malformed_callback_bodies_are_rejected(stp, body):
    with pytest.raises(WebhookRejected):
        stp.parse_webhook(signed(body), body, now=0)


@pytest.mark.parametrize(
    ("estado", "status"),
    [
        ("LIQUIDACION", ProviderStatus.SUCCEEDED),
        ("DEVOLUCION", ProviderStatus.FAILED),
        ("CANCELACION", ProviderStatus.FAILED),
        ("ALGO_NUEVO", ProviderStatus.PENDING),  # unknown is never success
    ],
)
def test_order_status_callbacks_map_to_the_refund(stp, estado, status):
    body = json.dumps({"id": 4321, "Estado": estado, "Detalle": ""}).encode()
    [event] = stp.parse_webhook(signed(body), body, now=0)
    assert event.refund_ref == "4321"
    assert event.status is status
    assert event.event_id == f"orden:4321:{estado}"  # settled, then returned: two events
    assert event.amount is None


def test_abono_reply_confirms_or_returns_and_acknowledges_order_status(stp):
    body = abono_body("1.00")
    [abono] = stp.parse_webhook(signed(body), body, now=0)
    orden_body = b'{"id": 1, "Estado": "LIQUIDACION", "Detalle": ""}'
    [orden] = stp.parse_webhook(signed(orden_body), orden_body, now=0)
    assert abono_reply(abono) == {"mensaje": "confirmar"}
    assert abono_reply(abono, return_cause=1) == {"mensaje": "devolver", "id": 1}
    assert abono_reply(orden) == {"mensaje": "recibido"}


# -- the emulator's callbacks verify with the adapter, end to end -------------------------


async def test_emulator_callbacks_for_deposits_and_refunds_verify_and_parse():
    posted: list[httpx.Request] = []
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: posted.append(r) or httpx.Response(200)),
        base_url="http://cobro.test",
    )
    state = SandboxState(clock=Clock(), public_url="http://cobro.test", webhook_client=client)
    emulator = StpEmulator(state, EmulatorConfig("unused", "unused", "whsec_stp"))
    app = Starlette(routes=[Mount("/stp", routes=emulator.routes())])
    config = ProviderConfig(
        "http://sandbox.test/stp",
        "",
        webhook_secrets=("whsec_stp",),
        options=StpEmulator.ADAPTER_OPTIONS,
    )
    adapter = StpProvider(config, transport=httpx.ASGITransport(app))
    payment = await adapter.create_payment(spei(7), "emu-1")
    assert await state.clabes[payment.provider_ref](12_345) == 200
    refund = await adapter.refund(refund_request(), "emu-2")
    for _ in range(50):
        if len(posted) == 2:
            break
        await asyncio.sleep(0.05)
    await adapter.aclose()
    await client.aclose()
    abono, orden = (adapter.parse_webhook(r.headers, r.content, 0)[0] for r in posted)
    assert posted[0].url.path == "/webhooks/stp"
    assert (abono.lookup_key, abono.amount) == (payment.provider_ref, 12_345)
    assert (orden.refund_ref, orden.status) == (refund.provider_ref, ProviderStatus.SUCCEEDED)
