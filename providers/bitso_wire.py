"""Bitso's signatures, both ways: the HMAC that signs our calls (Bitso's "Create Signed
Requests", bitso-py's `_build_auth_header`) and the RSA signature on its webhooks (Bitso's
"Webhook Signatures"). Pure, no I/O: providers/bitso.py does the HTTP.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Generator, Mapping
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from providers.base import WebhookRejected
from providers.shapes import Malformed, load_json

# Bitso's "Webhook Signatures": Base64 RSA-SHA256 (PKCS#1 v1.5) of the payload, and its key id.
SIGNATURE_HEADER = "x-bitso-webhook-event-signature"
KEY_ID_HEADER = "x-bitso-key-id"
# Bitso's webhook public keys ("List webhook public keys"), "key_id:base64 DER,..." in options.
PUBLIC_KEYS_OPTION = "webhook_public_keys"


class BitsoAuth(httpx.Auth):
    """Bitso's HMAC signature, computed on the request exactly as it goes out (path, body)."""

    requires_request_body = True

    def __init__(self, key: str, secret: str) -> None:
        self.key = key
        self.secret = secret
        self._last_nonce = 0

    def next_nonce(self) -> int:
        """Larger than the last one, as Bitso requires: Unix ms followed by six digits that
        count calls within the ms (Bitso's "Nonce v2" shape, 19 digits)."""
        self._last_nonce = max(time.time_ns() // 1_000_000 * 1_000_000, self._last_nonce + 1)
        return self._last_nonce

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        nonce = str(self.next_nonce())
        path = request.url.raw_path.decode("ascii")
        signature = sign_request(self.secret, nonce, request.method, path, request.content)
        request.headers["Authorization"] = f"Bitso {self.key}:{nonce}:{signature}"
        yield request


def sign_request(secret: str, nonce: str, method: str, path: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of nonce + HTTP method + request path (with query) + JSON body."""
    message = f"{nonce}{method.upper()}{path}".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


# -- webhook signatures: Bitso's scheme ------------------------------------------------------


def load_public_keys(option: str) -> dict[str, rsa.RSAPublicKey]:
    """The `webhook_public_keys` option: "key_id:base64 DER SubjectPublicKeyInfo", comma-separated.

    A malformed entry fails here, when the adapter is built, not at the first webhook."""
    keys: dict[str, rsa.RSAPublicKey] = {}
    for entry in filter(None, (part.strip() for part in option.split(","))):
        key_id, _, encoded = entry.partition(":")
        key = serialization.load_der_public_key(base64.b64decode(encoded, validate=True))
        if not key_id or not isinstance(key, rsa.RSAPublicKey):
            raise ValueError(f"{PUBLIC_KEYS_OPTION}: {key_id!r} is not an RSA public key")
        keys[key_id] = key
    return keys


def public_key_option(key_id: str, key: rsa.RSAPublicKey) -> str:
    """One `webhook_public_keys` entry, as Bitso's key list gives it (Base64 DER)."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"{key_id}:{base64.b64encode(der).decode()}"


def signed_bytes(payload: Any, *, ascii_only: bool = True) -> bytes:
    """The compact JSON of `payload`, the bytes Bitso signs (its docs: Python's
    separators=(',', ':'), which escape non-ASCII by default). An unpaired surrogate
    (JSON's "\\ud800") is kept as it is, so the bytes simply do not verify."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=ascii_only)
    return text.encode("utf-8", "surrogatepass")


def verify_signature(
    body: bytes, headers: Mapping[str, str], public_keys: Mapping[str, rsa.RSAPublicKey]
) -> dict[str, Any]:
    """The event envelope, if the key named in `x-bitso-key-id` signed its payload; else
    WebhookRejected. Bitso's docs do not say whether non-ASCII is escaped before signing, so
    both spellings are tried: both are the one payload, so nothing unsigned gets through."""
    lowered = {k.lower(): v for k, v in headers.items()}
    encoded, key_id = lowered.get(SIGNATURE_HEADER, ""), lowered.get(KEY_ID_HEADER, "")
    if not encoded or not key_id:
        raise WebhookRejected(f"{SIGNATURE_HEADER} or {KEY_ID_HEADER} header missing")
    key = public_keys.get(key_id)
    if key is None:
        raise WebhookRejected(f"no Bitso webhook public key {key_id!r} is configured")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):  # ValueError: a non-ASCII header
        raise WebhookRejected("signature is not Base64") from None
    try:
        # Read before it is verified (the signature covers the payload, re-encoded), so
        # through load_json's limits: a body nested 10,000 deep is refused, not a crash.
        envelope = load_json(body)
    except Malformed as exc:
        raise WebhookRejected(f"body is not a Bitso event: {exc}") from None
    if not (
        isinstance(envelope, dict)
        and isinstance(envelope.get("event"), str)
        and isinstance(envelope.get("payload"), dict)
    ):
        raise WebhookRejected("body is not a Bitso event {event, payload}")
    candidates = {signed_bytes(envelope["payload"], ascii_only=flag) for flag in (True, False)}
    for candidate in candidates:
        try:
            key.verify(signature, candidate, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            continue
        return envelope
    raise WebhookRejected("Bitso webhook signature does not verify")
