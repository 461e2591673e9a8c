"""Malformed but validly signed PSP events, for every adapter, against the real server.

Each example starts from an event the adapter would apply to a seeded payment (the
3-D Secure card at Stripe, an OXXO order at Conekta, the SPEI CLABE at STP, the crypto
quote at Bitso) and breaks one field it reads: removed, of another type, a huge number,
odd unicode, nested thousands deep. Or the body is no JSON object at all. Signed with
the sandbox's own keys, as the emulators sign. Whatever it is:

- the answer is never a 5xx: it is 200, saying the event was rejected (or, for STP,
  the refusal STP expects), so the PSP stops retrying;
- nothing changes: no intent, audit row, outbox row, refund or handle, and the inbox
  keeps it only as `rejected`.

And hostile signature headers on an event that would move a payment: 400, nothing kept.
"""

from __future__ import annotations

import base64
import functools
import json
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain.money import MAX_MINOR
from providers.sandbox.bitso import sign_webhook as bitso_sign
from providers.sandbox.conekta_wire import SANDBOX_WEBHOOK_PRIVATE_KEY
from providers.stp_wire import sign_callback
from providers.stripe_wire import sign_payload
from tests.hostile.conftest import Hostile, unchanged
from tests.hostile.strategies import (
    REMOVE,
    bad_integer,
    bad_object,
    bad_text,
    deep,
    encode,
    garbage_bodies,
    huge_integers,
    json_scalars,
    long_text,
    mutated,
    nasty_text,
)

# Hypothesis settings for every test here: a fixed sequence of examples (CI sees what
# a developer saw), no time limit per example (the server is real), no example database.
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SANDBOX_SECRET = "sandbox"  # the sandbox's HMAC secret (app/config.py SANDBOX_CREDENTIAL)
DEVOLVER = {"mensaje": "devolver", "id": 14}  # providers/stp_wire.py MALFORMED_RETURN_CAUSE


def stripe_event(hostile: Hostile) -> dict[str, Any]:
    seeded = hostile.seeded
    return {
        "id": "evt_hostile",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "livemode": False,
        "data": {
            "object": {
                "id": seeded.stripe_ref,
                "object": "payment_intent",
                "status": "succeeded",
                "amount_received": 50_000,
                "metadata": {"cobro_intent_id": seeded.stripe_intent},
                "last_payment_error": None,
                "next_action": {
                    "type": "redirect_to_url",
                    "redirect_to_url": {"url": "https://3ds.example/x", "return_url": None},
                },
            }
        },
    }


STRIPE_FIELDS = {
    "id": bad_text(required=True, max_length=200) | st.just(REMOVE),
    "type": bad_text(required=True) | st.just(REMOVE),
    "created": bad_integer(required=True, maximum=253_402_300_799) | st.just(REMOVE),
    "data": bad_object(required=True) | st.just(REMOVE),
    "data.object": bad_object(required=True) | st.just(REMOVE),
    "data.object.id": bad_text(required=True) | st.just(REMOVE),
    "data.object.status": bad_text(required=False),
    "data.object.amount_received": bad_integer(required=False, maximum=MAX_MINOR),
    "data.object.metadata": bad_object(required=False),
    "data.object.metadata.cobro_intent_id": bad_text(required=False),
    "data.object.last_payment_error": bad_object(required=False),
    "data.object.next_action": bad_object(required=False),
    "data.object.next_action.redirect_to_url": bad_object(required=True) | st.just(REMOVE),
    "data.object.next_action.redirect_to_url.url": bad_text(required=True, max_length=2048),
}


def conekta_event(hostile: Hostile) -> dict[str, Any]:
    now = int(time.time())
    return {
        "id": "evt_hostile",
        "object": "event",
        "type": "order.paid",
        "created_at": now,
        "data": {
            "object": {
                "id": "ord_hostile",
                "object": "order",
                "payment_status": "paid",
                "metadata": {"cobro_intent_id": hostile.seeded.stripe_intent},
                "charges": {
                    "object": "list",
                    "data": [
                        {
                            "id": "ch_hostile",
                            "status": "paid",
                            "amount": 50_000,
                            "payment_method": {
                                "object": "cash_payment",
                                "reference": "93000000000001",
                                "expires_at": now + 86_400,
                            },
                        }
                    ],
                },
            }
        },
    }


