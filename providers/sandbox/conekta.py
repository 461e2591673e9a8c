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
only from the sandbox controls, never inside an API call. Orders live in the sandbox
store (providers/sandbox/store.py); a cash reference or CLABE is a handle to its order.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.domain.clabe import with_check_digit
from providers.sandbox.cards import (
    DECLINED,
    MASTERCARD,
    THREE_D_SECURE,
    VISA,
    Outcome,
    minted_card,
)
from providers.sandbox.common import JSONResponse, new_ref
from providers.sandbox.conekta_payouts import ConektaPayoutsEmulator
from providers.sandbox.conekta_wire import (
    ERRORS,
    SANDBOX_WEBHOOK_PUBLIC_KEY,
    fail,
    listing,
    object_id,
    order_problem,
    sign_webhook,
    whole,
)
from providers.sandbox.store import Tx

# Contract section 5's named tokens and Conekta's own test tokens; tokens minted by
# POST /sandbox/tokens (tok_test_…) are looked up.
NAMED_CARDS = {
    "tok_visa": VISA,
    "tok_mastercard": MASTERCARD,
    "tok_test_visa_4242": VISA,
    "tok_test_mastercard_4444": MASTERCARD,
    "tok_chargeDeclined": DECLINED,
    "tok_test_card_declined": DECLINED,
    "tok_threeDSecureRequired": THREE_D_SECURE,
}
TOKEN_PREFIX = "tok_test_"
# Conekta's meses sin intereses: months -> minimum amount (centavos) it offers.
PLANS = {3: 300_00, 6: 600_00, 9: 900_00, 12: 1_200_00, 18: 1_800_00}
CASH_MIN, CASH_MAX = 10_00, 10_000_00  # MXN centavos one cash reference may carry
DEFAULT_EXPIRY_SECONDS = 30 * 86_400  # Conekta's default life of a cash or SPEI reference
CLABE_PREFIX = "646180111"  # STP, plaza 180, the branch of Conekta's sample CLABEs
# What Conekta's sandbox answers as barcode_url for every cash reference.
BARCODE_URL = "https://s3.amazonaws.com/cash_payment_barcodes/sandbox_reference.png"


