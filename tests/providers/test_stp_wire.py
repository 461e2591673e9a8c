"""STP's wire pieces, pure: the CLABEs Cobro assigns, the cadena original, exact amounts,
how an abono is named, and the proof a callback must carry."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from starlette.datastructures import Headers

from app.domain.clabe import is_valid_clabe
from app.domain.ids import new_id
from providers.base import ProviderEvent, ProviderStatus, WebhookRejected
from providers.sandbox.stp import StpEmulator
from providers.stp_wire import (
    ORDEN_FIELDS,
    abono_event_id,
    abono_reply,
    assigned_clabe,
    cadena_original,
    clave_rastreo,
    listed_abono_id,
    monto_text,
    same_order,
    sign_callback,
    stp_json,
    verify_callback,
)

PREFIX = StpEmulator.ADAPTER_OPTIONS["clabe_prefix"]
TOKEN = StpEmulator.ADAPTER_OPTIONS["webhook_token"]
SECRETS = ("sandbox",)
BODY = b'{"id": 1, "Estado": "LIQUIDACION", "Detalle": ""}'


# -- CLABEs, amounts, tracking keys ------------------------------------------------------


def test_assigned_clabes_are_valid_prefixed_and_one_per_reference_number():
    clabes = [assigned_clabe(PREFIX, n) for n in range(1, 2_001)]
    assert all(is_valid_clabe(c) and c.startswith(PREFIX) for c in clabes)
    assert len(set(clabes)) == len(clabes)
    assert assigned_clabe(PREFIX, 42) == "646180123400000421"  # 6461801234 + 0000042 + 1


def test_money_crosses_as_exact_decimals():
    assert [monto_text(m) for m in (123_456, 5, 100, 10)] == ["1234.56", "0.05", "1.00", "0.10"]
    assert stp_json({"monto": Decimal("1234.56"), "n": 1}) == b'{"monto": 1234.56, "n": 1}'


def test_clave_rastreo_is_alphanumeric_short_and_unique():
    keys = {clave_rastreo(new_id("re")) for _ in range(500)}
    assert len(keys) == 500
    assert all(k.isascii() and k.isalnum() and len(k) <= 29 for k in keys)
    long_key = clave_rastreo("refund-" + "x" * 60)
    assert long_key.isalnum() and len(long_key) == 29


# -- the cadena original ------------------------------------------------------------------


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


def test_a_query_signs_the_cadena_stpmex_python_signs_for_queries():
    # stpmex-python `Resource._firma_consulta`: "|||" empresa "|" fecha "||" clave "|"
    # operante, then 30 pipes. The order's cadena with only those fields is the same.
    consulta = {"empresa": "TAMIZI", "claveRastreo": "CR1564969083", "institucionOperante": 90646}
    expected = "|||TAMIZI|||CR1564969083|90646" + "|" * 30
    assert cadena_original(consulta, ORDEN_FIELDS) == expected
    dated = cadena_original({**consulta, "fechaOperacion": "20200420"}, ORDEN_FIELDS)
    assert dated == "|||TAMIZI|20200420||CR1564969083|90646" + "|" * 30


# -- naming deposits, matching orders -----------------------------------------------------


def test_an_abono_and_its_row_in_consordenesfech_have_one_name():
    callback = {"fechaOperacion": 20200420, "institucionOrdenante": "40072"}
    callback["claveRastreo"] = "CR1564969083"
    # As consOrdenesFech lists a received order (stpmex-python's recorded cassette): the
    # paying bank is the contraparte, numbers are numbers, text may be padded.
    row = {"fechaOperacion": 20200420, "institucionContraparte": 40072}
    row |= {"institucionOperante": 90646, "claveRastreo": "CR1564969083  ", "estado": "LQ"}
    assert abono_event_id(callback) == listed_abono_id(row) == "abono:20200420:40072:CR1564969083"
    with pytest.raises(KeyError):
        listed_abono_id({"fechaOperacion": 20200420, "claveRastreo": "X"})


def test_same_order_compares_account_and_exact_amount():
    listed = json.loads(
        '{"cuentaBeneficiario": "072691004495711499 ", "monto": 1.20}', parse_float=str
    )
    assert same_order(listed, "072691004495711499", 120)
    assert not same_order(listed, "072691004495711499", 121)
    assert not same_order(listed, "012180004643051249", 120)
    assert not same_order({"cuentaBeneficiario": "072691004495711499"}, "072691004495711499", 0)


# -- the proof a callback carries ---------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Stp-Signature": ""},
        {"X-Stp-Signature": "00" * 32},
        {"X-Stp-Signature": sign_callback(BODY, "another-secret")},
        {"X-Stp-Signature": sign_callback(BODY + b" ", SECRETS[0])},  # another body
        {"X-Webhook-Token": "not-the-token"},
        {"X-Webhook-Token": TOKEN + " x"},
        {"X-Stp-Webhook-Token": TOKEN},  # the old name: gone, only X-Webhook-Token counts
    ],
)
def test_a_callback_without_a_valid_signature_or_token_is_rejected(headers):
    with pytest.raises(WebhookRejected, match="X-Stp-Signature or X-Webhook-Token"):
        verify_callback(headers, BODY, SECRETS, TOKEN)


def test_any_configured_secret_may_sign_and_header_case_does_not_matter():
    verify_callback({"x-stp-signature": sign_callback(BODY, "new")}, BODY, ("new", "old"), "")
    verify_callback({"X-STP-SIGNATURE": sign_callback(BODY, "old")}, BODY, ("new", "old"), "")


def test_the_token_the_route_copies_from_the_url_authenticates_and_an_empty_one_never_does():
    # The webhook route passes dict(request.headers) plus the `?token=` of the URL as
    # x-webhook-token: exactly this mapping.
    routed = {**dict(Headers({"content-type": "application/json"})), "x-webhook-token": TOKEN}
    verify_callback(routed, BODY, SECRETS, TOKEN)
    with pytest.raises(WebhookRejected):
        verify_callback({**routed, "x-webhook-token": ""}, BODY, SECRETS, "")
    with pytest.raises(WebhookRejected):
        verify_callback(routed, BODY, SECRETS, "")  # no token configured: none matches


@pytest.mark.parametrize("name", ["x-stp-signature", "x-webhook-token"])
@pytest.mark.parametrize("value", ["fírma", "\u00ff" * 64, "\ud800", "²"])
def test_a_non_ascii_signature_or_token_is_rejected_not_an_error(name, value):
    # Starlette decodes header bytes as latin-1, so a forged header reaches us as a
    # non-ASCII str; compare_digest on such a str raises TypeError (a 500).
    raw = Headers(raw=[(name.encode(), value.encode("latin-1", "replace"))])
    for headers in (raw, {name: value}):
        with pytest.raises(WebhookRejected):
            verify_callback(headers, BODY, SECRETS, TOKEN)
    with pytest.raises(WebhookRejected):
        verify_callback({"x-webhook-token": value}, BODY, SECRETS, value + "!")


def test_abono_reply_confirms_or_returns_and_acknowledges_order_status():
    abono = ProviderEvent("stp", "abono:1:2:3", "abono", ProviderStatus.SUCCEEDED)
    orden = ProviderEvent("stp", "orden:1:LIQUIDACION", "orden.LIQUIDACION", None)
    assert abono_reply(abono) == {"mensaje": "confirmar"}
    assert abono_reply(abono, return_cause=1) == {"mensaje": "devolver", "id": 1}
    assert abono_reply(orden) == {"mensaje": "recibido"}
