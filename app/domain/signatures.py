"""Stripe's webhook signature scheme, which Cobro-Signature also uses.

`t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`; several `v1` may be
present while a secret is rolled, and any one matching is enough. The same code
signs what Cobro sends merchants and checks what Stripe sends Cobro, so merchants
can verify ours with Stripe's own libraries (tests/events/test_deliveries.py).
"""

from __future__ import annotations

import hashlib
import hmac

DEFAULT_TOLERANCE_SECONDS = 300


class BadSignature(ValueError):
    pass


def sign(body: bytes, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def sign_all(body: bytes, secrets: tuple[str, ...], timestamp: int) -> str:
    """`t=…,v1=…,v1=…`: one signature per secret, so a receiver that still holds the
    old secret and one that has the new one both verify (Stripe's verifier accepts
    any matching v1)."""
    signed = f"{timestamp}.".encode() + body
    macs = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets]
    return ",".join([f"t={timestamp}", *(f"v1={mac}" for mac in macs)])


def verify(
    body: bytes,
    header: str,
    secrets: tuple[str, ...],
    *,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise BadSignature unless some `v1` in `header` signs `body` with a secret."""
    items = [part.split("=", 1) for part in header.split(",") if "=" in part]
    timestamps = [value.strip() for key, value in items if key.strip() == "t"]
    signatures = [value.strip() for key, value in items if key.strip() == "v1"]
    if (
        not timestamps
        or not signatures
        or not (timestamps[0].isascii() and timestamps[0].isdigit())
    ):
        raise BadSignature("signature header missing or malformed")
    timestamp = int(timestamps[0])
    if now - timestamp > tolerance:
        raise BadSignature("signature timestamp is outside the tolerance")
    signed = f"{timestamp}.".encode() + body
    # An empty secret verifies against an empty key, which anyone can forge.
    # Bytes, not str: compare_digest refuses non-ASCII str, and a client must not
    # be able to turn a bad header into an exception.
    candidates = [c.encode("utf-8", "replace") for c in signatures]
    for secret in filter(None, secrets):
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode()
        if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            return
    raise BadSignature("no v1 signature matches")
