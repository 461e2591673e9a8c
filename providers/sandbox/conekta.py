"""Conekta emulator: the Orders API for cards, OXXO cash and SPEI, refunds, signed webhooks.

Answers providers/conekta.py as api.conekta.io would: its paths, orders with
`charges.data[0].payment_method`, its error envelope, 401 for a wrong key, 402 for a
declined card, 404 for an unknown order, 422 for a request it would not take.

Cards (contract section 5; Conekta's tok_test_* tokens work too): tok_visa and
tok_mastercard are paid at once; tok_chargeDeclined is a 402 `...processing.bank.declined`
and the declined order is kept; tok_threeDSecureRequired (our choice, Conekta's 3DS2
`next_action.redirect_to_url`) stays pending_payment and points at
{public_url}/sandbox/3ds/{cobro intent id}, whose completion pays it.
OXXO (`cash`): a 14-digit reference, 10.00-10,000.00 MXN, 30 days unless expires_at
says. SPEI: a fresh CLABE per order under STP (646, plaza 180, the "111" branch of
Conekta's sample CLABEs). Conekta's help centre: a transfer for any other amount than
the order's "will be rejected automatically"; so it is returned, noted in
payment_attempts, and no webhook follows. Paying sends a signed `order.paid`.
Unconfirmed, chosen to be plausible: the declined order under `data` in the 402, the
codes of our 422/428 errors, and a 422 for a reused Idempotency-Key. Webhooks go out
only from the sandbox controls, never inside an API call.
"""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from cryptography.hazmat.primitives import serialization
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.domain.clabe import with_check_digit
from providers.conekta import sign_payload
from providers.sandbox.common import Emulator, new_ref

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

CARDS = {  # token -> (brand, last4); Conekta's tok_test_* tokens work too
    "tok_visa": ("visa", "4242"),
    "tok_mastercard": ("mastercard", "4444"),
    "tok_test_visa_4242": ("visa", "4242"),
    "tok_test_mastercard_4444": ("mastercard", "4444"),
}
DECLINED_TOKENS = frozenset({"tok_chargeDeclined", "tok_test_card_declined"})
THREE_DS_TOKEN = "tok_threeDSecureRequired"
CASH_MIN, CASH_MAX = 10_00, 10_000_00  # MXN centavos one cash reference may carry
DEFAULT_EXPIRY_SECONDS = 30 * 86_400  # Conekta's default life of a cash or SPEI reference
CLABE_PREFIX = "646180111"  # STP, plaza 180, the branch of Conekta's sample CLABEs
# What Conekta's sandbox answers as barcode_url for every cash reference.
BARCODE_URL = "https://s3.amazonaws.com/cash_payment_barcodes/sandbox_reference.png"

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
    "expires_at": ("parameter_validation", "expires_at", "expires_at must be in the future."),
    "refund": ("parameter_validation", "refund.amount", "Needs a reason and an amount."),
    "not_refundable": ("parameter_validation", "order.not_refundable", "Not refundable."),
    "idempotency": ("parameter_validation", "idempotency_key", "Idempotency-Key already used."),
    "not_cancelable": ("precondition_required", "order.cannot_be_canceled", "Not pending."),
}


def _fail(name: str, param: str | None = None, **extra: Any) -> JSONResponse:
    """Conekta's error envelope for one of ERRORS."""
    stem, suffix, message = ERRORS[name]
    detail = {"code": f"conekta.errors.{stem}.{suffix}", "message": message, "param": param}
    body = {"object": "error", "type": f"{stem}_error", "log_id": _object_id(), **extra}
    return JSONResponse({**body, "details": [detail]}, status_code=ERROR_STATUS[stem])


def _object_id() -> str:
    """An id shaped like Conekta's charge, refund and event ids (24 hex digits)."""
    return secrets.token_hex(12)


def _listing(data: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "has_more": False, "total": len(data), "data": data}