class ConektaEmulator(ConektaPayoutsEmulator):
    name = "conekta"
    TOKEN_PREFIX = TOKEN_PREFIX
    ADAPTER_OPTIONS = {"webhook_public_key": SANDBOX_WEBHOOK_PUBLIC_KEY}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/orders", self.create_order, methods=["POST"]),
            Route("/orders", self.list_orders, methods=["GET"]),
            Route("/orders/{id}", self.get_order, methods=["GET"]),
            Route("/orders/{id}/cancel", self.cancel_order, methods=["POST"]),
            Route("/orders/{id}/capture", self.capture_order, methods=["POST"]),
            Route("/orders/{id}/refunds", self.create_refund, methods=["POST"]),
            *self.payout_routes(),
        ]

    def check_auth(self, request: Request) -> Response | None:
        """The private key comes as a Bearer token (or, in older clients, Basic)."""
        header = request.headers.get("authorization", "")
        if not header:
            return fail("missing_key")
        return None if header.partition(" ")[2] == self.api_key else fail("invalid_key")

    # -- the API -------------------------------------------------------------------

    async def create_order(self, request: Request) -> Response:
        return await self._idempotent(request, "create", self._create_order)

    async def list_orders(self, request: Request) -> Response:
        """GET /orders, newest first; `search` matches an order's id, metadata values,
        customer name or email (Conekta's "general order search")."""
        if (refused := await self.guard(request)) is not None:
            return refused
        term = request.query_params.get("search", "")
        if not term:
            return fail("parameter_validation_error", "search")
        limit_text = request.query_params.get("limit", "20")
        limit = min(int(limit_text) if limit_text.isdigit() else 20, 250)
        # Orders are filed under the Cobro intent they pay; that is what Cobro searches.
        filed = await self.store.find(self.name, "order", term)
        found = [
            order
            for _, doc in reversed(filed)
            if _matches(order := _expired(doc.body, self.now()), term)
        ]
        page = listing(found[:limit]) | {"has_more": len(found) > limit}
        return JSONResponse(page | {"next_page_url": None, "previous_page_url": None})

    async def get_order(self, request: Request) -> Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        doc = await self.store.get(self.name, "order", request.path_params["id"])
        return JSONResponse(_expired(doc.body, self.now())) if doc else fail("not_found", "id")

    async def cancel_order(self, request: Request) -> Response:
        order_id = request.path_params["id"]
        return await self._idempotent(
            request, f"cancel {order_id}", lambda tx, _: self._cancel(tx, order_id)
        )

    async def capture_order(self, request: Request) -> Response:
        order_id = request.path_params["id"]
        return await self._idempotent(
            request, f"capture {order_id}", lambda tx, params: self._capture(tx, order_id, params)
        )

    async def create_refund(self, request: Request) -> Response:
        order_id = request.path_params["id"]
        return await self._idempotent(
            request, f"refund {order_id}", lambda tx, params: self._refund(tx, order_id, params)
        )

    async def _idempotent(
        self,
        request: Request,
        operation: str,
        handler: Callable[[Tx, dict[str, Any]], Awaitable[Response]],
    ) -> Response:
        """Auth first, then the body, then a replay by Idempotency-Key."""
        if (refused := await self.guard(request)) is not None:
            return refused
        try:
            params = json.loads(await request.body() or b"{}")
        except ValueError:
            params = None
        if not isinstance(params, dict):
            return fail("malformed")
        return await self.call(
            request.headers.get("idempotency-key"),
            {"operation": operation, **params},
            lambda tx: handler(tx, params),
            lambda: fail("idempotency", "Idempotency-Key"),
        )

    async def _create_order(self, tx: Tx, params: dict[str, Any]) -> Response:
        if (problem := order_problem(params)) is not None:
            return problem
        order = self._new_order(params)
        method = params["charges"][0].get("payment_method") or {}
        if method.get("type") == "card":
            return await self._confirm_card(tx, order, params)
        if method.get("type") in {"cash", "oxxo_cash", "spei"}:
            return self._issue_reference(tx, order, method)
        return fail("method", "charges.payment_method.type")

    def _new_order(self, params: dict[str, Any]) -> dict[str, Any]:
        now, order_id = self.state.clock.timestamp(), new_ref("ord", 17)
        items = [
            {**item, "object": "line_item", "parent_id": order_id} for item in params["line_items"]
        ]
        amount = sum(item["unit_price"] * item["quantity"] for item in items)
        charge = {
            "id": object_id(),
            "object": "charge",
            "order_id": order_id,
            "amount": amount,
            "currency": params["currency"],
            "status": "pending_payment",
            "reference_id": params["charges"][0].get("reference_id"),
            "created_at": now,
            "paid_at": None,
            "refunds": listing([]),
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
            "line_items": listing(items),
            "charges": listing([charge]),
            "metadata": params.get("metadata") or {},
            "pre_authorize": params.get("pre_authorize") is True,
            "created_at": now,
            "updated_at": now,
        }

    async def _confirm_card(
        self, tx: Tx, order: dict[str, Any], params: dict[str, Any]
    ) -> Response:
        method = params["charges"][0].get("payment_method") or {}
        token = str(method.get("token_id"))
        card = NAMED_CARDS.get(token) or await minted_card(tx, token)
        if card is None:
            # Unknown here: never minted, or minted by another PSP (Stripe's tok_…).
            return fail("token", "charges.payment_method.token_id")
        charge = order["charges"]["data"][0]
        charge["payment_method"] = {
            "object": "card_payment",
            "brand": card.brand,
            "last4": card.last4,
        }
        months = method.get("monthly_installments")
        if months is not None:
            if not (card.installments and _plan_offered(months, order["amount"])):
                return fail("installments", "charges.payment_method.monthly_installments")
            charge["payment_method"]["monthly_installments"] = months
        if card.outcome is Outcome.DECLINED:
            charge.update(failure_code="card_declined", failure_message=ERRORS["declined"][2])
            self._set_status(order, "declined")
            _put(tx, order["id"], order)
            return fail("declined", data=order)
        if card.outcome is Outcome.THREE_D_SECURE or params.get("three_ds_mode") == "strict":
            cobro_id = str(order["metadata"].get("cobro_intent_id") or order["id"])
            url = f"{self.state.public_url}/sandbox/3ds/{cobro_id}"
            redirect = {"url": url, "return_url": params.get("return_url")}
            order["next_action"] = {"type": "redirect_to_url", "redirect_to_url": redirect}
            # Cobro's next attempt at the same intent may ask again: the latest wins.
            tx.bind(f"3ds:{cobro_id}", "order", order["id"], replace=True)
        else:
            self._pay(order)
        _put(tx, order["id"], order)
        return JSONResponse(order)

    def _issue_reference(self, tx: Tx, order: dict[str, Any], method: dict[str, Any]) -> Response:
        """A cash reference or an SPEI CLABE the customer will pay to, later."""
        now = self.state.clock.timestamp()
        expires_at = method.get("expires_at", now + DEFAULT_EXPIRY_SECONDS)
        if order["currency"] != "MXN":
            return fail("currency", "currency")
        if isinstance(expires_at, bool) or not isinstance(expires_at, int) or expires_at <= now:
            return fail("expires_at", "charges.payment_method.expires_at")
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
            tx.bind(f"clabe:{clabe}", "order", order["id"])
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
            tx.bind(f"oxxo:{reference}", "order", order["id"])
        else:
            return fail("amount", "amount")
        _put(tx, order["id"], order)
        return JSONResponse(order)

    async def _cancel(self, tx: Tx, order_id: str) -> Response:
        order = await self._order(tx, order_id)
        if order is None:
            return fail("not_found", "id")
        if order["payment_status"] not in ("pending_payment", "pre_authorized"):
            return fail("not_cancelable")
        # A pre-authorized card is voided: the hold on it is released.
        voided = order["payment_status"] == "pre_authorized"
        self._set_status(order, "voided" if voided else "canceled")
        _put(tx, order_id, order)
        return JSONResponse(order)

    async def _refund(self, tx: Tx, order_id: str, params: dict[str, Any]) -> Response:
        order = await self._order(tx, order_id)
        if order is None:
            return fail("not_found", "id")
        if not order["is_refundable"]:
            return fail("not_refundable")
        # What was charged: after a partial capture, less than the order's amount.
        charged = order["charges"]["data"][0]["amount"]
        amount, remaining = params.get("amount"), charged - order["amount_refunded"]
        reason = params.get("reason")
        if not (whole(amount) and 0 < amount <= remaining and isinstance(reason, str)):
            return fail("refund", "amount")
        refunds = order["charges"]["data"][0]["refunds"]
        now = self.state.clock.timestamp()
        # Conekta lists a refund with a negative amount; instant for cards, so no status.
        refunds["data"].append(
            {"id": object_id(), "object": "refund", "amount": -amount, "created_at": now}
        )
        refunds["total"] += 1
        order["amount_refunded"] += amount
        order["is_refundable"] = amount < remaining
        self._set_status(order, "partially_refunded" if amount < remaining else "refunded")
        _put(tx, order_id, order)
        return JSONResponse(order)

    # -- what happens outside the API: settlement and webhooks ----------------------

    async def _order(self, tx: Tx, order_id: str) -> dict[str, Any] | None:
        """The order, expired first if its reference has outlived expires_at."""
        order = await tx.get("order", order_id)
        return _expired(order, self.now()) if order else None

    def now(self) -> int:
        return self.state.clock.timestamp()

    def _set_status(self, order: dict[str, Any], status: str) -> None:
        _set_status(order, status, self.now())

    async def _capture(self, tx: Tx, order_id: str, params: dict[str, Any]) -> Response:
        """A pre-authorized order captured, all or `amount` of it (the rest released)."""
        order = await self._order(tx, order_id)
        if order is None:
            return fail("not_found", "id")
        if order["payment_status"] != "pre_authorized":
            return fail("not_capturable")
        charge = order["charges"]["data"][0]
        amount = params.get("amount", charge["amount"])
        if not (whole(amount) and 0 < amount <= charge["amount"]):
            return fail("capture", "amount")
        order["pre_authorize"] = False
        charge["amount"] = amount
        self._pay(order)
        _put(tx, order_id, order)
        return JSONResponse(order)

    def _pay(self, order: dict[str, Any]) -> None:
        charge = order["charges"]["data"][0]
        if order.get("pre_authorize"):
            # Authorized only: the money waits for POST /orders/{id}/capture.
            self._set_status(order, "pre_authorized")
            return
        self._set_status(order, "paid")
        charge["paid_at"] = order["updated_at"]
        order["is_refundable"] = charge["payment_method"]["object"] == "card_payment"

    async def settle(self, tx: Tx, key: str) -> None:
        """The customer paid (OXXO store, 3-D Secure passed): pay the order, tell Cobro."""
        order = await self._order(tx, key)
        if order is None or order["payment_status"] != "pending_payment":
            return
        self._pay(order)
        _put(tx, key, order)
        kind = "order.pre_authorized" if order.get("pre_authorize") else "order.paid"
        self.send_event(tx, kind, order, {"payment_status": "pending_payment"})

    async def receive(self, tx: Tx, key: str, amount: int) -> None:
        """An SPEI transfer reaches the order's CLABE; only the exact amount pays it."""
        order = await self._order(tx, key)
        if order is None:
            return
        accepted = order["payment_status"] == "pending_payment" and amount == order["amount"]
        attempts = order["charges"]["data"][0]["payment_method"]["payment_attempts"]
        now = self.state.clock.timestamp()
        attempts.append(
            {"amount": amount, "status": "paid" if accepted else "returned", "created_at": now}
        )
        if accepted:
            self._pay(order)
            self.send_event(tx, "order.paid", order, {"payment_status": "pending_payment"})
        _put(tx, key, order)

    def send_event(
        self, tx: Tx, kind: str, order: dict[str, Any], previous: dict[str, Any]
    ) -> None:
        event = {
            "id": object_id(),
            "object": "event",
            "type": kind,
            "livemode": False,
            "created_at": self.state.clock.timestamp(),
            "data": {"object": order, "previous_attributes": previous},
            "webhook_status": "pending",
            "webhook_logs": [],
        }
        tx.webhook(json.dumps(event).encode())

    def sign(self, body: bytes, timestamp: int) -> dict[str, str]:
        return sign_webhook(body, timestamp)

    def _new_clabe(self) -> str:
        """A CLABE with its check digit; one another order has is a Conflict at commit
        (its handle is taken), and the call runs again with another."""
        return with_check_digit(f"{CLABE_PREFIX}{secrets.randbelow(10**8):08d}")

    def _new_reference(self) -> str:
        """A 14-digit cash reference (Conekta's start with 93 or 98); unique as CLABEs are."""
        return f"93{secrets.randbelow(10**12):012d}"


