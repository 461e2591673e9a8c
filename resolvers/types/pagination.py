from __future__ import annotations

import strawberry

from resolvers.types.intent import PaymentIntent


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class PaymentIntentEdge:
    node: PaymentIntent
    cursor: str


@strawberry.type
class PaymentIntentConnection:
    edges: list[PaymentIntentEdge]
    page_info: PageInfo
