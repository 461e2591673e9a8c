from __future__ import annotations

import strawberry

from app.services.capture import CaptureIntent
from resolvers.context import Context
from resolvers.errors import payload
from resolvers.inputs import CapturePaymentIntentInput
from resolvers.types.payloads import PaymentIntentPayload


@strawberry.mutation(
    description="Capture an authorized card payment, all or part; the rest is released "
    "(secret key)."
)
async def capture_payment_intent(
    info: strawberry.Info[Context, None], input: CapturePaymentIntentInput
) -> PaymentIntentPayload:
    context = info.context
    command = CaptureIntent(str(input.id), input.amount, input.idempotency_key)
    return await payload(
        context, lambda: context.services.capture.capture(context.caller(), command)
    )
