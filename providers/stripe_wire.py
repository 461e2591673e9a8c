"""Stripe's wire vocabulary: pure, no I/O (providers/stripe.py does the HTTP).

Status tables (a PaymentIntent's `status`, a Refund's `status`), each mapped to a
neutral status, anything not in a table PENDING, never success; the form encoding
with bracketed keys Stripe's API takes; the reading of a PaymentIntent object (an
answer, a search hit or an event's `data.object`) through providers/shapes.py; and
webhook signatures in Stripe's `Stripe-Signature` scheme (HMAC-SHA256 of "t.body",
any `v1` may match, 300 s tolerance), as stripe-python's `_webhook.py` checks them;
and a card's installments, 3-D Secure policy and capture method as Stripe MX takes
them, with the refusals the contract names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from app.domain import signatures
from app.domain.next_action import NextAction, OxxoVoucher, RedirectToUrl
from providers.base import (
    CARD_TOKEN_INVALID,
    INSTALLMENTS_UNAVAILABLE,
    PaymentRequest,
    ProviderPayment,
    ProviderStatus,
    WebhookRejected,
)
from providers.shapes import MAX_EVENT_TYPE, MAX_HANDLE, Fields

# Stripe rejects webhook timestamps older than this (stripe-python DEFAULT_TOLERANCE).
SIGNATURE_TOLERANCE_SECONDS = 300

STATUS_MAP = {
    "requires_payment_method": ProviderStatus.FAILED,  # after a failed attempt
    "requires_confirmation": ProviderStatus.PENDING,
    "requires_action": ProviderStatus.REQUIRES_ACTION,
    "processing": ProviderStatus.PROCESSING,
    "requires_capture": ProviderStatus.REQUIRES_CAPTURE,
    "succeeded": ProviderStatus.SUCCEEDED,
    "canceled": ProviderStatus.CANCELED,
}

REFUND_STATUS_MAP = {
    "succeeded": ProviderStatus.SUCCEEDED,
    "pending": ProviderStatus.PENDING,
    "requires_action": ProviderStatus.PENDING,
    "failed": ProviderStatus.FAILED,
    "canceled": ProviderStatus.FAILED,
}

# Every card_error (declined, expired_card, processing_error, authentication_required...)
# is one contract code: the card failed, and the PSP's message says why.
CARD_DECLINED = "CARD_DECLINED"
# Where our intent id travels, and comes back in events (`metadata` on the PaymentIntent).
INTENT_METADATA_KEY = "cobro_intent_id"
# And the attempt's id, so that a search tells which attempt a PaymentIntent belongs to.
ATTEMPT_METADATA_KEY = "cobro_attempt_id"
API_VERSION = "2024-06-20"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# Longest URL (voucher page, 3-D Secure redirect) and error message read from Stripe.
MAX_URL = 2048
MAX_MESSAGE = 1000


def encode_form(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Flatten nested params into Stripe's bracket notation: a[b][0]=c."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            pairs.extend(encode_form(value, name))
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    pairs.extend(encode_form(item, f"{name}[{i}]"))
                else:
                    pairs.append((f"{name}[{i}]", _scalar(item)))
        else:
            pairs.append((name, _scalar(value)))
    return pairs


def form(params: Mapping[str, Any]) -> dict[str, Any]:
    """httpx keyword arguments for a form-encoded body in Stripe's notation."""
    return {
        "content": urlencode(encode_form(params)).encode(),
        "headers": {"Content-Type": FORM_CONTENT_TYPE},
    }


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def payment_from_stripe(obj: Mapping[str, Any] | Fields) -> ProviderPayment:
    """A Stripe PaymentIntent object in neutral terms (unknown status: PENDING);
    Malformed if it is not one."""
    fields = obj if isinstance(obj, Fields) else Fields(obj, "payment_intent")
    status_text = fields.optional_text("status", max_length=MAX_EVENT_TYPE)
    status = STATUS_MAP.get(status_text or "", ProviderStatus.PENDING)
    error = fields.optional_fields("last_payment_error")
    if status is ProviderStatus.FAILED and error is None:
        # requires_payment_method with no error is a fresh intent, not a failure.
        status = ProviderStatus.PENDING
    next_action = _next_action(fields.optional_fields("next_action"))
    lookup = (next_action.reference,) if isinstance(next_action, OxxoVoucher) else ()
    failed = status is ProviderStatus.FAILED
    message = error.optional_text("message", max_length=MAX_MESSAGE) if error else None
    return ProviderPayment(
        provider_ref=fields.text("id", max_length=MAX_HANDLE),
        status=status,
        next_action=next_action,
        amount_received=fields.optional_amount("amount_received"),
        # A failed attempt failed on the card, whatever Stripe's code (raw keeps it).
        error_code=CARD_DECLINED if failed else None,
        error_message=message if failed else None,
        lookup_keys=lookup,
        attempt_hint=_metadata(fields, ATTEMPT_METADATA_KEY),
        raw=dict(fields.values),
    )


