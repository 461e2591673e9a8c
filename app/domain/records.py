"""Read-only records the API shows as they are stored: audit events, merchant
webhook endpoints and deliveries. Plain values, so the GraphQL layer can show them
without knowing the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    intent_id: str
    type: str
    status: str | None
    provider: str | None
    at: datetime
    data: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class RetiringSecret:
    """A webhook secret rolled away, still signing until `expires_at`."""

    secret: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    merchant_id: str
    url: str
    events: list[str]
    secret: str
    enabled: bool
    created_at: datetime
    retiring: tuple[RetiringSecret, ...] = ()

    def wants(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events

    def signing_secrets(self, now: datetime) -> tuple[str, ...]:
        """The current secret first, then each rolled one still in its overlap: a
        delivery carries one signature per secret, as Stripe's does in a roll."""
        return (self.secret, *(r.secret for r in self.retiring if now < r.expires_at))


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    intent_id: str
    intent_version: int
    body: str
    status: str
    attempts: int
    last_status_code: int | None
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
