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
from app.domain.money import MAX_MINOR
from app.domain.next_action import NextAction, OxxoVoucher, RedirectToUrl, SpeiInstructions
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
    WireRequest,
)
from providers.conekta_payouts import ConektaPayouts, is_payout_object, payout_event
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
from providers.shapes import MAX_EVENT_ID, MAX_EVENT_TYPE, MAX_HANDLE, Fields, Malformed, load_json

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
# Longest URL (3-D Secure redirect) and failure message read from Conekta.
MAX_URL = 2048
MAX_MESSAGE = 1000
_EPOCH = datetime.fromtimestamp(0, UTC)


class ConektaProvider(ConektaPayouts):
    name = "conekta"
    methods = frozenset({PaymentMethodType.CARD, PaymentMethodType.OXXO, PaymentMethodType.SPEI})
    # Where Conekta.js mints card tokens (a checkout posts the card there).
    tokenize_url = "https://api.conekta.io/tokens"

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
        try:
            orders = Fields(body, "list").each_fields("data")
            return [
                payment_from_order(o, self.beneficiary)
                for o in orders
                if _intent_hint(o) == intent_id
            ]
        except Malformed as exc:
            raise _unreadable(self.name, exc) from None

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
        if request.method is PaymentMethodType.CARD and request.capture_later:
            # Authorize only; POST /orders/{id}/capture takes the money later.
            params["pre_authorize"] = True
        if request.method is PaymentMethodType.CARD and request.require_three_d_secure:
            # 3-D Secure on every payment ("smart", the account's default, lets
            # Conekta's risk rules decide).
            params["three_ds_mode"] = "strict"
        return params

    def _charge_params(self, request: PaymentRequest) -> dict[str, Any]:
        expires_at = request.expires_at
        expires = {"expires_at": int(expires_at.timestamp())} if expires_at else {}
        if request.method is PaymentMethodType.CARD:
            return {"payment_method": card_payment_method(request)}
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
        try:
            return payment_from_order(body, self.beneficiary)
        except Malformed as exc:
            raise _unreadable(self.name, exc) from None

    async def capture_payment(
        self, provider_ref: str, amount: int, idempotency_key: str
    ) -> ProviderPayment:
        """POST /orders/{id}/capture of a pre-authorized order, `amount` of it."""
        response = await self.http.request(
            "POST",
            f"/orders/{provider_ref}/capture",
            json={"amount": amount},
            idempotency_key=idempotency_key,
        )
        return self._payment_from_response(response)

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
        try:
            order = Fields(body, "order")
            refund = _latest_refund(order)
            refund_id = refund.optional_text("id") if refund else None
            if refund is None or refund_id is None:
                raise ProviderError(self.name, "answered a refund without one", retryable=False)
            return ProviderRefund(refund_id, _refund_status(order, refund), raw=body)
        except Malformed as exc:
            raise _unreadable(self.name, exc) from None

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, now: int
    ) -> list[ProviderEvent]:
        header = next((v for k, v in headers.items() if k.lower() == DIGEST_HEADER), "")
        verify_signature(body, header, self.webhook_keys)
        try:
            return [self._event(Fields(load_json(body), "event"), now)]
        except Malformed as exc:
            raise MalformedEvent(f"not a Conekta event: {exc}") from None

    def _event(self, event: Fields, now: int) -> ProviderEvent:
        """A Conekta event ({id, type, created_at, data: {object}}) in neutral terms."""
        kind = event.text("type", max_length=MAX_EVENT_TYPE)
        occurred = event.optional_epoch_seconds("created_at") or datetime.fromtimestamp(now, UTC)
        obj = event.fields("data").fields("object")
        common: dict[str, Any] = {
            "provider": self.name,
            "event_id": event.text("id", max_length=MAX_EVENT_ID),
            "type": kind,
            "occurred_at": occurred,
            "raw": dict(event.values),
        }
        if is_payout_object(obj):
            return payout_event(common, kind, obj)
        if kind in REFUND_EVENTS:
            # Refund news names the refund alone, as the core expects of it.
            refund = _latest_refund(obj)
            ref = refund.optional_text("id") if refund else None
            status = _refund_status(obj, refund) if refund and ref else None
            return ProviderEvent(**common, status=status, refund_ref=ref)
        order_id = obj.optional_text("id" if _is_order(obj) else "order_id")
        # A type not in the table is still returned (and acknowledged), with no status.
        status = EVENT_STATUS.get(kind)
        charges = _charges(obj)
        return ProviderEvent(
            **common,
            status=status,
            provider_ref=order_id,
            lookup_key=_lookup_key(charges[0].optional_fields("payment_method"))
            if charges
            else None,
            amount=_amount_paid(obj) if status is ProviderStatus.SUCCEEDED else None,
            intent_hint=_intent_hint(obj),
        )

    async def aclose(self) -> None:
        await self.http.aclose()


