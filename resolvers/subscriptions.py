"""Subscriptions over WebSocket: one intent, or every intent of the merchant."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from app.domain.intents import PaymentIntent as DomainIntent
from app.services.auth import Principal
from resolvers.context import Context
from resolvers.shared_events import present_shared
from resolvers.types.intent import PaymentIntent
from resolvers.types.payout import Payout

Info = strawberry.Info[Context, None]


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The intent as it is now (skipped when afterVersion is already current), "
        "then one message per change in version order, none lost; completes after a final "
        "status. Client secret or secret key."
    )
    async def payment_intent_updated(
        self, info: Info, id: strawberry.ID, after_version: int | None = None
    ) -> AsyncGenerator[PaymentIntent, None]:
        context = info.context
        stream: AsyncGenerator[PaymentIntent, None] = context.services.live.intent_updates(
            context.caller(),
            str(id),
            after_version,
            present=_present,
        )
        return stream

    @strawberry.subscription(
        description="Every change of every intent of the caller's merchant (secret key)."
    )
    async def payment_intents_updated(self, info: Info) -> AsyncGenerator[PaymentIntent, None]:
        context = info.context
        stream: AsyncGenerator[PaymentIntent, None] = context.services.live.merchant_updates(
            context.caller(),
            present=_present,
        )
        return stream

    @strawberry.subscription(
        description="The payout as it is now (skipped when afterVersion is already current), "
        "then one message per change in version order, none lost; completes after RETURNED, "
        "FAILED or CANCELED (PAID may still be followed by RETURNED). Secret key."
    )
    async def payout_updated(
        self, info: Info, id: strawberry.ID, after_version: int | None = None
    ) -> AsyncGenerator[Payout, None]:
        context = info.context
        payouts = context.services.payouts
        stream: AsyncGenerator[Payout, None] = payouts.live.payout_updates(
            context.caller(),
            str(id),
            after_version,
            present=lambda payout: Payout.from_domain(payout, payouts.proof_url(payout)),
        )
        return stream


def _present(intent: DomainIntent, viewer: Principal) -> PaymentIntent:
    """Made once per change and viewer, however many subscribers receive it."""
    return present_shared(intent, viewer, lambda: PaymentIntent.from_domain(intent, viewer))
