"""The contract's enums are the domain's enums, registered with Strawberry.

`strawberry.enum` marks the class itself and hands it back, so the names here are
the domain's own classes (and usable as types)."""

from __future__ import annotations

import strawberry

from app.domain.cards import CaptureMethod, ThreeDSecure
from app.domain.intents import PaymentIntentStatus
from app.domain.keys import ApiKeyKind
from app.domain.methods import PaymentMethodType, Settlement
from app.domain.money import Currency
from app.domain.payouts import PayoutStatus
from app.domain.refunds import RefundStatus
from app.resilience.breaker import CircuitState

__all__ = [
    "ApiKeyKind",
    "CaptureMethod",
    "CircuitState",
    "Currency",
    "PaymentIntentStatus",
    "PaymentMethodType",
    "PayoutStatus",
    "RefundStatus",
    "Settlement",
    "ThreeDSecure",
]

strawberry.enum(Currency, name="Currency")
strawberry.enum(PaymentMethodType, name="PaymentMethodType")
strawberry.enum(Settlement, name="Settlement")
strawberry.enum(PaymentIntentStatus, name="PaymentIntentStatus")
strawberry.enum(CircuitState, name="CircuitState")
strawberry.enum(ApiKeyKind, name="ApiKeyKind")
strawberry.enum(ThreeDSecure, name="ThreeDSecurePolicy")
strawberry.enum(CaptureMethod, name="CaptureMethod")
strawberry.enum(PayoutStatus, name="PayoutStatus")
strawberry.enum(RefundStatus, name="RefundStatus")
