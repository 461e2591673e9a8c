"""What the Conekta emulator says on the wire, apart from orders: its error envelope, the
checks of an order request, and the webhook signature (providers/sandbox/conekta.py).

Unconfirmed, chosen to be plausible: the codes of our 422/428 errors.
"""

from __future__ import annotations

import secrets
from typing import Any, TypeGuard

from cryptography.hazmat.primitives import serialization
from starlette.responses import JSONResponse, Response

from providers.conekta_wire import sign_payload

# SANDBOX-ONLY webhook signing key, generated once for this emulator; it protects
# nothing. Production verifies with the public key Conekta issues (POST /webhook_keys).
SANDBOX_WEBHOOK_PRIVATE_KEY = """\
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCvkTv4NE0nQ49/
6Z+Crlg0Pqc3MpppVW6zHQN9husFNpNQcTPVLoDyA2C1itHBhgllWpW9zg+JtG6/
62Adyev00Cwz9wm5UknNdrkXxbV9qATecB4Qgryxg3oXsZ3R972eMmUedCndbi0f
3R/nqv4eO5B+6KvGZAqse1UGMoYiFXoM/4V3nwiYbTKVczyKXOOJIIFhC7ftjckC
raY4p1akbe+koMuhY0CW7YPn9/zBxYBpIWfwrWfjf4X/Vn0EBev6L+l0PVx0JmeY
3WM1aRT02ph1HT75eAxevmHognm58b/aVTfGEQiP6e3113zwiG1K9CGCO1ls54Fn
GwIgq36NAgMBAAECggEAApCnJSWyeN/iUVaa94BPlpfRvps1KVPPtbs3SVa2yVE2
TscQoE05IhANkilwjhjEu1/a7zZ7AKKLua8ZLOY91cpS0wGJeVUr8d4Jr0C6uZbC
V3Og5NHcKuXGW2FDcoVhllWbJ5o/4FXTP/Ntm2diphNttYT1uYTNqR52LAyB7C6I
8l39ok4O5pYKKXpsBslI9c4dxUkcgbDu3dHrapJKysODIDW1cQ1IYqzFYXHFnTiz
9QPChXRE9d6LdyCCKlhb/zltdAlZA8QyLGurrDnGNjNOnPRIoKLX8+b2DffVGCrG
AhYfAiISJsvVhQkBiQAlr2XRgDmjSV7npjFNbmFEkQKBgQDcd2zIYPsp5xkx01oj
Wb6IYlICMV7noWQTwcnam3h7qEz/5iI1xzYBU8pZksSLZeL2fHWut2B0uc2K1Z7t
cT6FKB4Q/obGfbS7iFKYHqWCReD4aV5IYSpmdSbVhkODgSEx9aA/VlH/m/nK4fI6
BhsNSRFyRBck8LAy2r9RkLBVOQKBgQDL3T5AaxNOJPqA9DTE6jgGGyfo0iEsDkjX
JBJjE9YgnjPy5KNOqf3OlIHuQJK99c0aG81m0Z6m7WdMIMRzI2pmzFdyM/7ClO8U
1veVxxqdySvwc8cYkkuefolBioOoSSi8uCgLfChMw9EJ2M0uD0ZKVsWz6PMB0VHn
dCy8AqBn9QKBgQChSJzEWm5j0TSVRtECW30PuR3VjNipC2BzM6m/y0zw6caqzmjo
frv7bJjzvnMap4bKW3KcRnrB6ct8bZq+icH7F8YnGIzwWLYHG0uRDZp3GzfhgvP+
b1bdbYbjXj21zpnCOrbonvWN0UWELpdN63mO1o100ms8EvhTu8OKoBbfwQKBgELV
NCxQLhMHQmx2IrqPgnBWBL5p7OARisWlGLYMcb1dv/AYDoWiaweHXhUqbDEEXQn7
JVpYzCczWxL1BxIsARzUTrKs4w8NXle5pY8fp9Ukd1grzJB8nXfHSd4Ht+O6oDVG
NjKVsGyCIYyV26YG8ec7DTNO4iOtaKl1R5kXT1jlAoGBANCx63cLquVrx8Sk5LP+
f2ZrCv+gFIgBmBvH+5QNh+qU+IrEs5o+h5ccz5jBnwwwS0xpVLiNjMs1hvN7jTAz
mlhYzbQhsemFGG8fEhO2ay7j/lIJfaIer8owGPP1KGoMOCvo9C4QmTGVzypu7Jh3
d1/NSqSuhxLZTAHuMJS6uoKM
-----END PRIVATE KEY-----
"""
SANDBOX_WEBHOOK_PUBLIC_KEY = (
    serialization.load_pem_private_key(SANDBOX_WEBHOOK_PRIVATE_KEY.encode(), password=None)
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)