CHARGE = "data.object.charges.data[0]"
CONEKTA_FIELDS = {
    "id": bad_text(required=True, max_length=200) | st.just(REMOVE),
    "type": bad_text(required=True) | st.just(REMOVE),
    "created_at": bad_integer(required=False, maximum=253_402_300_799),
    "data": bad_object(required=True) | st.just(REMOVE),
    "data.object": bad_object(required=True) | st.just(REMOVE),
    "data.object.id": bad_text(required=False),
    "data.object.object": bad_text(required=False),
    "data.object.metadata": bad_object(required=False),
    "data.object.charges": bad_object(required=False).filter(lambda v: not isinstance(v, list)),
    "data.object.charges.data": bad_object(required=False).filter(
        lambda v: not isinstance(v, list)
    ),
    f"{CHARGE}.status": bad_text(required=False),
    f"{CHARGE}.amount": bad_integer(required=True, maximum=MAX_MINOR) | st.just(REMOVE),
    f"{CHARGE}.payment_method": bad_object(required=False),
    f"{CHARGE}.payment_method.object": bad_text(required=False),
    f"{CHARGE}.payment_method.reference": bad_text(required=False),
}


def stp_abono(hostile: Hostile) -> dict[str, Any]:
    return {
        "id": 123456,
        "fechaOperacion": 20260101,
        "institucionOrdenante": "40012",
        "institucionBeneficiaria": "90646",
        "claveRastreo": "HOSTILE0001",
        "monto": 500.00,
        "nombreOrdenante": "CLIENTE",
        "cuentaOrdenante": "012180004643051249",
        "cuentaBeneficiario": hostile.seeded.clabe,
        "conceptoPago": "PAGO SPEI",
        "referenciaNumerica": 1,
        "empresa": "COBRO",
        "tipoPago": 1,
        "tsLiquidacion": int(time.time() * 1000),
    }


# An abono's id parts may be short numbers or short text: anything else is bad.
bad_id_part = st.one_of(
    st.booleans(),
    st.floats(allow_nan=False),
    st.lists(json_scalars, max_size=2),
    st.dictionaries(st.text(max_size=3), json_scalars, max_size=2),
    huge_integers,
    deep,
    nasty_text,
    long_text,
    st.sampled_from([None, "", "   "]),
    st.just(REMOVE),
)
bad_monto = st.one_of(
    st.sampled_from(
        [
            None,
            True,
            0,
            -5,
            "-5.00",
            "0",
            "0.00",
            "1.234",
            "abc",
            "1e99",
            "1E-99999999",
            "NaN",
            [],
            {},
            "9" * 40,
        ]
    ),
    st.integers(min_value=10**11, max_value=10**30),
    nasty_text,
    deep,
    st.just(REMOVE),
)
STP_ABONO_FIELDS = {
    "cuentaBeneficiario": bad_text(required=False).filter(lambda v: v is not None),
    "monto": bad_monto,
    "fechaOperacion": bad_id_part,
    "institucionOrdenante": bad_id_part,
    "claveRastreo": bad_id_part,
    "tsLiquidacion": bad_integer(required=False, maximum=253_402_300_799_000),
}
STP_ORDEN_FIELDS = {
    "id": st.one_of(
        st.sampled_from([None, 0, -1, True, 1.5, "", "x1", "\u00b2", "1" * 25, [], {}]),
        huge_integers.filter(lambda v: not isinstance(v, int) or v < 0 or v > 10**19),
        nasty_text,
        st.just(REMOVE),
    ),
    "Estado": bad_text(required=True, max_length=40),
}


def bitso_funding(hostile: Hostile) -> dict[str, Any]:
    seeded = hostile.seeded
    return {
        "event": "funding",
        "payload": {
            "fid": "f" * 32,
            "status": "complete",
            "created_at": "2026-01-01T00:00:00+00:00",
            "details": {
                "receiving_address": seeded.crypto_address,
                "conversion": {"quote_id": seeded.crypto_quote, "to_amount": "1000.00"},
            },
        },
    }


