"""Conekta: cards, OXXO cash and SPEI through the Orders API (developers.conekta.com).

As conekta/openapi and conekta-python (OrdersApi, OrderRequest, ChargeRequest) show:
JSON, `Authorization: Bearer <private key>`, the version in `Accept:
application/vnd.conekta-v2.2.0+json`, an `Idempotency-Key` on calls that move money.
`POST /orders` takes customer_info {name, email, phone} (all required), line_items
[{name, unit_price, quantity}] and one charge whose payment_method.type is `card`
(token_id), `cash` or `spei` (expires_at, unix). Cash answers {object cash_payment,
type oxxo, 14-digit reference, expires_at}; SPEI {object bank_transfer_payment, clabe,
bank "STP"}. `GET /orders/{id}`, `POST /orders/{id}/cancel` and `POST
/orders/{id}/refunds` {amount, reason} answer the order. Errors are {object "error",
type, details [{code, message}]}; a card that fails is a 402 processing_error.
Webhook signatures and the status tables: providers/conekta_wire.py.

SPEI here is paid in full or not at all: Conekta returns a transfer of any other amount
than the order's ("will be rejected automatically", its help centre), and says so in one
`order.paid` per order. So a payment has no Deposits to list (ProviderPayment.deposits
stays empty): amount_received is the order's paid total, and the event id is Conekta's own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from app.domain.methods import PaymentMethodType
from app.domain.next_action import NextAction, OxxoVoucher, RedirectToUrl, SpeiInstructions
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
from providers.conekta_wire import (
    ATTEMPT_METADATA_KEY,
    DIGEST_HEADER,
    EVENT_STATUS,
    INTENT_METADATA_KEY,
    PAID_CHARGE_STATUSES,
    REFUND_EVENTS,
    REFUND_STATUS_MAP,
    STATUS_MAP,
    load_public_keys,
    verify_signature,
)
from providers.http import PspHttp, json_body

# The Orders API version this adapter speaks (conekta-python's OrdersApi sends it).
ACCEPT = "application/vnd.conekta-v2.2.0+json"
# Conekta requires name, email and phone; the contract makes them optional.
PLACEHOLDER_NAME = "Cliente"
PLACEHOLDER_EMAIL = "cliente@example.com"
PLACEHOLDER_PHONE = "5500000000"
DEFAULT_ITEM_NAME = "Pago"
# Who the customer sees as the SPEI beneficiary unless options["beneficiary"] says.
DEFAULT_BENEFICIARY = "Cobro"
# The refund reason Conekta's examples send for a customer's request.
REFUND_REASON = "requested_by_client"
# The most orders one listing page holds (GET /orders?limit=, 1-250).
SEARCH_LIMIT = 250
# SPEI's referencia numérica is 1 to 7 digits (Banxico; stpmex-python accepts 1-9,999,999).
MAX_NUMERIC_REFERENCE = 9_999_999


class ConektaProvider:
    name = "conekta"
    methods = frozenset({PaymentMethodType.CARD, PaymentMethodType.OXXO, PaymentMethodType.SPEI})

    def __init__(
        self, config: ProviderConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self.beneficiary = config.options.get("beneficiary") or DEFAULT_BENEFICIARY
        # Several PEM blocks may be given, so a key can be rotated without a gap.
        self.webhook_keys = load_public_keys(config.options.get("webhook_public_key", ""))
        self.http = PspHttp(
            self.name,
            config,
            transport=transport,
            headers={"Authorization": f"Bearer {config.api_key}", "Accept": ACCEPT},
        )

    def prepare_payment(self, request: PaymentRequest, idempotency_key: str) -> WireRequest:
        body = json.dumps(self._order_params(request), separators=(",", ":")).encode()
        headers = (
            ("Content-Type", "application/json"),
            ("Accept", ACCEPT),
            ("Idempotency-Key", idempotency_key),
        )
        return WireRequest("POST", "/orders", body, headers)

    async def send_payment(self, request: PaymentRequest, wire: WireRequest) -> ProviderPayment:
        return self._payment_from_response(await self.http.send(wire))

    async def create_payment(
        self, request: PaymentRequest, idempotency_key: str
    ) -> ProviderPayment:
        return await self.send_payment(request, self.prepare_payment(request, idempotency_key))

    async def search_payments(self, intent_id: str) -> list[ProviderPayment]:
        """Conekta's order listing, searched for our intent id (`search` is a general
        text search, so the metadata of each order found is checked)."""
        response = await self.http.request(
            "GET", "/orders", params={"search": intent_id, "limit": SEARCH_LIMIT}
        )
        body = json_body(self.name, response)
        if response.status_code >= 400:
            raise _api_error(self.name, response.status_code, body)
        orders = [o for o in _list(body) if isinstance(o, Mapping)]
        return [
            payment_from_order(o, self.beneficiary) for o in orders if _intent_hint(o) == intent_id
        ]

    def _order_params(self, request: PaymentRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "currency": request.amount.currency.value,
            "customer_info": {
                "name": request.customer_name or PLACEHOLDER_NAME,
                "email": request.customer_email or PLACEHOLDER_EMAIL,
                "phone": PLACEHOLDER_PHONE,
            },
            "line_items": [
                {
                    "name": request.description or DEFAULT_ITEM_NAME,
                    "unit_price": request.amount.minor,
                    "quantity": 1,
                }
            ],
            "metadata": {INTENT_METADATA_KEY: request.intent_id},
            "charges": [self._charge_params(request)],
        }
        if request.attempt_id:
            params["metadata"][ATTEMPT_METADATA_KEY] = request.attempt_id
        if request.method is PaymentMethodType.CARD and request.return_url:
            # Where Conekta sends the customer back after 3-D Secure (OrderRequest.return_url).
            params["return_url"] = request.return_url
        return params

    def _charge_params(self, request: PaymentRequest) -> dict[str, Any]:
        expires_at = request.expires_at
        expires = {"expires_at": int(expires_at.timestamp())} if expires_at else {}
        if request.method is PaymentMethodType.CARD:
            return {"payment_method": {"type": "card", "token_id": request.card_token}}
        if request.method is PaymentMethodType.OXXO:
            return {"payment_method": {"type": "cash", **expires}}
        if request.method is PaymentMethodType.SPEI:
            return {
                "payment_method": {"type": "spei", **expires},
                "reference_id": _spei_reference(request),
            }
        raise ProviderError(
            self.name, f"does not serve {request.method}", retryable=False, code=INVALID_REQUEST
        )

    def _payment_from_response(self, response: httpx.Response) -> ProviderPayment:
        body = json_body(self.name, response)
        if response.status_code == 402:  # Conekta's processing_error: the card failed
            return _declined(body)
        if response.status_code >= 400:
            raise _api_error(self.name, response.status_code, body)
        return payment_from_order(body, self.beneficiary)

    async def fetch_payment(self, provider_ref: str) -> ProviderPayment:
        response = await self.http.request("GET", f"/orders/{provider_ref}")
        return self._payment_from_response(response)

    async def cancel_payment(self, provider_ref: str, idempotency_key: str) -> ProviderPayment:
        response = await self.http.request(
            "POST", f"/orders/{provider_ref}/cancel", idempotency_key=idempotency_key
        )
        return self._payment_from_response(response)

    async def refund(self, request: RefundRequest, idempotency_key: str) -> ProviderRefund:
        if not request.provider_ref:
            raise ProviderError(
                self.name, "a refund needs the order id", retryable=False, code=INVALID_REQUEST
            )
        response = await self.http.request(
            "POST",
            f"/orders/{request.provider_ref}/refunds",
            json={"amount": request.amount.minor, "reason": REFUND_REASON},
            idempotency_key=idempotency_key,
        )
        body = json_body(self.name, response)
        if response.status_code >= 400:
            raise _api_error(self.name, response.status_code, body)
        refund = _latest_refund(body)
        if not refund.get("id"):
            raise ProviderError(self.name, "answered a refund without one", retryable=False)
        return ProviderRefund(str(refund["id"]), _refund_status(body, refund), raw=body)

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, now: int
    ) -> list[ProviderEvent]:
        header = next((v for k, v in headers.items() if k.lower() == DIGEST_HEADER), "")
        verify_signature(body, header, self.webhook_keys)
        event, kind, obj = _event_parts(body)
        occurred = datetime.fromtimestamp(_int(event.get("created_at")) or now, UTC)
        common: dict[str, Any] = {"provider": self.name, "event_id": str(event["id"])}
        common.update(type=kind, occurred_at=occurred, raw=event)
        if kind in REFUND_EVENTS:
            # Refund news names the refund alone, as the core expects of it.
            refund = _latest_refund(obj)
            ref = str(refund["id"]) if refund.get("id") else None
            status = _refund_status(obj, refund) if ref else None
            return [ProviderEvent(**common, status=status, refund_ref=ref)]
        order_id = obj.get("id") if obj.get("object") == "order" else obj.get("order_id")
        # A type not in the table is still returned (and acknowledged), with no status.
        status = EVENT_STATUS.get(kind)
        return [
            ProviderEvent(
                **common,
                status=status,
                provider_ref=str(order_id) if order_id else None,
                lookup_key=_lookup_key(next(iter(_charges(obj)), {}).get("payment_method")),
                amount=_amount_paid(obj) if status is ProviderStatus.SUCCEEDED else None,
                intent_hint=_intent_hint(obj),
            )
        ]

    async def aclose(self) -> None:
        await self.http.aclose()


def payment_from_order(order: Mapping[str, Any], beneficiary: str) -> ProviderPayment:
    """A Conekta order in neutral terms (unknown status: PENDING)."""
    charge = next(iter(_charges(order)), {})
    status = STATUS_MAP.get(str(order.get("payment_status")), ProviderStatus.PENDING)
    next_action = None
    if status is ProviderStatus.REQUIRES_ACTION:
        next_action = _next_action(order, charge, beneficiary)
        if next_action is None:
            status = ProviderStatus.PENDING  # pending, with nothing for the customer to do
    key = _lookup_key(charge.get("payment_method"))
    return ProviderPayment(
        provider_ref=str(order.get("id") or ""),
        status=status,
        next_action=next_action,
        amount_received=_amount_paid(order),
        error_code="CARD_DECLINED" if status is ProviderStatus.FAILED else None,
        error_message=charge.get("failure_message"),
        lookup_keys=(key,) if key else (),
        attempt_hint=_metadata(order, ATTEMPT_METADATA_KEY),
        raw=dict(order),
    )


def _next_action(
    order: Mapping[str, Any], charge: Mapping[str, Any], beneficiary: str
) -> NextAction | None:
    redirect = (order.get("next_action") or {}).get("redirect_to_url") or {}
    if redirect.get("url"):
        return RedirectToUrl(url=str(redirect["url"]), return_url=redirect.get("return_url"))
    method = charge.get("payment_method") or {}
    expires = _int(method.get("expires_at"))
    expires_at = datetime.fromtimestamp(expires, UTC) if expires else None
    if method.get("object") == "cash_payment" and method.get("reference") and expires_at:
        # barcode_url is an image, not a voucher page: Conekta hosts no voucher.
        return OxxoVoucher(reference=str(method["reference"]), expires_at=expires_at)
    clabe = _lookup_key(method)
    if method.get("object") == "bank_transfer_payment" and clabe:
        return SpeiInstructions(
            clabe=clabe,
            bank=str(method.get("receiving_account_bank") or method.get("bank") or "STP"),
            beneficiary=beneficiary,
            reference=str(charge.get("reference_id") or order.get("id") or ""),
            expires_at=expires_at,
        )
    return None


def _intent_hint(obj: Mapping[str, Any]) -> str | None:
    """Our intent id, as an order's metadata echoes it (a charge carries none)."""
    return _metadata(obj, INTENT_METADATA_KEY)


