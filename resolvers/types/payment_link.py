"""`PaymentLink` and its payload and pages (contract section 9)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import strawberry

from app.domain import hosted_pages
from app.domain.payment_links import PaymentLink as DomainLink
from resolvers.types.enums import PaymentMethodType
from resolvers.types.money import Money
from resolvers.types.pagination import PageInfo
from resolvers.types.payloads import UserError

if TYPE_CHECKING:
    from resolvers.context import Context


@strawberry.type(description="A URL that opens a new intent of its amount on each visit.")
class PaymentLink:
    id: strawberry.ID
    amount: Money
    description: str | None
    allowed_methods: list[PaymentMethodType] | None
    active: bool
    expires_at: datetime | None
    created_at: datetime

    @strawberry.field(description="{public URL}/pay/{id}: share it with customers.")
    def url(self, info: strawberry.Info[Context, None]) -> str:
        return hosted_pages.payment_link_url(info.context.services.public_url, str(self.id))

    @classmethod
    def from_domain(cls, link: DomainLink) -> PaymentLink:
        return cls(
            id=strawberry.ID(link.id),
            amount=Money.from_domain(link.amount),
            description=link.description,
            allowed_methods=None if link.allowed_methods is None else list(link.allowed_methods),
            active=link.active,
            expires_at=link.expires_at,
            created_at=link.created_at,
        )


@strawberry.type
class PaymentLinkPayload:
    payment_link: PaymentLink | None
    errors: list[UserError]


@strawberry.type
class PaymentLinkEdge:
    node: PaymentLink
    cursor: str


@strawberry.type
class PaymentLinkConnection:
    edges: list[PaymentLinkEdge]
    page_info: PageInfo