def payment_from_order(order: Mapping[str, Any] | Fields, beneficiary: str) -> ProviderPayment:
    """A Conekta order in neutral terms (unknown status: PENDING); Malformed if it is
    not one."""
    fields = order if isinstance(order, Fields) else Fields(order, "order")
    charges = _charges(fields)
    charge = charges[0] if charges else None
    payment_status = fields.optional_text("payment_status", max_length=MAX_EVENT_TYPE)
    status = STATUS_MAP.get(payment_status or "", ProviderStatus.PENDING)
    next_action = None
    if status is ProviderStatus.REQUIRES_ACTION:
        next_action = _next_action(fields, charge, beneficiary)
        if next_action is None:
            status = ProviderStatus.PENDING  # pending, with nothing for the customer to do
    key = _lookup_key(charge.optional_fields("payment_method")) if charge else None
    message = charge.optional_text("failure_message", max_length=MAX_MESSAGE) if charge else None
    return ProviderPayment(
        provider_ref=fields.text("id", max_length=MAX_HANDLE),
        status=status,
        next_action=next_action,
        amount_received=_amount_paid(fields),
        error_code="CARD_DECLINED" if status is ProviderStatus.FAILED else None,
        error_message=message,
        lookup_keys=(key,) if key else (),
        attempt_hint=_metadata(fields, ATTEMPT_METADATA_KEY),
        raw=dict(fields.values),
    )


def _next_action(order: Fields, charge: Fields | None, beneficiary: str) -> NextAction | None:
    action = order.optional_fields("next_action")
    redirect = action.optional_fields("redirect_to_url") if action else None
    url = redirect.optional_text("url", max_length=MAX_URL) if redirect else None
    if redirect and url:
        return RedirectToUrl(
            url=url, return_url=redirect.optional_text("return_url", max_length=MAX_URL)
        )
    method = charge.optional_fields("payment_method") if charge else None
    if method is None or charge is None:
        return None
    expires_at = method.optional_epoch_seconds("expires_at")
    kind = method.optional_text("object", max_length=MAX_EVENT_TYPE)
    reference = method.optional_text("reference")
    if kind == "cash_payment" and reference and expires_at:
        # barcode_url is an image, not a voucher page: Conekta hosts no voucher.
        return OxxoVoucher(reference=reference, expires_at=expires_at)
    clabe = _lookup_key(method)
    if kind == "bank_transfer_payment" and clabe:
        bank = method.optional_text("receiving_account_bank") or method.optional_text("bank")
        return SpeiInstructions(
            clabe=clabe,
            bank=bank or "STP",
            beneficiary=beneficiary,
            reference=charge.optional_text("reference_id") or order.optional_text("id") or "",
            expires_at=expires_at,
        )
    return None


def _is_order(obj: Fields) -> bool:
    return obj.optional_text("object", max_length=MAX_EVENT_TYPE) == "order"


def _intent_hint(obj: Fields) -> str | None:
    """Our intent id, as an order's metadata echoes it (a charge carries none)."""
    return _metadata(obj, INTENT_METADATA_KEY)


def _metadata(obj: Fields, key: str) -> str | None:
    metadata = obj.optional_fields("metadata") if _is_order(obj) else None
    return metadata.optional_text(key) if metadata else None


