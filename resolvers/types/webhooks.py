"""Merchant webhook endpoints and their deliveries (contract section 6)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.domain.records import Delivery, Endpoint
from resolvers.types.payloads import UserError


@strawberry.type
class WebhookEndpoint:
    id: strawberry.ID
    url: str
    events: list[str]
    enabled: bool
    secret: str | None = strawberry.field(
        description="Only in the answer that creates it or rolls it."
    )

    @classmethod
    def from_endpoint(cls, endpoint: Endpoint, secret: str | None = None) -> WebhookEndpoint:
        return cls(
            id=strawberry.ID(endpoint.id),
            url=endpoint.url,
            events=list(endpoint.events),
            enabled=endpoint.enabled,
            secret=secret,
        )


@strawberry.type
class WebhookDelivery:
    id: strawberry.ID
    event_id: str
    event_type: str
    attempts: int
    last_status_code: int | None
    delivered_at: datetime | None
    next_attempt_at: datetime | None

    @classmethod
    def from_delivery(cls, delivery: Delivery) -> WebhookDelivery:
        return cls(
            id=strawberry.ID(delivery.id),
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            attempts=delivery.attempts,
            last_status_code=delivery.last_status_code,
            delivered_at=delivery.delivered_at,
            next_attempt_at=delivery.next_attempt_at,
        )


@strawberry.type
class WebhookEndpointPayload:
    webhook_endpoint: WebhookEndpoint | None
    errors: list[UserError]
