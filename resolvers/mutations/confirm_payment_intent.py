from __future__ import annotations

import strawberry

from app.domain.cards import ThreeDSecure
from app.services.payment_requests import (
    CardOptions,
    ConfirmIntent,
    CryptoOptions,
    OxxoOptions,
    SpeiOptions,
)
from resolvers.context import Context
from resolvers.errors import payload
from resolvers.inputs import CardInput, ConfirmPaymentIntentInput
from resolvers.types.payloads import PaymentIntentPayload


@strawberry.mutation(
    description="Pay with a method: card, OXXO voucher, SPEI transfer or crypto "
    "(client secret or secret key)."
)
async def confirm_payment_intent(
    info: strawberry.Info[Context, None], input: ConfirmPaymentIntentInput
) -> PaymentIntentPayload:
    context = info.context
    command = ConfirmIntent(
        intent_id=str(input.id),
        method=input.method,
        card=_card(input.card) if input.card else None,
        oxxo=OxxoOptions(input.oxxo.customer_name, input.oxxo.email, input.oxxo.expires_in_days)
        if input.oxxo
        else None,
        spei=SpeiOptions(input.spei.payer_clabe) if input.spei else None,
        crypto=CryptoOptions(input.crypto.asset, input.crypto.network) if input.crypto else None,
        idempotency_key=input.idempotency_key,
    )
    return await payload(
        context, lambda: context.services.confirm.confirm(context.caller(), command)
    )


def _card(card: CardInput) -> CardOptions:
    tokens = None if card.tokens is None else tuple((t.provider, t.token) for t in card.tokens)
    policy = card.three_d_secure or ThreeDSecure.AUTOMATIC
    return CardOptions(card.token, tokens, card.installments, policy)
