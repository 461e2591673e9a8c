from __future__ import annotations

import strawberry

from resolvers.context import Context
from resolvers.errors import payload
from resolvers.inputs import CancelPaymentIntentInput
from resolvers.types.payloads import PaymentIntentPayload


@strawberry.mutation(description="Cancel an intent that has not been paid (secret key).")
async def cancel_payment_intent(
    info: strawberry.Info[Context, None], input: CancelPaymentIntentInput
) -> PaymentIntentPayload:
    context = info.context
    return await payload(
        context, lambda: context.services.intents.cancel(context.caller(), str(input.id))
    )
