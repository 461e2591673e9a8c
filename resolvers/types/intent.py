"""`PaymentIntent`, its audit `PaymentEvent`s and its `PaymentError`.

An intent is presented for one viewer (`from_domain`), and what that viewer may not
see is left out right there, into the object itself: subscribers who share one
presented object or one execution (resolvers/shared_events.py) are then the same
viewer by construction, and no resolver has to look the viewer up again.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from app.domain import hosted_pages
from app.domain import intents as domain
from app.domain.records import AuditRecord
from app.services.auth import Principal, owns
from resolvers.types.enums import CaptureMethod, PaymentIntentStatus, PaymentMethodType
from resolvers.types.money import Money
from resolvers.types.next_action import NextAction, next_action_from_domain

if TYPE_CHECKING:
    from resolvers.context import Context
    from resolvers.types.refund import Refund


@strawberry.type(description="One row of the append-only audit trail.")
class PaymentEvent:
    id: strawberry.ID
    type: str
    status: PaymentIntentStatus | None
    provider: str | None
    at: datetime
    data: JSON | None
    hash: str = strawberry.field(
        description=(
            "This event's link in the merchant's audit chain: SHA-256 over the previous "
            "event's hash and this event's canonical content (README, Security)."
        )
    )

    @classmethod
    def from_record(cls, record: AuditRecord) -> PaymentEvent:
        return cls(
            id=strawberry.ID(f"ev_{record.id}"),
            type=record.type,
            status=domain.PaymentIntentStatus(record.status) if record.status else None,
            provider=record.provider,
            at=record.at,
            data=_json(record.data),
            hash=record.hash,
        )


@strawberry.type
class PaymentError:
    code: str
    message: str
    provider: str | None


@strawberry.type
class PaymentIntent:
    id: strawberry.ID
    status: PaymentIntentStatus
    version: int = strawberry.field(
        description="Grows by one with every change; subscribers use it to drop stale messages."
    )
    amount: Money
    amount_received: Money
    amount_refunded: Money
    method: PaymentMethodType | None
    provider: str | None = strawberry.field(
        description="The PSP that holds the payment; secret key only."
    )
    description: str | None
    metadata: JSON | None = strawberry.field(description="Secret key only.")
    client_secret: str | None = strawberry.field(
        description="Visible to the secret-key holder only."
    )
    next_action: NextAction | None
    last_error: PaymentError | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    installments: int | None = strawberry.field(
        description="Meses sin intereses: the months the card payment is split into."
    )
    capture_method: CaptureMethod
    amount_capturable: Money
    capture_before: datetime | None = strawberry.field(
        description="When an uncaptured authorization lapses."
    )
    # Whether the viewer it was presented for is the merchant's secret key.
    owner_view: strawberry.Private[bool] = False
    client_secret_of: strawberry.Private[str] = ""

    @strawberry.field(
        description="Cobro's hosted checkout for this intent, the client secret in its "
        "fragment; null for anyone but the secret-key holder."
    )
    def checkout_url(self, info: strawberry.Info[Context, None]) -> str | None:
        if not self.owner_view:
            return None
        public_url = info.context.services.public_url
        return hosted_pages.checkout_url(public_url, str(self.id), self.client_secret_of)

    @strawberry.field(
        description="The audit trail, oldest first; null for anyone but the secret-key holder."
    )
    async def events(self, info: strawberry.Info[Context, None]) -> list[PaymentEvent] | None:
        if not self.owner_view:
            return None
        records = await info.context.loaders.events.load(str(self.id))
        return [PaymentEvent.from_record(r) for r in records]

    @strawberry.field(description="Its refunds, oldest first; secret key only.")
    async def refunds(
        self, info: strawberry.Info[Context, None]
    ) -> list[Annotated[Refund, strawberry.lazy("resolvers.types.refund")]] | None:
        from resolvers.types.refund import Refund

        if not self.owner_view:
            return None
        found = await info.context.loaders.refunds.load(str(self.id))
        return [Refund.from_domain(r) for r in found]

    @classmethod
    def from_domain(cls, intent: domain.PaymentIntent, viewer: Principal | None) -> PaymentIntent:
        """The intent as `viewer` may see it: whole for its merchant's secret key;
        for a client secret (or anyone else) without `metadata`, `events`,
        `clientSecret` and the PSP's references (`provider`, `lastError.provider`)."""
        owner = owns(viewer, intent)
        error = intent.last_error
        return cls(
            id=strawberry.ID(intent.id),
            status=intent.status,
            version=intent.version,
            amount=Money.from_domain(intent.amount),
            amount_received=Money.from_domain(intent.amount_received),
            amount_refunded=Money.from_domain(intent.amount_refunded),
            method=intent.method,
            provider=intent.provider if owner else None,
            description=intent.description,
            metadata=_json(intent.metadata) if owner else None,
            client_secret=intent.client_secret if owner else None,
            next_action=next_action_from_domain(intent),
            last_error=PaymentError(
                code=error.code,
                message=error.message,
                provider=error.provider if owner else None,
            )
            if error
            else None,
            created_at=intent.created_at,
            updated_at=intent.updated_at,
            expires_at=intent.expires_at,
            installments=intent.installments,
            capture_method=intent.capture_method,
            amount_capturable=Money.from_domain(intent.amount_capturable),
            capture_before=intent.capture_before,
            owner_view=owner,
            client_secret_of=intent.client_secret if owner else "",
        )


def _json(value: dict[str, Any] | None) -> JSON | None:
    return None if value is None else JSON(value)
