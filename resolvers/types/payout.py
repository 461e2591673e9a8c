"""`Payout`, its `PayoutReturn`, its payload and its connection (contract section 8).

Payouts are the secret key's alone: they are presented only to their merchant's
secret key (the service refuses anyone else), so nothing is held back per viewer.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from app.domain import payouts as domain
from resolvers.types.enums import PayoutStatus
from resolvers.types.intent import PaymentEvent
from resolvers.types.money import Money
from resolvers.types.pagination import PageInfo
from resolvers.types.payloads import UserError

if TYPE_CHECKING:
    from resolvers.context import Context
    from resolvers.types.refund import Refund


@strawberry.type(description="SPEI's causa de devolución, e.g. 01 account does not exist.")
class PayoutReturn:
    code: str
    message: str


@strawberry.type(description="An SPEI transfer out of the merchant's account.")
class Payout:
    id: strawberry.ID
    status: PayoutStatus
    version: int = strawberry.field(description="Grows by one with every change.")
    amount: Money
    clabe: str = strawberry.field(description="Destination, 18 digits, check digit verified.")
    bank: str = strawberry.field(description="The receiving bank, from the CLABE.")
    beneficiary_name: str
    concept: str = strawberry.field(description="SPEI concepto de pago, at most 40 characters.")
    reference: int = strawberry.field(description="Referencia numérica, 1..9,999,999.")
    tracking_key: str | None = strawberry.field(
        description="Clave de rastreo, once a PSP accepted the transfer."
    )
    provider: str | None
    return_reason: PayoutReturn | None = strawberry.field(description="When RETURNED.")
    proof_url: str | None = strawberry.field(
        description="Where the CEP (Banxico's proof of payment) is fetched, once PAID."
    )
    metadata: JSON | None
    created_at: datetime
    updated_at: datetime
    refund_id: strawberry.Private[str | None] = None

    @strawberry.field(description="Its audit trail, oldest first.")
    async def events(self, info: strawberry.Info[Context, None]) -> list[PaymentEvent]:
        records = await info.context.loaders.payout_events.load(str(self.id))
        return [PaymentEvent.from_record(r) for r in records]

    @strawberry.field(description="The refund it carries, when it carries one.")
    async def refund(
        self, info: strawberry.Info[Context, None]
    ) -> Annotated[Refund, strawberry.lazy("resolvers.types.refund")] | None:
        from resolvers.types.refund import Refund

        if self.refund_id is None:
            return None
        refund = await info.context.services.refunds.get(info.context.caller(), self.refund_id)
        return None if refund is None else Refund.from_domain(refund)

    @classmethod
    def from_domain(cls, payout: domain.Payout, proof_url: str | None = None) -> Payout:
        returned = payout.return_reason
        return cls(
            id=strawberry.ID(payout.id),
            status=payout.status,
            version=payout.version,
            amount=Money.from_domain(payout.amount),
            clabe=payout.clabe,
            bank=payout.bank,
            beneficiary_name=payout.beneficiary_name,
            concept=payout.concept,
            reference=payout.reference,
            tracking_key=payout.tracking_key if payout.accepted else None,
            provider=payout.provider,
            return_reason=PayoutReturn(code=returned.code, message=returned.message)
            if returned
            else None,
            proof_url=proof_url,
            metadata=None if payout.metadata is None else JSON(payout.metadata),
            created_at=payout.created_at,
            updated_at=payout.updated_at,
            refund_id=payout.refund_id,
        )


@strawberry.type
class PayoutPayload:
    payout: Payout | None
    errors: list[UserError]


@strawberry.type
class PayoutEdge:
    node: Payout
    cursor: str


@strawberry.type
class PayoutConnection:
    edges: list[PayoutEdge]
    page_info: PageInfo