# Conekta's error type <stem>_error goes with codes conekta.errors.<stem>.* and a status.
ERROR_STATUS = {
    "malformed_request": 400,
    "authentication": 401,
    "processing": 402,
    "resource_not_found": 404,
    "parameter_validation": 422,
    "precondition_required": 428,
}
ERRORS = {  # our name -> (stem, code suffix, message)
    "malformed": ("malformed_request", "json", "The request body is not a JSON object."),
    "missing_key": ("authentication", "missing_key", "Please include your access key."),
    "invalid_key": ("authentication", "invalid_key", "The access key is not valid."),
    "declined": ("processing", "bank.declined", "The card was declined by the bank."),
    "not_found": ("resource_not_found", "entity", "The resource was not found."),
    "currency": ("parameter_validation", "currency", "The currency is not supported here."),
    "customer": ("parameter_validation", "customer_info", "Needs name, email and phone."),
    "items": ("parameter_validation", "line_items", "Needs name, unit_price and quantity."),
    "charges": ("parameter_validation", "charges", "This sandbox takes one charge per order."),
    "amount": ("parameter_validation", "charge.amount", "The amount is out of range."),
    "method": ("parameter_validation", "payment_method.type", "Unsupported payment method."),
    "token": ("parameter_validation", "token.not_found", "The card token does not exist."),
    "installments": (
        "parameter_validation",
        "charge.monthly_installments.not_supported",
        "The card or the amount does not qualify for these monthly installments.",
    ),
    "expires_at": ("parameter_validation", "expires_at", "expires_at must be in the future."),
    "refund": ("parameter_validation", "refund.amount", "Needs a reason and an amount."),
    "not_refundable": ("parameter_validation", "order.not_refundable", "Not refundable."),
    "idempotency": ("parameter_validation", "idempotency_key", "Idempotency-Key already used."),
    "not_cancelable": ("precondition_required", "order.cannot_be_canceled", "Not pending."),
    "not_capturable": (
        "precondition_required",
        "order.cannot_be_captured",
        "Only a pre-authorized order can be captured.",
    ),
    "capture": ("parameter_validation", "capture.amount", "Up to the authorized amount."),
    "funds": ("processing", "payout.insufficient_funds", "Insufficient funds."),
    "payout": ("parameter_validation", "payout", "Needs amount, MXN and an SPEI method."),
    "clabe": ("parameter_validation", "payout.clabe", "The CLABE is not valid."),
}


def fail(name: str, param: str | None = None, **extra: Any) -> JSONResponse:
    """Conekta's error envelope for one of ERRORS."""
    stem, suffix, message = ERRORS[name]
    detail = {"code": f"conekta.errors.{stem}.{suffix}", "message": message, "param": param}
    body = {"object": "error", "type": f"{stem}_error", "log_id": object_id(), **extra}
    return JSONResponse({**body, "details": [detail]}, status_code=ERROR_STATUS[stem])


def object_id() -> str:
    """An id shaped like Conekta's charge, refund and event ids (24 hex digits)."""
    return secrets.token_hex(12)


def listing(data: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "has_more": False, "total": len(data), "data": data}


def sign_webhook(body: bytes, timestamp: int) -> dict[str, str]:
    """Conekta's signature header; its scheme signs the body alone, with no timestamp."""
    return {"Digest": sign_payload(body, SANDBOX_WEBHOOK_PRIVATE_KEY)}


def order_problem(params: dict[str, Any]) -> Response | None:
    """The 422 Conekta answers to an order it would not create, or None."""
    customer, items, charges = (params.get(k) for k in ("customer_info", "line_items", "charges"))
    if params.get("currency") not in {"MXN", "USD"}:
        return fail("currency", "currency")
    if not isinstance(customer, dict) or not all(
        customer.get(k) for k in ("name", "email", "phone")
    ):
        return fail("customer", "customer_info")
    if not isinstance(items, list) or not items or not all(map(_valid_item, items)):
        return fail("items", "line_items")
    if not isinstance(charges, list) or len(charges) != 1 or not isinstance(charges[0], dict):
        return fail("charges", "charges")
    total = sum(item["unit_price"] * item["quantity"] for item in items)
    if total <= 0 or charges[0].get("amount", total) != total:
        return fail("amount", "amount")
    return None


def _valid_item(item: Any) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        return False
    price, quantity = item.get("unit_price"), item.get("quantity")
    return whole(price) and whole(quantity) and price >= 0 and quantity >= 1


def whole(value: object) -> TypeGuard[int]:
    """An integer, and not a JSON true or false."""
    return isinstance(value, int) and not isinstance(value, bool)
