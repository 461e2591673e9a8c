from __future__ import annotations

import strawberry

from app.domain.cards import CaptureMethod
from app.services.intents import CreateIntent
from resolvers.context import Context
from resolvers.errors import payload
from resolvers.inputs import CreatePaymentIntentInput
from resolvers.types.payloads import PaymentIntentPayload


@strawberry.mutation(description="Start collecting a payment (secret key).")
async def create_payment_intent(
    info: strawberry.Info[Context, None], input: CreatePaymentIntentInput
) -> PaymentIntentPayload:
    context = info.context
    command = CreateIntent(
        amount=input.amount,
        currency=input.currency,
        description=input.description,
        metadata=input.metadata,
        allowed_methods=tuple(input.allowed_methods) if input.allowed_methods else None,
        idempotency_key=input.idempotency_key,
        capture_method=input.capture_method or CaptureMethod.AUTOMATIC,
    )
    return await payload(
        context, lambda: context.services.intents.create(context.caller(), command)
    )