# Bitso's signature covers the payload as re-encoded after parsing, so a body it cannot
# parse (nested past the limit, digits past Python's) cannot be verified: those are 400s
# (below), not signed events. These stay within what can be verified.
bitso_values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(json_scalars, max_size=3),
    nasty_text,
    long_text,
)
BITSO_FIELDS = {
    "payload.fid": st.one_of(bitso_values, st.sampled_from([None, ""]), st.just(REMOVE)).filter(
        lambda v: not (isinstance(v, str) and v.isprintable() and 0 < len(v) <= 120)
    ),
    "payload.status": st.one_of(bitso_values, st.sampled_from([None, ""]), st.just(REMOVE)).filter(
        lambda v: not (isinstance(v, str) and v.isprintable() and 0 < len(v) <= 40)
    ),
    "payload.details": bitso_values.filter(lambda v: not isinstance(v, str) or v != ""),
    "payload.details.conversion": bitso_values.filter(lambda v: not isinstance(v, str) or v != ""),
    "payload.details.conversion.to_amount": st.one_of(
        bitso_values.filter(lambda v: not isinstance(v, str)),
        st.sampled_from(["", "-1", "abc", "1e99", "NaN", "Infinity", "1" * 50]),
    ),
    "payload.details.conversion.quote_id": bitso_values.filter(
        lambda v: not isinstance(v, str) or not v.isprintable() or len(v) > 100
    ),
    "payload.details.receiving_address": bitso_values.filter(
        lambda v: not isinstance(v, str) or not v.isprintable() or len(v) > 100
    ),
    "event": st.one_of(nasty_text, long_text),
}


