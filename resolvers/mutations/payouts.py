"""createPayout and cancelPayout (contract section 8, secret key)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import strawberry

from app.services.payout_sending import PayoutResult
from app.services.payouts import CreatePayout
from resolvers.context import Context
from resolvers.errors import attempt
from resolvers.inputs import CreatePayoutInput
from resolvers.types.payloads import UserError
from resolvers.types.payout import Payout, PayoutPayload


async def payout_payload(
    context: Context, run: Callable[[], Awaitable[PayoutResult]]
) -> PayoutPayload:
    result, errors = await attempt(run)
    if result is None:
        return PayoutPayload(payout=None, errors=errors)
    payout = result.payout
    return PayoutPayload(
        payout=None
        if payout is None
        else Payout.from_domain(payout, context.services.payouts.proof_url(payout)),
        errors=[UserError.from_error(e) for e in result.errors],
    )


@strawberry.mutation(description="Send an SPEI transfer out of your account (secret key).")
async def create_payout(
    info: strawberry.Info[Context, None], input: CreatePayoutInput
) -> PayoutPayload:
    context = info.context
    command = CreatePayout(
        amount=input.amount,
        clabe=input.clabe,
        beneficiary_name=input.beneficiary_name,
        concept=input.concept,
        reference=input.reference,
        rfc=input.rfc,
        metadata=input.metadata,
        idempotency_key=input.idempotency_key,
    )
    return await payout_payload(
        context, lambda: context.services.payouts.create(context.caller(), command)
    )


@strawberry.mutation(description="Cancel a payout that has not left (PENDING only).")
async def cancel_payout(info: strawberry.Info[Context, None], id: strawberry.ID) -> PayoutPayload:
    context = info.context
    return await payout_payload(
        context, lambda: context.services.payouts.cancel(context.caller(), str(id))
    )
