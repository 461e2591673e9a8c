"""Stripe emulator: PaymentIntents for cards and OXXO, refunds, signed webhooks.

Answers providers/stripe.py exactly as api.stripe.com would for the sandbox card
tokens of contract section 5: tok_visa / tok_mastercard succeed,
tok_chargeDeclined is declined (HTTP 402 card_error), tok_threeDSecureRequired
needs a redirect that POST /sandbox/3ds/{intent id}/complete finishes. Stripe's
tok_chargeDeclinedProcessingError fails with a card_error that is no decline
(`processing_error`). PaymentIntents and refunds live in the sandbox store
(providers/sandbox/store.py), a PaymentIntent filed under Cobro's intent id.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.domain.expiry import OXXO_DEFAULT_DAYS, oxxo_expires_at
from app.domain.ids import random_token
from providers.sandbox.cards import MASTERCARD, THREE_D_SECURE, VISA, Outcome, minted_card
from providers.sandbox.common import Emulator, JSONResponse, new_ref
from providers.sandbox.forms import FormError, decode_form
from providers.sandbox.store import Tx
from providers.stripe_wire import sign_payload

# Contract section 5's named tokens; tokens minted by POST /sandbox/tokens are looked up.
NAMED_CARDS = {
    "tok_visa": VISA,
    "tok_mastercard": MASTERCARD,
    "tok_threeDSecureRequired": THREE_D_SECURE,
}
# Stripe MX's meses sin intereses: months -> minimum amount (centavos) it offers.
PLANS = {3: 300_00, 6: 600_00, 9: 900_00, 12: 1_200_00, 18: 1_800_00}
TOKEN_PREFIX = "tok_"
# Stripe's failing test tokens -> the card_error it answers: code, decline_code, message.
CARD_ERRORS = {
    "tok_chargeDeclined": ("card_declined", "generic_decline", "Your card was declined."),
    "tok_chargeDeclinedProcessingError": (
        "processing_error",
        None,
        "An error occurred while processing your card. Try again in a little bit.",
    ),
}
OXXO_MIN, OXXO_MAX = 10_00, 10_000_00  # MXN centavos, Stripe's OXXO limits
# The one Search Query Language clause this emulator understands: metadata['key']:'value'.
METADATA_CLAUSE = re.compile(r"\s*metadata\['([^']+)'\]\s*:\s*'([^']*)'\s*")


def _error(status: int, kind: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message, **extra}}, status_code=status)


class StripeEmulator(Emulator):
    name = "stripe"
    TOKEN_PREFIX = TOKEN_PREFIX

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/payment_intents", self.create_intent, methods=["POST"]),
            Route("/v1/payment_intents/search", self.search_intents, methods=["GET"]),
            Route("/v1/payment_intents/{id}", self.get_intent, methods=["GET"]),
            Route("/v1/payment_intents/{id}/cancel", self.cancel_intent, methods=["POST"]),
            Route("/v1/payment_intents/{id}/capture", self.capture_intent, methods=["POST"]),
            Route("/v1/refunds", self.create_refund, methods=["POST"]),
        ]

    # -- the API -------------------------------------------------------------------

    async def create_intent(self, request: Request) -> Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        params = await _form_params(request)
        if isinstance(params, Response):
            return params
        key = request.headers.get("idempotency-key")
        return await self.call(
            key,
            params,
            lambda tx: self._create_intent(tx, params),
            lambda: _idempotency_conflict(key),
        )

    async def search_intents(self, request: Request) -> Response:
        """GET /v1/payment_intents/search for metadata['cobro_intent_id']:'…', the one
        query Cobro asks (Stripe's search is eventually consistent; this one is not,
        which a caller must not count on)."""
        if (refused := await self.guard(request)) is not None:
            return refused
        query = request.query_params.get("query", "")
        match = METADATA_CLAUSE.fullmatch(query)
        if match is None or match.group(1) != "cobro_intent_id":
            return _error(
                400,
                "invalid_request_error",
                f"Invalid search query: {query!r} (the sandbox searches "
                "metadata['cobro_intent_id'] only)",
            )
        found = await self.store.find(self.name, "payment_intent", match.group(2))
        limit = request.query_params.get("limit", "10")
        count = int(limit) if limit.isdigit() else 10
        return JSONResponse(
            {
                "object": "search_result",
                "url": "/v1/payment_intents/search",
                "has_more": False,
                "next_page": None,
                "data": [doc.body for _, doc in found][:count],
            }
        )

    async def _create_intent(self, tx: Tx, params: dict[str, Any]) -> Response:
        amount = str(params.get("amount", ""))
        if not amount.isdigit() or int(amount) <= 0:
            return _error(400, "invalid_request_error", "Invalid positive integer", param="amount")
        currency = str(params.get("currency", "")).lower()
        if currency not in {"mxn", "usd"}:
            return _error(400, "invalid_request_error", "Invalid currency", param="currency")
        method = (params.get("payment_method_data") or {}).get("type")
        intent: dict[str, Any] = {
            "id": new_ref("pi"),
            "object": "payment_intent",
            "amount": int(amount),
            "amount_received": 0,
            "currency": currency,
            "status": "requires_payment_method",
            "description": params.get("description"),
            "metadata": params.get("metadata") or {},
            "created": self.state.clock.timestamp(),
            "payment_method_types": params.get("payment_method_types") or [method],
            "next_action": None,
            "last_payment_error": None,
            "latest_charge": None,
            "capture_method": "manual" if params.get("capture_method") == "manual" else "automatic",
            "amount_capturable": 0,
        }
        intent["client_secret"] = f"{intent['id']}_secret_{random_token()}"
        if method == "card":
            return await self._confirm_card(tx, intent, params)
        if method == "oxxo":
            return self._confirm_oxxo(tx, intent, params)
        return _error(400, "invalid_request_error", f"Unsupported payment method {method!r}")

    async def _confirm_card(
        self, tx: Tx, intent: dict[str, Any], params: dict[str, Any]
    ) -> Response:
        token = str(((params.get("payment_method_data") or {}).get("card") or {}).get("token"))
        options = (params.get("payment_method_options") or {}).get("card") or {}
        card = NAMED_CARDS.get(token) or await minted_card(tx, token)
        if card is None and token not in CARD_ERRORS:
            # Unknown here: never minted, or minted by another PSP (Conekta's tok_test_…).
            return _error(
                400,
                "invalid_request_error",
                f"No such token: '{token}'",
                code="resource_missing",
                param="payment_method_data[card][token]",
            )
        if token in CARD_ERRORS or (card and card.outcome is Outcome.DECLINED):
            code, decline_code, message = CARD_ERRORS.get(token, CARD_ERRORS["tok_chargeDeclined"])
            error = {"code": code, **({"decline_code": decline_code} if decline_code else {})}
            intent["last_payment_error"] = {"type": "card_error", "message": message, **error}
            _put(tx, intent)
            return _error(402, "card_error", message, **error, payment_intent=intent)
        assert card is not None
        plan = (options.get("installments") or {}).get("plan")
        if plan is not None:
            if not card.installments or not _plan_offered(plan, intent["amount"]):
                return _error(
                    400,
                    "invalid_request_error",
                    "The selected installment plan is not available for this card and amount.",
                    code="installment_plan_unavailable",
                    param="payment_method_options[card][installments][plan]",
                )
            intent["payment_method_options"] = {"card": {"installments": {"plan": plan}}}
        challenge = options.get("request_three_d_secure") == "any"
        if card.outcome is Outcome.THREE_D_SECURE or challenge:
            cobro_id = intent["metadata"].get("cobro_intent_id", intent["id"])
            intent["status"] = "requires_action"
            intent["next_action"] = {
                "type": "redirect_to_url",
                "redirect_to_url": {
                    "url": f"{self.state.public_url}/sandbox/3ds/{cobro_id}",
                    "return_url": params.get("return_url"),
                },
            }
            # Cobro's next attempt at the same intent may ask again: the latest wins.
            tx.bind(f"3ds:{cobro_id}", "payment_intent", intent["id"], replace=True)
        else:
            self._succeed(intent)
        _put(tx, intent)
        return JSONResponse(intent)

    def _confirm_oxxo(self, tx: Tx, intent: dict[str, Any], params: dict[str, Any]) -> Response:
        if intent["currency"] != "mxn":
            return _error(400, "invalid_request_error", "OXXO only supports mxn")
        if not OXXO_MIN <= intent["amount"] <= OXXO_MAX:
            return _error(
                400,
                "invalid_request_error",
                "Amount must be between 10.00 and 10,000.00 MXN for OXXO",
                param="amount",
            )
        options = (params.get("payment_method_options") or {}).get("oxxo") or {}
        days = int(options.get("expires_after_days") or OXXO_DEFAULT_DAYS)
        reference = "".join(str(int(c, 36) % 10) for c in random_token(14))
        intent["status"] = "requires_action"
        intent["next_action"] = {
            "type": "oxxo_display_details",
            "oxxo_display_details": {
                "number": reference,
                "expires_after": int(oxxo_expires_at(self.state.clock.now(), days).timestamp()),
                "hosted_voucher_url": f"{self.state.public_url}/sandbox/vouchers/{reference}",
            },
        }
        _put(tx, intent)
        tx.bind(f"oxxo:{reference}", "payment_intent", intent["id"])
        return JSONResponse(intent)

    async def get_intent(self, request: Request) -> Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        intent = await self.store.get(self.name, "payment_intent", request.path_params["id"])
        if intent is None:
            return _missing("payment_intent", request.path_params["id"])
        return JSONResponse(intent.body)

    async def cancel_intent(self, request: Request) -> Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        return (await self.run(lambda tx: self._cancel(tx, request.path_params["id"])))[0]

    async def _cancel(self, tx: Tx, intent_id: str) -> Response:
        intent = await tx.get("payment_intent", intent_id)
        if intent is None:
            return _missing("payment_intent", intent_id)
        if intent["status"] in {"succeeded", "processing"}:
            return _error(
                400,
                "invalid_request_error",
                f"You cannot cancel this PaymentIntent because it has a status of "
                f"{intent['status']}.",
                code="payment_intent_unexpected_state",
            )
        intent["status"] = "canceled"
        intent["next_action"] = None
        _put(tx, intent)
        return JSONResponse(intent)

    async def capture_intent(self, request: Request) -> Response:
        """POST /v1/payment_intents/{id}/capture: all or `amount_to_capture` of an
        authorization; the rest is released. One capture per PaymentIntent."""
        if (refused := await self.guard(request)) is not None:
            return refused
        params = await _form_params(request)
        if isinstance(params, Response):
            return params
        intent_id = request.path_params["id"]
        key = request.headers.get("idempotency-key")
        return await self.call(
            key,
            {"capture": intent_id, **params},
            lambda tx: self._capture(tx, intent_id, params),
            lambda: _idempotency_conflict(key),
        )

    async def _capture(self, tx: Tx, intent_id: str, params: dict[str, Any]) -> Response:
        intent = await tx.get("payment_intent", intent_id)
        if intent is None:
            return _missing("payment_intent", intent_id)
        if intent["status"] != "requires_capture":
            return _error(
                400,
                "invalid_request_error",
                "This PaymentIntent could not be captured because it has a status of "
                f"{intent['status']}. Only a PaymentIntent with one of the following "
                "statuses may be captured: requires_capture.",
                code="payment_intent_unexpected_state",
            )
        text = str(params.get("amount_to_capture") or intent["amount_capturable"])
        if not text.isdigit() or not 0 < int(text) <= intent["amount_capturable"]:
            return _error(
                400,
                "invalid_request_error",
                "The amount to capture must be positive and at most the amount capturable.",
                code="amount_too_large",
                param="amount_to_capture",
            )
        self._succeed(intent)
        intent["amount_received"] = int(text)
        _put(tx, intent)
        return JSONResponse(intent)

    async def create_refund(self, request: Request) -> Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        params = await _form_params(request)
        if isinstance(params, Response):
            return params
        key = request.headers.get("idempotency-key")
        return await self.call(
            key,
            params,
            lambda tx: self._create_refund(tx, params),
            lambda: _idempotency_conflict(key),
        )

    async def _create_refund(self, tx: Tx, params: dict[str, Any]) -> Response:
        intent = await tx.get("payment_intent", str(params.get("payment_intent")))
        if intent is None or intent["status"] != "succeeded":
            return _error(
                400, "invalid_request_error", "This PaymentIntent has no charge to refund"
            )
        if "oxxo" in intent["payment_method_types"]:
            return _error(400, "invalid_request_error", "OXXO payments cannot be refunded")
        refunded = sum(r["amount"] for r in await tx.find("refund", intent["id"]))
        # What was captured, which a partial capture makes less than the amount.
        charged = intent["amount_received"]
        amount = int(params.get("amount") or charged - refunded)
        if amount <= 0 or refunded + amount > charged:
            return _error(
                400,
                "invalid_request_error",
                "Refund amount is greater than unrefunded amount on charge",
                param="amount",
            )
        refund = {
            "id": new_ref("re"),
            "object": "refund",
            "amount": amount,
            "payment_intent": intent["id"],
            "status": "succeeded",
            "currency": intent["currency"],
            "metadata": params.get("metadata") or {},
        }
        tx.put("refund", refund["id"], refund, ref=intent["id"])
        _put(tx, intent)  # unchanged, but a refund racing this one now conflicts
        return JSONResponse(refund)

    # -- what happens outside the API: settlement and webhooks ----------------------

    def _succeed(self, intent: dict[str, Any]) -> None:
        intent["next_action"] = None
        intent["latest_charge"] = intent.get("latest_charge") or new_ref("ch")
        if intent.get("capture_method") == "manual" and intent["status"] != "requires_capture":
            # Authorized only: the money waits for POST …/capture.
            intent["status"] = "requires_capture"
            intent["amount_capturable"] = intent["amount"]
            return
        intent["status"] = "succeeded"
        intent["amount_received"] = intent["amount"]
        intent["amount_capturable"] = 0

    async def settle(self, tx: Tx, key: str) -> None:
        """The customer paid (OXXO store, 3-D Secure passed): succeed and tell Cobro."""
        intent = await tx.get("payment_intent", key)
        if intent is None or intent["status"] != "requires_action":
            return
        self._succeed(intent)
        _put(tx, intent)
        if intent["status"] == "requires_capture":
            self.send_event(tx, "payment_intent.amount_capturable_updated", intent)
        else:
            self.send_event(tx, "payment_intent.succeeded", intent)

    def send_event(self, tx: Tx, kind: str, obj: dict[str, Any]) -> None:
        event = {
            "id": new_ref("evt"),
            "object": "event",
            "type": kind,
            "created": self.state.clock.timestamp(),
            "data": {"object": dict(obj)},
            "livemode": False,
        }
        tx.webhook(json.dumps(event).encode())

    def sign(self, body: bytes, timestamp: int) -> dict[str, str]:
        return {"Stripe-Signature": sign_payload(body, self.webhook_secret, timestamp)}


def _plan_offered(plan: dict[str, Any], amount: int) -> bool:
    count = str(plan.get("count", ""))
    shape = plan.get("interval") == "month" and plan.get("type") == "fixed_count"
    return shape and count.isdigit() and amount >= PLANS.get(int(count), amount + 1)


def _put(tx: Tx, intent: dict[str, Any]) -> None:
    """Store a PaymentIntent, filed under the Cobro intent it pays (if the metadata says)."""
    cobro_id = intent["metadata"].get("cobro_intent_id") if intent["metadata"] else None
    tx.put("payment_intent", intent["id"], intent, ref=cobro_id)


async def _form_params(request: Request) -> dict[str, Any] | Response:
    try:
        pairs = parse_qsl((await request.body()).decode(), keep_blank_values=True)
        return decode_form(pairs)
    except (FormError, UnicodeDecodeError, ValueError) as exc:
        return _error(400, "invalid_request_error", f"Invalid request body: {exc}")


def _missing(kind: str, ref: str) -> JSONResponse:
    return _error(404, "invalid_request_error", f"No such {kind}: '{ref}'", code="resource_missing")


def _idempotency_conflict(key: str | None) -> Response:
    """Stripe's answer to a key reused with other parameters, word for word."""
    return _error(
        400,
        "idempotency_error",
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request.",
    )
