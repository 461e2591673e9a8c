"""createPaymentLink and deactivatePaymentLink (contract section 9, secret key)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import strawberry

from app.domain.payment_links import PaymentLink as DomainLink
from app.services.payment_links import CreateLink
from resolvers.context import Context
from resolvers.errors import attempt
from resolvers.inputs import CreatePaymentLinkInput
from resolvers.types.payment_link import PaymentLink, PaymentLinkPayload


async def link_payload(run: Callable[[], Awaitable[DomainLink]]) -> PaymentLinkPayload:
    link, errors = await attempt(run)
    return PaymentLinkPayload(
        payment_link=None if link is None else PaymentLink.from_domain(link), errors=errors
    )


@strawberry.mutation(description="A link to share: each visit opens a new intent (secret key).")
async def create_payment_link(
    info: strawberry.Info[Context, None], input: CreatePaymentLinkInput
) -> PaymentLinkPayload:
    context = info.context
    command = CreateLink(
        amount=input.amount,
        description=input.description,
        allowed_methods=tuple(input.allowed_methods) if input.allowed_methods else None,
        expires_at=input.expires_at,
        metadata=input.metadata,
        idempotency_key=input.idempotency_key,
    )
    return await link_payload(
        lambda: context.services.payment_links.create(context.caller(), command)
    )


@strawberry.mutation(description="Turn a link off: visits get a 410 page from then on.")
async def deactivate_payment_link(
    info: strawberry.Info[Context, None], id: strawberry.ID
) -> PaymentLinkPayload:
    context = info.context
    return await link_payload(
        lambda: context.services.payment_links.deactivate(context.caller(), str(id))
    )
