"""What a checkout may offer (`PaymentMethod`) and how the PSPs are doing (`ProviderStatus`)."""

from __future__ import annotations

import strawberry

from app.services.cards import PlanOffer
from app.services.routing import MethodOption, ProviderState
from resolvers.types.enums import CircuitState, PaymentMethodType, Settlement
from resolvers.types.money import Money


@strawberry.type(description="Meses sin intereses: `count` monthly payments, no interest.")
class InstallmentPlan:
    count: int
    min_amount: Money
    providers: list[str]

    @classmethod
    def from_offer(cls, offer: PlanOffer) -> InstallmentPlan:
        return cls(
            count=offer.count,
            min_amount=Money.from_domain(offer.min_amount),
            providers=list(offer.providers),
        )


@strawberry.type(description="Where a checkout mints a PSP's card token, and with which key.")
class CardTokenizer:
    provider: str
    publishable_key: str
    tokenize_url: str


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
    installment_plans: list[InstallmentPlan] = strawberry.field(
        description="CARD only: the plans this amount qualifies for."
    )
    tokenizers: list[CardTokenizer] = strawberry.field(
        description="CARD only: where a checkout mints each PSP's token."
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
            installment_plans=[InstallmentPlan.from_offer(o) for o in option.installment_plans],
            tokenizers=[
                CardTokenizer(
                    provider=t.provider,
                    publishable_key=t.publishable_key,
                    tokenize_url=t.tokenize_url,
                )
                for t in option.tokenizers
            ],
        )


@strawberry.type
class ProviderStatus:
    name: str
    methods: list[PaymentMethodType]
    circuit: CircuitState

    @classmethod
    def from_state(cls, state: ProviderState) -> ProviderStatus:
        return cls(name=state.name, methods=list(state.methods), circuit=state.circuit)
