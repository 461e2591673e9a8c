"""`Refund` (contract section 8): money going back, with the payout that carries it
for cash, bank and crypto payments. Secret key only, like payouts."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import strawberry

from app.domain import refunds as domain
from resolvers.types.enums import RefundStatus
from resolvers.types.money import Money
from resolvers.types.payout import Payout

if TYPE_CHECKING:
    from resolvers.context import Context


@strawberry.type(description="Money going back to the customer.")
class Refund:
    id: strawberry.ID
    status: RefundStatus
    amount: Money
    reason: str | None
    payment_intent_id: strawberry.ID
    created_at: datetime
    payout_id: strawberry.Private[str | None] = None

    @strawberry.field(description="The SPEI payout carrying it (cash, bank and crypto payments).")
    async def payout(self, info: strawberry.Info[Context, None]) -> Payout | None:
        if self.payout_id is None:
            return None
        payouts = info.context.services.payouts
        payout = await payouts.get(info.context.caller(), self.payout_id)
        return None if payout is None else Payout.from_domain(payout, payouts.proof_url(payout))

    @classmethod
    def from_domain(cls, refund: domain.Refund) -> Refund:
        return cls(
            id=strawberry.ID(refund.id),
            status=refund.status,
            amount=Money.from_domain(refund.amount),
            reason=refund.reason,
            payment_intent_id=strawberry.ID(refund.intent_id),
            created_at=refund.created_at,
            payout_id=refund.payout_id,
        )