def _next_action(action: Fields | None) -> NextAction | None:
    if action is None:
        return None
    kind = action.optional_text("type", max_length=MAX_EVENT_TYPE)
    if kind == "oxxo_display_details":
        details = action.fields("oxxo_display_details")
        return OxxoVoucher(
            reference=details.text("number", max_length=MAX_HANDLE),
            expires_at=details.epoch_seconds("expires_after"),
            hosted_voucher_url=details.optional_text("hosted_voucher_url", max_length=MAX_URL),
        )
    if kind == "redirect_to_url":
        redirect = action.fields("redirect_to_url")
        return RedirectToUrl(
            url=redirect.text("url", max_length=MAX_URL),
            return_url=redirect.optional_text("return_url", max_length=MAX_URL),
        )
    return None


def intent_hint(obj: Fields) -> str | None:
    """Our intent id, as the PaymentIntent's metadata echoes it."""
    return _metadata(obj, INTENT_METADATA_KEY)


def _metadata(obj: Fields, key: str) -> str | None:
    metadata = obj.optional_fields("metadata")
    return metadata.optional_text(key, max_length=MAX_HANDLE) if metadata else None


def sign_payload(body: bytes, secret: str, timestamp: int) -> str:
    """The `Stripe-Signature` header value for `body`, as Stripe computes it."""
    return signatures.sign(body, secret, timestamp)


def verify_signature(
    body: bytes,
    header: str,
    secrets: tuple[str, ...],
    *,
    now: int,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> None:
    """Raise WebhookRejected unless some `v1` in `header` signs `body` with a secret."""
    if not header.isascii():
        # Stripe's header is ASCII. Anything else would reach hmac.compare_digest as a
        # non-ASCII str, a TypeError (a 500), or int() as a digit such as "²".
        raise WebhookRejected("Stripe-Signature: not ASCII")
    try:
        signatures.verify(body, header, secrets, now=now, tolerance=tolerance)
    except signatures.BadSignature as exc:
        raise WebhookRejected(f"Stripe-Signature: {exc}") from None


# -- cards the Mexican way (contract section 7) -------------------------------------

# Where a card token travels in our requests: Stripe names it as `param` when it
# does not know the token ("No such token", code resource_missing).
TOKEN_PARAM = "payment_method_data[card][token]"
# Stripe's codes for an installment plan the card or the amount does not qualify for.
INSTALLMENT_CODES = frozenset({"installment_plan_unavailable", "invalid_installment_plan"})


def card_options(request: PaymentRequest) -> dict[str, Any]:
    """Meses sin intereses as Stripe MX takes them (payment_method_options.card.
    installments.plan: count, interval month, type fixed_count), 3-D Secure asked for
    on every payment (request_three_d_secure=any; left out, Stripe decides), and an
    authorization to capture later (capture_method=manual)."""
    params: dict[str, Any] = {"capture_method": "manual"} if request.capture_later else {}
    card: dict[str, Any] = {}
    if request.installments:
        card["installments"] = {
            "plan": {"count": request.installments, "interval": "month", "type": "fixed_count"}
        }
    if request.require_three_d_secure:
        card["request_three_d_secure"] = "any"
    return params | ({"payment_method_options": {"card": card}} if card else {})


def card_refusal(error: Mapping[str, Any]) -> str | None:
    """The contract code of a card request Stripe refused for a reason it names."""
    if error.get("code") == "resource_missing" and error.get("param") == TOKEN_PARAM:
        return CARD_TOKEN_INVALID
    if error.get("code") in INSTALLMENT_CODES:
        return INSTALLMENTS_UNAVAILABLE
    return None
