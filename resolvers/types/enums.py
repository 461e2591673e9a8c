"""The contract's enums are the domain's enums, registered with Strawberry."""

from __future__ import annotations

import strawberry

from app.domain.intents import PaymentIntentStatus as DomainStatus
from app.domain.keys import ApiKeyKind as DomainKeyKind
from app.domain.methods import PaymentMethodType as DomainMethod
from app.domain.methods import Settlement as DomainSettlement
from app.domain.money import Currency as DomainCurrency
from app.resilience.breaker import CircuitState as DomainCircuit

Currency = strawberry.enum(DomainCurrency, name="Currency")
PaymentMethodType = strawberry.enum(DomainMethod, name="PaymentMethodType")
Settlement = strawberry.enum(DomainSettlement, name="Settlement")
PaymentIntentStatus = strawberry.enum(DomainStatus, name="PaymentIntentStatus")
CircuitState = strawberry.enum(DomainCircuit, name="CircuitState")
ApiKeyKind = strawberry.enum(DomainKeyKind, name="ApiKeyKind")
