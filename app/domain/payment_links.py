"""Payment links (contract section 9): a fixed amount a merchant shares as a URL;
each visit opens a new intent of that merchant, as Stripe's links open a Checkout
Session per visit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.domain.methods import PaymentMethodType
from app.domain.money import Money

# Conekta's links live from 5 minutes to 365 days; Cobro takes the same window.
MIN_LIFETIME = timedelta(minutes=5)
MAX_LIFETIME = timedelta(days=365)
# The intent a visit opens names its link in its metadata under this key.
LINK_METADATA_KEY = "payment_link"


@dataclass(frozen=True, slots=True)
class PaymentLink:
    id: str
    merchant_id: str
    amount: Money
    description: str | None
    allowed_methods: tuple[PaymentMethodType, ...] | None
    metadata: dict[str, Any] | None
    active: bool
    expires_at: datetime | None
    created_at: datetime

    def is_open(self, now: datetime) -> bool:
        """Whether a visit may open an intent: active and not past its expiry."""
        return self.active and (self.expires_at is None or now < self.expires_at)

    def intent_metadata(self) -> dict[str, Any]:
        return {**(self.metadata or {}), LINK_METADATA_KEY: self.id}
