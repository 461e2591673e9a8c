"""Stripe: cards and OXXO through the PaymentIntents API (docs.stripe.com/api).

Form-encoded requests with bracketed keys, `Authorization: Bearer <secret key>`,
an `Idempotency-Key` on every call that creates or moves money. Webhooks are
verified with Stripe's `Stripe-Signature` scheme (HMAC-SHA256 of "t.body", any
`v1` may match, 300 s tolerance), as stripe-python's `_webhook.py` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from app.domain import signatures
from app.domain.methods import PaymentMethodType
from app.domain.next_action import NextAction, OxxoVoucher, RedirectToUrl
from providers.base import (
    CARD_TOKEN_INVALID,
    IDEMPOTENCY_MISMATCH,
    INSTALLMENTS_UNAVAILABLE,
    INVALID_REQUEST,
    MalformedEvent,
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
from providers.shapes import (
    MAX_EVENT_ID,
    MAX_EVENT_TYPE,
    MAX_HANDLE,
    Fields,
    Malformed,
    load_json,
)

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
# Search pages hold up to 100 objects; an intent has a handful of attempts at most.
SEARCH_LIMIT = 100
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


class StripeProvider:
    name = "stripe"
    methods = frozenset({PaymentMethodType.CARD, PaymentMethodType.OXXO})
    # Where Stripe.js mints card tokens (a checkout posts the card there).
    tokenize_url = "https://api.stripe.com/v1/tokens"

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
        try:
            found = [payment_from_stripe(o) for o in Fields(body, "list").each_fields("data")]
        except Malformed as exc:
            raise _unreadable(self.name, exc) from None
        return [p for p in found if _intent_hint(Fields(p.raw, "")) == intent_id]

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
            params.update(card_options(request))
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
        try:
            return payment_from_stripe(body)
        except Malformed as exc:
            raise _unreadable(self.name, exc) from None

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

    async def capture_payment(
        self, provider_ref: str, amount: int, idempotency_key: str
    ) -> ProviderPayment:
        """POST /v1/payment_intents/{id}/capture, amount_to_capture (the rest is released)."""
        response = await self.http.request(
            "POST",
            f"/v1/payment_intents/{provider_ref}/capture",
            **form({"amount_to_capture": amount}),
            idempotency_key=idempotency_key,
        )
        return self._payment_from_response(response)

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
            return [self._event(Fields(load_json(body), "event"))]
        except Malformed as exc:
            raise MalformedEvent(f"not a Stripe event: {exc}") from None

    def _event(self, event: Fields) -> ProviderEvent:
        """A Stripe Event (docs.stripe.com/api/events/object) read into neutral terms."""
        event_id = event.text("id", max_length=MAX_EVENT_ID)
        kind = event.text("type", max_length=MAX_EVENT_TYPE)
        occurred = event.epoch_seconds("created")
        obj = event.fields("data").fields("object")
        if kind.startswith("payment_intent."):
            payment = payment_from_stripe(obj)
            return ProviderEvent(
                provider=self.name,
                event_id=event_id,
                type=kind,
                status=payment.status,
                provider_ref=payment.provider_ref,
                amount=payment.amount_received,
                occurred_at=occurred,
                intent_hint=_intent_hint(obj),
                raw=dict(event.values),
            )
        if kind.startswith("refund.") or kind == "charge.refund.updated":
            status = obj.optional_text("status", max_length=MAX_EVENT_TYPE)
            return ProviderEvent(
                provider=self.name,
                event_id=event_id,
                type=kind,
                status=REFUND_STATUS_MAP.get(status or "", ProviderStatus.PENDING),
                refund_ref=obj.text("id", max_length=MAX_HANDLE),
                occurred_at=occurred,
                raw=dict(event.values),
            )
        # An event type we do not act on is still acknowledged (and stored).
        return ProviderEvent(
            self.name, event_id, kind, None, occurred_at=occurred, raw=dict(event.values)
        )

    async def aclose(self) -> None:
        await self.http.aclose()


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


def _intent_hint(obj: Fields) -> str | None:
    """Our intent id, as the PaymentIntent's metadata echoes it."""
    return _metadata(obj, INTENT_METADATA_KEY)


def _metadata(obj: Fields, key: str) -> str | None:
    metadata = obj.optional_fields("metadata")
    return metadata.optional_text(key, max_length=MAX_HANDLE) if metadata else None


def _unreadable(provider: str, exc: Malformed) -> ProviderError:
    """A 2xx answer Cobro cannot read: the PSP may have acted on the request, so the
    outcome is unknown (the attempt stays pending, and is replayed or searched for)."""
    return ProviderError(
        provider,
        f"answered something Cobro cannot read ({exc})",
        retryable=True,
        outcome_unknown=True,
    )


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
        code="PROVIDER_AUTH" if status in (401, 403) else card_refusal(error) or INVALID_REQUEST,
    )


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
