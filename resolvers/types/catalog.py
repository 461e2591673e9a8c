"""What a checkout may offer (`PaymentMethod`) and how the PSPs are doing (`ProviderStatus`)."""

from __future__ import annotations

import strawberry

from app.services.routing import MethodOption, ProviderState
from resolvers.types.enums import CircuitState, PaymentMethodType, Settlement
from resolvers.types.money import Money


@strawberry.type
class PaymentMethod:
    type: PaymentMethodType
    display_name: str
    min_amount: Money
    max_amount: Money
    settlement: Settlement
    available: bool = strawberry.field(
        description="False when every provider for it is down or the amount is out of range."
    )

    @classmethod
    def from_option(cls, option: MethodOption) -> PaymentMethod:
        return cls(
            type=option.type,
            display_name=option.display_name,
            min_amount=Money.from_domain(option.min_amount),
            max_amount=Money.from_domain(option.max_amount),
            settlement=option.settlement,
            available=option.available,
        )


@strawberry.type
class ProviderStatus:
    name: str
    methods: list[PaymentMethodType]
    circuit: CircuitState

    @classmethod
    def from_state(cls, state: ProviderState) -> ProviderStatus:
        return cls(name=state.name, methods=list(state.methods), circuit=state.circuit)