@functools.cache
def conekta_key() -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(SANDBOX_WEBHOOK_PRIVATE_KEY.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def signed(provider: str, body: bytes) -> dict[str, str]:
    """The headers the PSP's emulator would sign `body` with, with the sandbox's keys."""
    if provider == "stripe":
        return {"Stripe-Signature": sign_payload(body, SANDBOX_SECRET, int(time.time()))}
    if provider == "conekta":
        # As providers/conekta_wire.py sign_payload, with the key parsed once, not per call.
        signature = conekta_key().sign(body, padding.PKCS1v15(), hashes.SHA256())
        return {"Digest": base64.b64encode(signature).decode()}
    if provider == "stp":
        return {"X-Stp-Signature": sign_callback(body, SANDBOX_SECRET)}
    return bitso_sign(body, 0)


def post(hostile: Hostile, provider: str, body: bytes, headers: dict[str, Any]) -> httpx.Response:
    return hostile.http.post(
        f"/webhooks/{provider}",
        content=body,
        headers={**headers, "content-type": "application/json"},
    )


def assert_rejected_and_nothing_changed(hostile: Hostile, provider: str, body: bytes) -> None:
    before = hostile.probe.snapshot()
    response = post(hostile, provider, body, signed(provider, body))
    after = hostile.probe.snapshot()
    assert response.status_code == 200, (response.status_code, response.text, body[:300])
    answer = response.json()
    if provider == "stp":
        assert answer in (DEVOLVER, {"mensaje": "recibido"}), answer
    else:
        [received] = answer["received"]
        assert received["outcome"] == "rejected", (answer, body[:300])
        assert received["reason"]
    assert unchanged(before, after) == {}, body[:300]
    assert after["inbox_rejected"] - before["inbox_rejected"] in (0, 1)


TEMPLATES = {
    "stripe": (stripe_event, STRIPE_FIELDS),
    "conekta": (conekta_event, CONEKTA_FIELDS),
    "stp-abono": (stp_abono, STP_ABONO_FIELDS),
    "stp-orden": (lambda _: {"id": 4242, "Estado": "LIQUIDACION", "Detalle": ""}, STP_ORDEN_FIELDS),
    "bitso": (bitso_funding, BITSO_FIELDS),
}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_a_signed_event_with_one_field_broken_is_rejected_and_changes_nothing(hostile, name):
    template, fields = TEMPLATES[name]
    provider = name.split("-")[0]

    @FUZZ
    @given(event=mutated(template(hostile), fields))
    def check(event: Any) -> None:
        assert_rejected_and_nothing_changed(hostile, provider, encode(event))

    check()


@pytest.mark.parametrize("provider", ["stripe", "conekta", "stp"])
def test_a_signed_body_that_is_no_event_is_rejected_and_changes_nothing(hostile, provider):
    @FUZZ
    @given(body=garbage_bodies)
    def check(body: bytes) -> None:
        assert_rejected_and_nothing_changed(hostile, provider, body)

    check()


# -- hostile signature headers ----------------------------------------------------------


def sendable(value: bytes) -> bytes:
    """What HTTP lets a header carry (no CR, LF, NUL or other controls but tab)."""
    return bytes(c for c in value if c == 0x09 or 0x20 <= c <= 0x7E or c >= 0x80).strip()


header_bytes = st.binary(min_size=1, max_size=300).map(sendable).filter(bool)
stripe_headers = st.one_of(
    header_bytes.map(lambda v: {"Stripe-Signature": v}),
    st.tuples(
        st.one_of(
            st.integers(min_value=0, max_value=10**30).map(str),
            # More digits than Python turns into an int (4,300), and merely too many.
            st.sampled_from([13, 4_301, 8_000]).map(lambda n: "9" * n),
            st.text(max_size=10),
        ),
        st.text(max_size=80),
    ).map(
        lambda p: {
            "Stripe-Signature": sendable(f"t={p[0]},v1={p[1]}".encode("utf-8", "surrogatepass"))
        }
    ),
)
HEADERS = {
    "stripe": stripe_headers,
    "conekta": header_bytes.map(lambda v: {"Digest": v}),
    "stp": st.one_of(
        header_bytes.map(lambda v: {"X-Stp-Signature": v}),
        header_bytes.map(lambda v: {"X-Webhook-Token": v}),
    ),
    "bitso": st.tuples(header_bytes, header_bytes).map(
        lambda p: {"X-Bitso-Webhook-Event-Signature": p[0], "X-Bitso-Key-Id": p[1]}
    ),
}


@pytest.mark.parametrize("provider", sorted(HEADERS))
def test_hostile_signature_headers_are_400_and_change_nothing(hostile, provider):
    """A well-formed event that would settle a payment, under a signature header that
    is anything but the PSP's: 400, and not even kept as rejected."""
    template = {
        "stripe": stripe_event,
        "conekta": conekta_event,
        "stp": stp_abono,
        "bitso": bitso_funding,
    }[provider]
    body = json.dumps(template(hostile)).encode()

    @FUZZ
    @given(headers=HEADERS[provider])
    def check(headers: dict[str, Any]) -> None:
        before = hostile.probe.snapshot()
        response = post(hostile, provider, body, headers)
        assert response.status_code == 400, (response.status_code, response.text)
        assert hostile.probe.snapshot() == before

    check()


def test_bitso_bodies_its_signature_cannot_cover_are_400_and_change_nothing(hostile):
    """Bitso signs the payload as re-encoded, so the body must be parsed before it can be
    verified: one nested past the limit, or not a {event, payload} object, is a 400."""

    @FUZZ
    @given(body=garbage_bodies)
    def check(body: bytes) -> None:
        headers = {"X-Bitso-Webhook-Event-Signature": "AAAA", "X-Bitso-Key-Id": "cobro-sandbox-1"}
        before = hostile.probe.snapshot()
        response = post(hostile, "bitso", body, headers)
        assert response.status_code == 400, (response.status_code, response.text)
        assert hostile.probe.snapshot() == before

    check()


def test_the_templates_themselves_are_applied(hostile):
    """The events the tests break are ones each adapter applies when whole: otherwise
    'nothing changed' above would prove nothing. (Sent last: they do change things.)"""
    # Last in this module (pytest keeps file order): the property tests ran before.
    for name, (template, _) in sorted(TEMPLATES.items()):
        provider = name.split("-")[0]
        body = encode(template(hostile))
        response = post(hostile, provider, body, signed(provider, body))
        assert response.status_code == 200, (name, response.text)
        if provider != "stp":
            [received] = response.json()["received"]
            assert received["outcome"] in ("applied", "unmatched", "ignored"), (name, received)
