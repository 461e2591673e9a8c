from __future__ import annotations

import strawberry

from app.domain.money import Money as DomainMoney
from resolvers.scalars import DecimalString
from resolvers.types.enums import Currency


@strawberry.type(name="Money")
class Money:
    amount: DecimalString
    currency: Currency

    @classmethod
    def from_domain(cls, money: DomainMoney) -> Money:
        return cls(amount=DecimalString(money.to_decimal_string()), currency=money.currency)