def _lookup_key(method: Fields | None) -> str | None:
    """The handle a webhook finds the payment by: OXXO reference or SPEI CLABE."""
    if method is None:
        return None
    kind = method.optional_text("object", max_length=MAX_EVENT_TYPE)
    if kind == "cash_payment":
        return method.optional_text("reference")
    if kind == "bank_transfer_payment":
        return method.optional_text("clabe") or method.optional_text("receiving_account_number")
    return None


def _charges(obj: Fields) -> list[Fields]:
    """An order's charges, or the charge itself (charge.* events carry a charge)."""
    return _list_of(obj, "charges") if _is_order(obj) else [obj]


def _list_of(obj: Fields, key: str) -> list[Fields]:
    """Conekta's list objects ({"object": "list", "data": [...]}) or a bare list."""
    if isinstance(obj.raw(key), dict):
        return obj.fields(key).each_fields("data")
    return obj.each_fields(key)


def _amount_paid(obj: Fields) -> int:
    """Minor units paid in: the amounts of the charges that were paid."""
    paid = sum(
        c.amount("amount")
        for c in _charges(obj)
        if c.optional_text("status", max_length=MAX_EVENT_TYPE) in PAID_CHARGE_STATUSES
    )
    if paid > MAX_MINOR:
        raise Malformed(obj.path, f"its charges were paid more than {MAX_MINOR} in total")
    return paid


def _latest_refund(obj: Fields) -> Fields | None:
    refunds = [r for c in _charges(obj) for r in _list_of(c, "refunds")]
    created = [r.optional_epoch_seconds("created_at") for r in refunds]
    latest = max(
        zip(created, range(len(refunds)), strict=True),
        key=lambda pair: (pair[0] or _EPOCH, -pair[1]),  # the first of equals
        default=None,
    )
    return refunds[latest[1]] if latest else None


def _refund_status(obj: Fields, refund: Fields) -> ProviderStatus:
    """A refund's own status when it has one; else instant once the order says refunded."""
    own = refund.optional_text("status", max_length=MAX_EVENT_TYPE)
    if own:
        return REFUND_STATUS_MAP.get(own, ProviderStatus.PENDING)
    # An order says so in payment_status, a charge (charge.refunded) in status.
    state = obj.optional_text("payment_status", max_length=MAX_EVENT_TYPE) or obj.optional_text(
        "status", max_length=MAX_EVENT_TYPE
    )
    done = state in {"refunded", "partially_refunded"}
    return ProviderStatus.SUCCEEDED if done else ProviderStatus.PENDING


def _unreadable(provider: str, exc: Malformed) -> ProviderError:
    """A 2xx answer Cobro cannot read: the PSP may have acted on the request, so the
    outcome is unknown (the attempt stays pending, and is replayed or searched for)."""
    return ProviderError(
        provider,
        f"answered something Cobro cannot read ({exc})",
        retryable=True,
        outcome_unknown=True,
    )


def _declined(body: Mapping[str, Any]) -> ProviderPayment:
    """A 402 as an answer, FAILED whatever its detail code (a decline, fraud screening, a
    3-D Secure failure...); Conekta may carry the declined order under `data`."""
    data = body.get("data")
    order = data if isinstance(data, Mapping) else {}
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
        code="PROVIDER_AUTH" if status in (401, 403) else card_refusal(detail) or INVALID_REQUEST,
    )


# -- cards the Mexican way (contract section 7) -------------------------------------


def card_payment_method(request: PaymentRequest) -> dict[str, Any]:
    """A card charge's payment_method: the token Conekta.js minted and, for meses sin
    intereses, `monthly_installments` (3, 6, 9, 12 or 18)."""
    method: dict[str, Any] = {"type": "card", "token_id": request.card_token}
    if request.installments:
        method["monthly_installments"] = request.installments
    return method


def card_refusal(detail: Mapping[str, Any]) -> str | None:
    """The contract code of a card request Conekta refused for a reason it names."""
    code = str(detail.get("code", ""))
    if code.endswith(".token.not_found") or code.endswith(".token_id.invalid"):
        return CARD_TOKEN_INVALID
    if "monthly_installments" in code:
        return INSTALLMENTS_UNAVAILABLE
    return None


def _details(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [d for d in _list(body.get("details")) if isinstance(d, Mapping)]


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