def _metadata(obj: Mapping[str, Any], key: str) -> str | None:
    metadata = obj.get("metadata") if obj.get("object") == "order" else None
    hint = metadata.get(key) if isinstance(metadata, Mapping) else None
    return hint if isinstance(hint, str) and hint else None


def _lookup_key(method: Any) -> str | None:
    """The handle a webhook finds the payment by: OXXO reference or SPEI CLABE."""
    if not isinstance(method, Mapping):
        return None
    if method.get("object") == "cash_payment":
        value = method.get("reference")
    elif method.get("object") == "bank_transfer_payment":
        value = method.get("clabe") or method.get("receiving_account_number")
    else:
        value = None
    return str(value) if value else None


def _charges(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """An order's charges, or the charge itself (charge.* events carry a charge)."""
    charges = _list(obj.get("charges")) if obj.get("object") == "order" else [obj]
    return [c for c in charges if isinstance(c, Mapping)]


def _amount_paid(obj: Mapping[str, Any]) -> int:
    """Minor units paid in: the amounts of the charges that were paid."""
    paid = (c for c in _charges(obj) if c.get("status") in PAID_CHARGE_STATUSES)
    return sum(_int(c.get("amount")) for c in paid)


def _latest_refund(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    refunds = [r for c in _charges(obj) for r in _list(c.get("refunds")) if isinstance(r, Mapping)]
    return max(refunds, key=lambda r: _int(r.get("created_at")), default={})


def _refund_status(obj: Mapping[str, Any], refund: Mapping[str, Any]) -> ProviderStatus:
    """A refund's own status when it has one; else instant once the order says refunded."""
    if refund.get("status"):
        return REFUND_STATUS_MAP.get(str(refund["status"]), ProviderStatus.PENDING)
    # An order says so in payment_status, a charge (charge.refunded) in status.
    state = obj.get("payment_status") or obj.get("status")
    done = state in {"refunded", "partially_refunded"}
    return ProviderStatus.SUCCEEDED if done and refund else ProviderStatus.PENDING


def _declined(body: Mapping[str, Any]) -> ProviderPayment:
    """A 402 as an answer, FAILED whatever its detail code (a decline, fraud screening, a
    3-D Secure failure...); Conekta may carry the declined order under `data`."""
    order = body.get("data") if isinstance(body.get("data"), Mapping) else {}
    detail = next(iter(_details(body)), {})
    return ProviderPayment(
        provider_ref=str(order.get("id") or ""),
        status=ProviderStatus.FAILED,
        error_code="CARD_DECLINED",
        error_message=str(detail.get("message") or "The card was declined."),
        raw=dict(body),
    )


def _api_error(provider: str, status: int, body: Mapping[str, Any]) -> ProviderError:
    detail = next(iter(_details(body)), {})
    message = detail.get("message") or detail.get("debug_message") or "no message"
    if "idempotency" in str(detail.get("code", "")):
        # The key was first used with another request: what Conekta did then is unknown.
        return ProviderError(
            provider,
            f"{message} (HTTP {status}: {detail.get('code')})",
            retryable=False,
            code=IDEMPOTENCY_MISMATCH,
            outcome_unknown=True,
        )
    return ProviderError(
        provider,
        f"{message} (HTTP {status} {body.get('type', 'error')}: {detail.get('code', '')})",
        retryable=False,
        # A 401/403 is our misconfiguration; anything else is Conekta refusing the request.
        code="PROVIDER_AUTH" if status in (401, 403) else INVALID_REQUEST,
    )


def _details(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [d for d in _list(body.get("details")) if isinstance(d, Mapping)]


def _event_parts(body: bytes) -> tuple[dict[str, Any], str, Mapping[str, Any]]:
    try:
        event = json.loads(body)
        kind = str(event["type"])
        obj = event["data"]["object"]
        if not event["id"]:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise WebhookRejected("body is not a Conekta event") from None
    if not isinstance(obj, Mapping):
        raise WebhookRejected("event data.object is not an object")
    return event, kind, obj


def _spei_reference(request: PaymentRequest) -> str:
    """The number the customer may type as referencia numérica (1 to 7 digits)."""
    if request.reference_number is None:
        return request.intent_id
    return str(request.reference_number % MAX_NUMERIC_REFERENCE + 1)


def _list(value: Any) -> list[Any]:
    """Conekta's list objects ({"object": "list", "data": [...]}) or a bare list."""
    if isinstance(value, Mapping):
        value = value.get("data")
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
