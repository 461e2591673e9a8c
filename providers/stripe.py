"""Stripe: cards and OXXO through the PaymentIntents API (docs.stripe.com/api).

Form-encoded requests with bracketed keys, `Authorization: Bearer <secret key>`,
an `Idempotency-Key` on every call that creates or moves money. Status tables, the
form encoding, the reading of a PaymentIntent and webhook signatures:
providers/stripe_wire.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from app.domain.methods import PaymentMethodType
from providers.base import (
    IDEMPOTENCY_MISMATCH,
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
from providers.stripe_wire import (
    API_VERSION,
    ATTEMPT_METADATA_KEY,
    CARD_DECLINED,
    FORM_CONTENT_TYPE,
    INTENT_METADATA_KEY,
    REFUND_STATUS_MAP,
    card_options,
    card_refusal,
    encode_form,
    form,
    intent_hint,
    payment_from_stripe,
    verify_signature,
)

# Search pages hold up to 100 objects; an intent has a handful of attempts at most.
SEARCH_LIMIT = 100


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
        return [p for p in found if intent_hint(Fields(p.raw, "")) == intent_id]

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
                intent_hint=intent_hint(obj),
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