class ConektaEmulator(Emulator):
    name = "conekta"
    ADAPTER_OPTIONS = {"webhook_public_key": SANDBOX_WEBHOOK_PUBLIC_KEY}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.orders: dict[str, dict[str, Any]] = {}
        self._clabes_issued = 0

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/orders", self.create_order, methods=["POST"]),
            Route("/orders/{id}", self.get_order, methods=["GET"]),
            Route("/orders/{id}/cancel", self.cancel_order, methods=["POST"]),
            Route("/orders/{id}/refunds", self.create_refund, methods=["POST"]),
        ]

    def check_auth(self, request: Request) -> Response | None:
        """The private key comes as a Bearer token (or, in older clients, Basic)."""
        header = request.headers.get("authorization", "")
        if not header:
            return _fail("missing_key")
        return None if header.partition(" ")[2] == self.api_key else _fail("invalid_key")

    # -- the API -------------------------------------------------------------------

    async def create_order(self, request: Request) -> Response:
        return await self._idempotent(request, "create", self._create_order)

    async def get_order(self, request: Request) -> Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        order = self._order(request.path_params["id"])
        return JSONResponse(order) if order else _fail("not_found", "id")

    async def cancel_order(self, request: Request) -> Response:
        order_id = request.path_params["id"]
        return await self._idempotent(
            request, f"cancel {order_id}", lambda _: self._cancel(order_id)
        )

    async def create_refund(self, request: Request) -> Response:
        order_id = request.path_params["id"]
        return await self._idempotent(
            request, f"refund {order_id}", lambda params: self._refund(order_id, params)
        )

    async def _idempotent(
        self,
        request: Request,
        operation: str,
        handler: Callable[[dict[str, Any]], Awaitable[Response]],
    ) -> Response:
        """Faults and auth first, then the body, then a replay by Idempotency-Key."""
        if (refused := await self.guard(request)) is not None:
            return refused
        try:
            params = json.loads(await request.body() or b"{}")
        except ValueError:
            params = None
        if not isinstance(params, dict):
            return _fail("malformed")
        return await self.idempotency.run(
            request.headers.get("idempotency-key"),
            {"operation": operation, **params},
            lambda: handler(params),
            lambda: _fail("idempotency", "Idempotency-Key"),
        )

    async def _create_order(self, params: dict[str, Any]) -> Response:
        if (problem := _order_problem(params)) is not None:
            return problem
        order = self._new_order(params)
        method = params["charges"][0].get("payment_method") or {}
        if method.get("type") == "card":
            return self._confirm_card(order, method, params.get("return_url"))
        if method.get("type") in {"cash", "oxxo_cash", "spei"}:
            return self._issue_reference(order, method)
        return _fail("method", "charges.payment_method.type")

    def _new_order(self, params: dict[str, Any]) -> dict[str, Any]:
        now, order_id = self.state.clock.timestamp(), new_ref("ord", 17)
        items = [
            {**item, "object": "line_item", "parent_id": order_id} for item in params["line_items"]
        ]
        amount = sum(item["unit_price"] * item["quantity"] for item in items)
        charge = {
            "id": _object_id(),
            "object": "charge",
            "order_id": order_id,
            "amount": amount,
            "currency": params["currency"],
            "status": "pending_payment",
            "reference_id": params["charges"][0].get("reference_id"),
            "created_at": now,
            "paid_at": None,
            "refunds": _listing([]),
        }
        return {
            "id": order_id,
            "object": "order",
            "livemode": False,
            "amount": amount,
            "amount_refunded": 0,
            "currency": params["currency"],
            "payment_status": "pending_payment",
            "is_refundable": False,
            "customer_info": {**params["customer_info"], "object": "customer_info"},
            "line_items": _listing(items),
            "charges": _listing([charge]),
            "metadata": params.get("metadata") or {},
            "created_at": now,
            "updated_at": now,
        }

    def _confirm_card(
        self, order: dict[str, Any], method: dict[str, Any], return_url: str | None
    ) -> Response:
        token = str(method.get("token_id"))
        charge = order["charges"]["data"][0]
        brand, last4 = CARDS.get(token, ("visa", "0002"))
        charge["payment_method"] = {"object": "card_payment", "brand": brand, "last4": last4}
        if token in CARDS:
            self._pay(order)
        elif token in DECLINED_TOKENS:
            charge.update(failure_code="card_declined", failure_message=ERRORS["declined"][2])
            self._set_status(order, "declined")
            self.orders[order["id"]] = order
            return _fail("declined", data=order)
        elif token == THREE_DS_TOKEN:
            cobro_id = str(order["metadata"].get("cobro_intent_id") or order["id"])
            url = f"{self.state.public_url}/sandbox/3ds/{cobro_id}"
            redirect = {"url": url, "return_url": return_url}
            order["next_action"] = {"type": "redirect_to_url", "redirect_to_url": redirect}
            self.state.settlers[f"3ds:{cobro_id}"] = lambda: self.settle(order["id"])
        else:
            return _fail("token", "charges.payment_method.token_id")
        self.orders[order["id"]] = order
        return JSONResponse(order)

    def _issue_reference(self, order: dict[str, Any], method: dict[str, Any]) -> Response:
        """A cash reference or an SPEI CLABE the customer will pay to, later."""
        now = self.state.clock.timestamp()
        expires_at = method.get("expires_at", now + DEFAULT_EXPIRY_SECONDS)
        if order["currency"] != "MXN":
            return _fail("currency", "currency")
        if isinstance(expires_at, bool) or not isinstance(expires_at, int) or expires_at <= now:
            return _fail("expires_at", "charges.payment_method.expires_at")
        charge = order["charges"]["data"][0]
        if method["type"] == "spei":
            clabe = self._new_clabe()
            charge["payment_method"] = {
                "object": "bank_transfer_payment",
                "type": "spei",
                "bank": "STP",
                "clabe": clabe,
                "receiving_account_bank": "STP",
                "receiving_account_number": clabe,
                "expires_at": expires_at,
                "payment_attempts": [],
            }
            self.state.clabes[clabe] = lambda amount: self.receive_transfer(order["id"], amount)
        elif CASH_MIN <= order["amount"] <= CASH_MAX:
            reference = self._new_reference()
            charge["payment_method"] = {
                "object": "cash_payment",
                "type": "oxxo",
                "service_name": "OxxoPay",
                "store_name": "OXXO",
                "reference": reference,
                "barcode_url": BARCODE_URL,
                "expires_at": expires_at,
            }
            self.state.settlers[f"oxxo:{reference}"] = lambda: self.settle(order["id"])
        else:
            return _fail("amount", "amount")
        self.orders[order["id"]] = order
        return JSONResponse(order)

    async def _cancel(self, order_id: str) -> Response:
        order = self._order(order_id)
        if order is None:
            return _fail("not_found", "id")
        if order["payment_status"] != "pending_payment":
            return _fail("not_cancelable")
        self._set_status(order, "canceled")
        return JSONResponse(order)

    async def _refund(self, order_id: str, params: dict[str, Any]) -> Response:
        order = self._order(order_id)
        if order is None:
            return _fail("not_found", "id")
        if not order["is_refundable"]:
            return _fail("not_refundable")
        amount, remaining = params.get("amount"), order["amount"] - order["amount_refunded"]
        valid = isinstance(amount, int) and not isinstance(amount, bool) and 0 < amount <= remaining
        if not valid or not isinstance(params.get("reason"), str):
            return _fail("refund", "amount")
        refunds = order["charges"]["data"][0]["refunds"]
        now = self.state.clock.timestamp()
        # Conekta lists a refund with a negative amount; instant for cards, so no status.
        refunds["data"].append(
            {"id": _object_id(), "object": "refund", "amount": -amount, "created_at": now}
        )
        refunds["total"] += 1
        order["amount_refunded"] += amount
        order["is_refundable"] = amount < remaining
        self._set_status(order, "partially_refunded" if amount < remaining else "refunded")
        return JSONResponse(order)

    # -- what happens outside the API: settlement and webhooks ----------------------

    def _order(self, order_id: str) -> dict[str, Any] | None:
        """The order, expired first if its reference has outlived expires_at."""
        order = self.orders.get(order_id)
        if order and order["payment_status"] == "pending_payment":
            method = order["charges"]["data"][0].get("payment_method") or {}
            if self.state.clock.timestamp() > method.get("expires_at", float("inf")):
                self._set_status(order, "expired")
        return order

    def _set_status(self, order: dict[str, Any], status: str) -> None:
        order["payment_status"] = order["charges"]["data"][0]["status"] = status
        order["updated_at"] = self.state.clock.timestamp()
        order.pop("next_action", None)

    def _pay(self, order: dict[str, Any]) -> None:
        charge = order["charges"]["data"][0]
        self._set_status(order, "paid")
        charge["paid_at"] = order["updated_at"]
        order["is_refundable"] = charge["payment_method"]["object"] == "card_payment"

    async def settle(self, order_id: str) -> int | None:
        """The customer paid (OXXO store, 3-D Secure passed): pay the order, tell Cobro."""
        order = self._order(order_id)
        if order is None or order["payment_status"] != "pending_payment":
            return None
        self._pay(order)
        return await self.send_event("order.paid", order, {"payment_status": "pending_payment"})

    async def receive_transfer(self, order_id: str, amount: int) -> int | None:
        """An SPEI transfer reaches the order's CLABE; only the exact amount pays it."""
        order = self._order(order_id)
        if order is None:
            return None
        accepted = order["payment_status"] == "pending_payment" and amount == order["amount"]
        attempts = order["charges"]["data"][0]["payment_method"]["payment_attempts"]
        now = self.state.clock.timestamp()
        attempts.append(
            {"amount": amount, "status": "paid" if accepted else "returned", "created_at": now}
        )
        if not accepted:
            return None
        self._pay(order)
        return await self.send_event("order.paid", order, {"payment_status": "pending_payment"})

    async def send_event(
        self, kind: str, order: dict[str, Any], previous: dict[str, Any]
    ) -> int | None:
        event = {
            "id": _object_id(),
            "object": "event",
            "type": kind,
            "livemode": False,
            "created_at": self.state.clock.timestamp(),
            "data": {"object": copy.deepcopy(order), "previous_attributes": previous},
            "webhook_status": "pending",
            "webhook_logs": [],
        }
        return await self.state.send_webhook(self.name, json.dumps(event).encode(), sign_webhook)

    def _new_clabe(self) -> str:
        """A CLABE no other sandbox account has, with its check digit."""
        while True:
            self._clabes_issued += 1
            clabe = with_check_digit(f"{CLABE_PREFIX}{self._clabes_issued:08d}")
            if clabe not in self.state.clabes:
                return clabe

    def _new_reference(self) -> str:
        """A fresh 14-digit cash reference (Conekta's start with 93 or 98)."""
        while True:
            reference = f"93{secrets.randbelow(10**12):012d}"
            if f"oxxo:{reference}" not in self.state.settlers:
                return reference


