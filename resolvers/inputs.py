"""Mutation inputs, exactly as contract section 3 names them; each built by a plan
made once (resolvers/input_conversion.py)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from resolvers.input_conversion import planned_input
from resolvers.scalars import DecimalString
from resolvers.types.enums import CaptureMethod, Currency, PaymentMethodType, ThreeDSecure


@planned_input
@strawberry.input
class CreatePaymentIntentInput:
    amount: DecimalString
    currency: Currency = Currency.MXN
    description: str | None = None
    metadata: JSON | None = None
    allowed_methods: list[PaymentMethodType] | None = None
    idempotency_key: str | None = None
    capture_method: CaptureMethod | None = strawberry.field(
        default=CaptureMethod.AUTOMATIC,
        description="MANUAL: a card is authorized, and capturePaymentIntent takes the money.",
    )


@planned_input
@strawberry.input(description="A card token and the PSP that minted it.")
class CardTokenInput:
    provider: str
    token: str


@planned_input
@strawberry.input(
    description="A card, as PSP tokens: `token` (the first card PSP on the route's) or "
    "`tokens` (one per PSP; a card fails over only to PSPs it has a token for), exactly "
    "one of the two. Sandbox tokens in contract sections 5 and 7."
)
class CardInput:
    token: str | None = None
    tokens: list[CardTokenInput] | None = None
    installments: int | None = strawberry.field(
        default=None,
        description="Meses sin intereses: one of the plans offered; omitted = one payment.",
    )
    three_d_secure: ThreeDSecure | None = ThreeDSecure.AUTOMATIC


@planned_input
@strawberry.input
class OxxoInput:
    customer_name: str | None = None
    email: str | None = None
    expires_in_days: int | None = None


@planned_input
@strawberry.input
class SpeiInput:
    payer_clabe: str | None = None


@planned_input
@strawberry.input
class CryptoInput:
    asset: str = "USDC"
    network: str = "polygon"


@planned_input
@strawberry.input
class ConfirmPaymentIntentInput:
    id: strawberry.ID
    method: PaymentMethodType
    card: CardInput | None = None
    oxxo: OxxoInput | None = None
    spei: SpeiInput | None = None
    crypto: CryptoInput | None = None
    idempotency_key: str | None = None


@planned_input
@strawberry.input
class CancelPaymentIntentInput:
    id: strawberry.ID


@planned_input
@strawberry.input
class CapturePaymentIntentInput:
    id: strawberry.ID
    amount: DecimalString | None = strawberry.field(
        default=None, description="Defaults to all of it; the rest is released."
    )
    idempotency_key: str | None = None


@planned_input
@strawberry.input
class RefundPaymentIntentInput:
    id: strawberry.ID
    amount: DecimalString | None = strawberry.field(
        default=None, description="Defaults to everything not yet refunded."
    )
    reason: str | None = None
    clabe: str | None = strawberry.field(
        default=None, description="Where cash and bank refunds go, by SPEI (18 digits)."
    )
    idempotency_key: str | None = None


@planned_input
@strawberry.input
class CreateWebhookEndpointInput:
    url: str
    events: list[str] | None = strawberry.field(
        default=None, description="Event types to send; all of them when left out."
    )


@planned_input
@strawberry.input(description="An SPEI transfer out of the merchant's account (section 8).")
class CreatePayoutInput:
    amount: DecimalString
    clabe: str
    beneficiary_name: str
    concept: str
    reference: int | None = None
    rfc: str | None = None
    metadata: JSON | None = None
    idempotency_key: str | None = None


@planned_input
@strawberry.input(description="A payment link: each visit opens an intent of this amount.")
class CreatePaymentLinkInput:
    amount: DecimalString
    description: str | None = None
    allowed_methods: list[PaymentMethodType] | None = None
    expires_at: datetime | None = None
    metadata: JSON | None = None
    idempotency_key: str | None = None
