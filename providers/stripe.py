"""Stripe: cards and OXXO through the PaymentIntents API (docs.stripe.com/api).

Form-encoded requests with bracketed keys, `Authorization: Bearer <secret key>`,
an `Idempotency-Key` on every call that creates or moves money. Webhooks are
verified with Stripe's `Stripe-Signature` scheme (HMAC-SHA256 of "t.body", any
`v1` may match, 300 s tolerance), as stripe-python's `_webhook.py` does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from app.domain import signatures
from app.domain.methods import PaymentMethodType
from app.domain.next_action import NextAction, OxxoVoucher, RedirectToUrl
from providers.base import (
    IDEMPOTENCY_MISMATCH,
    INVALID_REQUEST,
    PaymentRequest,
    ProviderConfig,
    ProviderError,
    ProviderEvent,
    ProviderPayment,
    ProviderRefund,
    ProviderStatus,
    RefundRequest,
    WebhookRejected,
    WireRequest,
)
from providers.http import PspHttp, json_body

# Stripe rejects webhook timestamps older than this (stripe-python DEFAULT_TOLERANCE).
SIGNATURE_TOLERANCE_SECONDS = 300

STATUS_MAP = {
    "requires_payment_method": ProviderStatus.FAILED,  # after a failed attempt
    "requires_confirmation": ProviderStatus.PENDING,
    "requires_action": ProviderStatus.REQUIRES_ACTION,
    "processing": ProviderStatus.PROCESSING,
    "requires_capture": ProviderStatus.PROCESSING,
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
# Search pages hold up to 100 objects; an intent has a handful of attempts at most.
SEARCH_LIMIT = 100


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


class StripeProvider:
    name = "stripe"
    methods = frozenset({PaymentMethodType.CARD, PaymentMethodType.OXXO})

    def __init__(
        self, config: ProviderConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self.http = PspHttp(
            self.name,
            config,
            transport=transport,
            headers={"Authorization": f"Bearer {config.api_key}", "Stripe-Version": API_VERSION},
        )

    def prepare_payment(self, request: PaymentRequest, idempotency_key: str) -> WireRequest:
        return WireRequest(
            "POST",
            "/v1/payment_intents",
            urlencode(encode_form(self._create_params(request))).encode(),
            (
                ("Content-Type", FORM_CONTENT_TYPE),
                ("Stripe-Version", API_VERSION),
                ("Idempotency-Key", idempotency_key),
            ),
        )

    async def send_payment(self, request: PaymentRequest, wire: WireRequest) -> ProviderPayment:
        return self._payment_from_response(await self.http.send(wire))

    async def create_payment(
        self, request: PaymentRequest, idempotency_key: str
    ) -> ProviderPayment:
        return await self.send_payment(request, self.prepare_payment(request, idempotency_key))

    async def search_payments(self, intent_id: str) -> list[ProviderPayment]:
        """Stripe's Search API on our metadata (eventually consistent: a PaymentIntent
        can take up to a minute, in outages longer, to show up)."""
        query = f"metadata['{INTENT_METADATA_KEY}']:'{intent_id}'"
        response = await self.http.request(
            "GET",
            "/v1/payment_intents/search",
            params={"query": query, "limit": SEARCH_LIMIT},
        )
        body = json_body(self.name, response)
        if response.status_code >= 400:
            raise _api_error(self.name, response.status_code, body)
        found = [payment_from_stripe(o) for o in body.get("data") or [] if isinstance(o, dict)]
        return [p for p in found if _intent_hint(p.raw) == intent_id]

    def _create_params(self, request: PaymentRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "amount": request.amount.minor,
            "currency": request.amount.currency.value.lower(),
            "confirm": True,
            "description": request.description,
            "metadata": {
                INTENT_METADATA_KEY: request.intent_id,
                ATTEMPT_METADATA_KEY: request.attempt_id,
            },
        }
        if request.method is PaymentMethodType.CARD:
            params["payment_method_types"] = ["card"]
            params["payment_method_data"] = {
                "type": "card",
                "card": {"token": request.card_token},
            }
            params["return_url"] = request.return_url
        elif request.method is PaymentMethodType.OXXO:
            params["payment_method_types"] = ["oxxo"]
            params["payment_method_data"] = {
                "type": "oxxo",
                "billing_details": {
                    "name": request.customer_name or "Cliente",
                    "email": request.customer_email,
                },
            }
            params["payment_method_options"] = {
                "oxxo": {"expires_after_days": request.expires_in_days}
            }
        else:
            raise ProviderError(self.name, f"does not serve {request.method}", retryable=False)
        return params

    def _payment_from_response(self, response: httpx.Response) -> ProviderPayment:
        body = json_body(self.name, response)
        if response.status_code == 402 or (
            response.status_code == 400 and body.get("error", {}).get("type") == "card_error"
        ):
            return self._declined(body["error"])
        if response.status_code >= 400:
            raise _api_error(self.name, response.status_code, body)
        return payment_from_stripe(body)

    def _declined(self, error: Mapping[str, Any]) -> ProviderPayment:
        """A card_error as an answer: FAILED whatever its code (raw keeps the code)."""
        intent = error.get("payment_intent") or {}
        return ProviderPayment(
            provider_ref=str(intent.get("id") or ""),
            status=ProviderStatus.FAILED,
            error_code=CARD_DECLINED,
            error_message=str(error.get("message") or "The card was declined."),
            raw=dict(error),
        )

    async def fetch_payment(self, provider_ref: str) -> ProviderPayment:
        response = await self.http.request("GET", f"/v1/payment_intents/{provider_ref}")
        return self._payment_from_response(response)

    async def cancel_payment(self, provider_ref: str, idempotency_key: str) -> ProviderPayment:
        response = await self.http.request(
            "POST",
            f"/v1/payment_intents/{provider_ref}/cancel",
            **form({"cancellation_reason": "abandoned"}),
            idempotency_key=idempotency_key,
        )
        return self._payment_from_response(response)

    async def refund(self, request: RefundRequest, idempotency_key: str) -> ProviderRefund:
        params = {
            "payment_intent": request.provider_ref,
            "amount": request.amount.minor,
            "reason": "requested_by_customer",
            "metadata": {"cobro_refund_id": request.refund_id},
        }
        response = await self.http.request(
            "POST", "/v1/refunds", **form(params), idempotency_key=idempotency_key
        )
        body = json_body(self.name, response)
        if response.status_code >= 400:
            raise _api_error(self.name, response.status_code, body)
        return ProviderRefund(
            provider_ref=str(body["id"]),
            status=REFUND_STATUS_MAP.get(str(body.get("status")), ProviderStatus.PENDING),
            raw=body,
        )

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, now: int
    ) -> list[ProviderEvent]:
        header = next((v for k, v in headers.items() if k.lower() == "stripe-signature"), "")
        verify_signature(body, header, self.config.webhook_secrets, now=now)
        try:
            event = json.loads(body)
            kind = str(event["type"])
            obj = event["data"]["object"]
            event_id = str(event["id"])
        except (ValueError, KeyError, TypeError):
            raise WebhookRejected("body is not a Stripe event") from None
        if not isinstance(obj, dict):
            raise WebhookRejected("event data.object is not an object")
        occurred = datetime.fromtimestamp(int(event.get("created") or now), UTC)
        if kind.startswith("payment_intent."):
            payment = payment_from_stripe(obj)
            return [
                ProviderEvent(
                    provider=self.name,
                    event_id=event_id,
                    type=kind,
                    status=payment.status,
                    provider_ref=payment.provider_ref,
                    amount=payment.amount_received,
                    occurred_at=occurred,
                    intent_hint=_intent_hint(obj),
                    raw=event,
                )
            ]
        if kind.startswith("refund.") or kind == "charge.refund.updated":
            return [
                ProviderEvent(
                    provider=self.name,
                    event_id=event_id,
                    type=kind,
                    status=REFUND_STATUS_MAP.get(str(obj.get("status")), ProviderStatus.PENDING),
                    refund_ref=str(obj.get("id")),
                    occurred_at=occurred,
                    raw=event,
                )
            ]
        # An event type we do not act on is still acknowledged (and stored).
        return [ProviderEvent(self.name, event_id, kind, None, occurred_at=occurred, raw=event)]

    async def aclose(self) -> None:
        await self.http.aclose()


def payment_from_stripe(obj: Mapping[str, Any]) -> ProviderPayment:
    """A Stripe PaymentIntent object in neutral terms (unknown status: PENDING)."""
    status = STATUS_MAP.get(str(obj.get("status")), ProviderStatus.PENDING)
    error = obj.get("last_payment_error") or {}
    if status is ProviderStatus.FAILED and not error:
        # requires_payment_method with no error is a fresh intent, not a failure.
        status = ProviderStatus.PENDING
    next_action = _next_action(obj.get("next_action"))
    lookup = (next_action.reference,) if isinstance(next_action, OxxoVoucher) else ()
    failed = status is ProviderStatus.FAILED
    return ProviderPayment(
        provider_ref=str(obj.get("id") or ""),
        status=status,
        next_action=next_action,
        amount_received=_int_or_none(obj.get("amount_received")),
        # A failed attempt failed on the card, whatever Stripe's code (raw keeps it).
        error_code=CARD_DECLINED if failed else None,
        error_message=error.get("message") if failed else None,
        lookup_keys=lookup,
        attempt_hint=_metadata(obj, ATTEMPT_METADATA_KEY),
        raw=dict(obj),
    )


def _next_action(data: Any) -> NextAction | None:
    if not isinstance(data, Mapping):
        return None
    kind = data.get("type")
    if kind == "oxxo_display_details":
        details = data["oxxo_display_details"]
        return OxxoVoucher(
            reference=str(details["number"]),
            expires_at=datetime.fromtimestamp(int(details["expires_after"]), UTC),
            hosted_voucher_url=details.get("hosted_voucher_url"),
        )
    if kind == "redirect_to_url":
        redirect = data["redirect_to_url"]
        return RedirectToUrl(url=str(redirect["url"]), return_url=redirect.get("return_url"))
    return None


def _intent_hint(obj: Mapping[str, Any]) -> str | None:
    """Our intent id, as the PaymentIntent's metadata echoes it."""
    return _metadata(obj, INTENT_METADATA_KEY)


def _metadata(obj: Mapping[str, Any], key: str) -> str | None:
    metadata = obj.get("metadata")
    hint = metadata.get(key) if isinstance(metadata, Mapping) else None
    return hint if isinstance(hint, str) and hint else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _api_error(provider: str, status: int, body: Mapping[str, Any]) -> ProviderError:
    error = body.get("error") or {}
    kind = error.get("type", "error")
    if kind == "idempotency_error":
        # The key was first used with other parameters: Stripe did something with it
        # then, and does not say what here. Not a refusal: the outcome is unknown.
        return ProviderError(
            provider,
            f"{error.get('message', 'idempotency key reused')} (HTTP {status} {kind})",
            retryable=False,
            code=IDEMPOTENCY_MISMATCH,
            outcome_unknown=True,
        )
    return ProviderError(
        provider,
        f"{error.get('message', 'no message')} (HTTP {status} {kind})",
        retryable=False,
        # A 401/403 is our misconfiguration; anything else is Stripe refusing the request.
        code="PROVIDER_AUTH" if status in (401, 403) else INVALID_REQUEST,
    )


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
