"""Conekta's wire vocabulary and webhook signatures: pure, no I/O (providers/conekta.py
does the HTTP).

Status tables: an order's `payment_status`, webhook event types and a refund's `status`,
each mapped to a neutral status; anything not in a table is PENDING, never success.

Webhooks: Conekta signs the raw body with a webhook key's private half (RSA PKCS#1
v1.5, SHA-256) and sends the base64 signature in a `Digest` header; the merchant
verifies with the public PEM (developers.conekta.com "Verificar firmas": header
'DIGEST', sha256 of the UTF-8 body signed by the private key; conekta-node issue #105:
a base64 signature checked with node-rsa's default pkcs1-sha256). There is no
timestamp: a replayed event is stopped by the inbox's event id, not here.
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from providers.base import ProviderStatus, WebhookRejected

# Conekta's webhook signature header (its docs spell it 'DIGEST'; headers ignore case).
DIGEST_HEADER = "digest"
# Where our intent id travels on an order, and comes back in its events.
INTENT_METADATA_KEY = "cobro_intent_id"
ATTEMPT_METADATA_KEY = "cobro_attempt_id"  # which attempt an order is, for searches

# Order `payment_status` -> neutral status; anything else is PENDING, never success.
STATUS_MAP = {
    "paid": ProviderStatus.SUCCEEDED,
    # Paid, then (partly) given back: the payment did succeed; refunds are tracked apart.
    "refunded": ProviderStatus.SUCCEEDED,
    "partially_refunded": ProviderStatus.SUCCEEDED,
    "pending_payment": ProviderStatus.REQUIRES_ACTION,  # voucher, transfer or 3-D Secure
    "pre_authorized": ProviderStatus.REQUIRES_CAPTURE,  # authorized, to capture later
    "under_fraud_review": ProviderStatus.PROCESSING,
    "declined": ProviderStatus.FAILED,
    "expired": ProviderStatus.EXPIRED,
    "canceled": ProviderStatus.CANCELED,
    "voided": ProviderStatus.CANCELED,
}

# Webhook event type -> neutral status (Conekta's order and charge event catalogues).
EVENT_STATUS = {
    "order.paid": ProviderStatus.SUCCEEDED,
    "charge.paid": ProviderStatus.SUCCEEDED,
    "order.pending_payment": ProviderStatus.REQUIRES_ACTION,
    "order.pre_authorized": ProviderStatus.REQUIRES_CAPTURE,
    "order.expired": ProviderStatus.EXPIRED,
    "charge.expired": ProviderStatus.EXPIRED,
    "order.canceled": ProviderStatus.CANCELED,
    "charge.canceled": ProviderStatus.CANCELED,
    "order.voided": ProviderStatus.CANCELED,
    "order.declined": ProviderStatus.FAILED,
    "charge.declined": ProviderStatus.FAILED,
}
REFUND_EVENTS = frozenset({"order.refunded", "order.partially_refunded", "charge.refunded"})

# A refund's own `status` (Conekta shows "pending" for refunds that are not instant).
REFUND_STATUS_MAP = {
    "pending": ProviderStatus.PENDING,
    "succeeded": ProviderStatus.SUCCEEDED,
    "failed": ProviderStatus.FAILED,
    "canceled": ProviderStatus.FAILED,
}

# Charge statuses under which the charge's amount has been paid in.
PAID_CHARGE_STATUSES = frozenset({"paid", "refunded", "partially_refunded"})

_PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


def load_public_keys(pem_text: str) -> tuple[rsa.RSAPublicKey, ...]:
    """The RSA public keys in `pem_text` (none if empty); ValueError if one is not RSA."""
    keys = []
    for block in _PEM_BLOCK.findall(pem_text):
        key = serialization.load_pem_public_key(block.encode())
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("a Conekta webhook key must be an RSA public key")
        keys.append(key)
    return tuple(keys)


def sign_payload(body: bytes, private_key_pem: str) -> str:
    """The `Digest` header value for `body`, as Conekta computes it."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("a Conekta webhook key must be an RSA private key")
    return base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify_signature(body: bytes, header: str, keys: tuple[rsa.RSAPublicKey, ...]) -> None:
    """Raise WebhookRejected unless `header` is a signature of `body` by one of `keys`."""
    if not keys:
        raise WebhookRejected("no Conekta webhook public key is configured")
    if not header.strip():
        raise WebhookRejected("Digest header missing")
    try:
        signature = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):  # ValueError: a non-ASCII header
        raise WebhookRejected("Digest header is not base64") from None
    for key in keys:
        try:
            key.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            continue
        return
    raise WebhookRejected("no Conekta webhook key verifies the Digest signature")
