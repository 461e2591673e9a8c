from __future__ import annotations

import strawberry

from app.services.refunds import RefundCommand
from resolvers.context import Context
from resolvers.errors import payload
from resolvers.inputs import RefundPaymentIntentInput
from resolvers.types.payloads import PaymentIntentPayload


@strawberry.mutation(
    description="Give money back, all or part: to the card, or by SPEI to `clabe` (secret key)."
)
async def refund_payment_intent(
    info: strawberry.Info[Context, None], input: RefundPaymentIntentInput
) -> PaymentIntentPayload:
    context = info.context
    command = RefundCommand(
        intent_id=str(input.id),
        amount=input.amount,
        reason=input.reason,
        clabe=input.clabe,
        idempotency_key=input.idempotency_key,
    )
    return await payload(
        context, lambda: context.services.refunds.refund(context.caller(), command)
    )
