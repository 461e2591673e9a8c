"""Bitso's funding webhooks: its RSA signature scheme and what a funding event says."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from providers.base import ProviderConfig, ProviderStatus, WebhookRejected
from providers.bitso import BitsoProvider
from providers.bitso_wire import KEY_ID_HEADER, SIGNATURE_HEADER, public_key_option, signed_bytes
from providers.sandbox.bitso import SANDBOX_KEY_ID, sign_webhook
from tests.providers.test_bitso import bitso_config

NOW = int(time.time())


def funding(status: str = "complete", to_amount: str = "500.00", **extra) -> dict:
    return {
        "fid": "a17c4c00e17c592fc7b6d9bad2261be8",
        "status": status,
        "created_at": "2024-05-17T23:12:00+00:00",
        "currency": "usdc",
        "amount": "29.411765",
        "details": {
            "receiving_address": "0xabc",
            "conversion": {"quote_id": "q1", "to_currency": "mxn", "to_amount": to_amount},
            **extra,
        },
    }


def event_body(payload: dict) -> bytes:
    return json.dumps({"event": "funding", "payload": payload}, indent=2).encode()


def rsa_headers(payload: dict, key: rsa.RSAPrivateKey, *, ascii_only: bool = True) -> dict:
    signed = signed_bytes(payload, ascii_only=ascii_only)
    signature = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    return {SIGNATURE_HEADER: base64.b64encode(signature).decode(), KEY_ID_HEADER: SANDBOX_KEY_ID}


@pytest.fixture
def verifier() -> BitsoProvider:
    """An adapter with the sandbox's webhook key, and a base URL nothing answers at."""
    config = ProviderConfig(base_url="http://bitso.invalid", api_key="k", api_secret="s")
    return BitsoProvider(bitso_config(config))


def test_a_complete_funding_is_succeeded_with_exact_centavos(verifier):
    body = event_body(funding(to_amount="1234.56"))
    [event] = verifier.parse_webhook(sign_webhook(body, NOW), body, NOW)
    assert event.status is ProviderStatus.SUCCEEDED
    assert event.amount == 123_456
    assert event.event_id == "a17c4c00e17c592fc7b6d9bad2261be8:complete"
    assert (event.provider_ref, event.lookup_key) == ("q1", "0xabc")
    assert event.intent_hint is None  # neither quote nor funding carries a reference of ours


def test_a_pending_funding_is_processing_and_a_distinct_event(verifier):
    body = event_body(funding(status="pending"))
    [event] = verifier.parse_webhook(sign_webhook(body, NOW), body, NOW)
    assert (event.status, event.amount) == (ProviderStatus.PROCESSING, None)
    assert event.event_id == "a17c4c00e17c592fc7b6d9bad2261be8:pending"


def test_non_ascii_payloads_verify_in_either_spelling(verifier):
    payload = funding(sender_name="MUÑOZ")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for ascii_only in (True, False):
        headers = rsa_headers(payload, key, ascii_only=ascii_only)
        adapter = BitsoProvider(
            replace(verifier.config, options={"webhook_public_keys": public_option(key)})
        )
        assert adapter.parse_webhook(headers, event_body(payload), NOW)[0].amount == 50_000


def public_option(key: rsa.RSAPrivateKey) -> str:
    return public_key_option(SANDBOX_KEY_ID, key.public_key())


def test_a_signature_by_another_key_is_rejected(verifier):
    payload = funding()
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(WebhookRejected, match="does not verify"):
        verifier.parse_webhook(rsa_headers(payload, stranger), event_body(payload), NOW)


@pytest.mark.parametrize(
    "drop", [SIGNATURE_HEADER, KEY_ID_HEADER], ids=["no-signature", "no-key-id"]
)
def test_a_missing_header_is_rejected(verifier, drop):
    body = event_body(funding())
    headers = {k: v for k, v in sign_webhook(body, NOW).items() if k != drop}
    with pytest.raises(WebhookRejected, match="missing"):
        verifier.parse_webhook(headers, body, NOW)


def test_an_unknown_key_id_is_rejected(verifier):
    body = event_body(funding())
    headers = {**sign_webhook(body, NOW), KEY_ID_HEADER: "rotated-away"}
    with pytest.raises(WebhookRejected, match="rotated-away"):
        verifier.parse_webhook(headers, body, NOW)