def sign_webhook(body: bytes, timestamp: int) -> dict[str, str]:
    """Conekta's signature header; its scheme signs the body alone, with no timestamp."""
    return {"Digest": sign_payload(body, SANDBOX_WEBHOOK_PRIVATE_KEY)}


def _order_problem(params: dict[str, Any]) -> Response | None:
    """The 422 Conekta answers to an order it would not create, or None."""
    customer, items, charges = (params.get(k) for k in ("customer_info", "line_items", "charges"))
    if params.get("currency") not in {"MXN", "USD"}:
        return _fail("currency", "currency")
    if not isinstance(customer, dict) or not all(
        customer.get(k) for k in ("name", "email", "phone")
    ):
        return _fail("customer", "customer_info")
    if not isinstance(items, list) or not items or not all(map(_valid_item, items)):
        return _fail("items", "line_items")
    if not isinstance(charges, list) or len(charges) != 1 or not isinstance(charges[0], dict):
        return _fail("charges", "charges")
    total = sum(item["unit_price"] * item["quantity"] for item in items)
    if total <= 0 or charges[0].get("amount", total) != total:
        return _fail("amount", "amount")
    return None


def _valid_item(item: Any) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        return False
    price, quantity = item.get("unit_price"), item.get("quantity")
    numbers = all(isinstance(v, int) and not isinstance(v, bool) for v in (price, quantity))
    return numbers and price >= 0 and quantity >= 1