def _expired(order: dict[str, Any], now: int) -> dict[str, Any]:
    """`order`, expired if it is pending and its reference has outlived expires_at."""
    if order["payment_status"] == "pending_payment":
        method = order["charges"]["data"][0].get("payment_method") or {}
        if now > method.get("expires_at", float("inf")):
            _set_status(order, "expired", now)
    return order


def _set_status(order: dict[str, Any], status: str, now: int) -> None:
    order["payment_status"] = order["charges"]["data"][0]["status"] = status
    order["updated_at"] = now
    order.pop("next_action", None)


def _put(tx: Tx, key: str, order: dict[str, Any]) -> None:
    """Store an order, filed under the Cobro intent it pays (if the metadata says)."""
    cobro_id = (order.get("metadata") or {}).get("cobro_intent_id")
    tx.put("order", key, order, ref=str(cobro_id) if cobro_id else None)


def _plan_offered(months: Any, amount: int) -> bool:
    whole_months = isinstance(months, int) and not isinstance(months, bool)
    return whole_months and amount >= PLANS.get(months, amount + 1)


def _matches(order: dict[str, Any], term: str) -> bool:
    if not term:
        return True
    customer = order.get("customer_info") or {}
    fields = [order["id"], *map(str, (order.get("metadata") or {}).values())]
    fields += [str(customer.get("name", "")), str(customer.get("email", ""))]
    return any(term in field for field in fields)
