"""PSP statuses in intent terms: one table for confirmation answers, one for webhooks."""

from __future__ import annotations

from app.domain.intents import PaymentIntentStatus
from providers.base import ProviderStatus

S = PaymentIntentStatus

# A confirmation's answer. PENDING (an answer we cannot read yet) means money may be
# moving: PROCESSING, and reconciliation asks again later.
CONFIRM_OUTCOMES = {
    ProviderStatus.SUCCEEDED: S.SUCCEEDED,
    ProviderStatus.PROCESSING: S.PROCESSING,
    ProviderStatus.PENDING: S.PROCESSING,
    ProviderStatus.REQUIRES_ACTION: S.REQUIRES_ACTION,
    ProviderStatus.REQUIRES_CAPTURE: S.REQUIRES_CAPTURE,
    ProviderStatus.FAILED: S.FAILED,
    ProviderStatus.CANCELED: S.FAILED,
    ProviderStatus.EXPIRED: S.FAILED,
}

# A webhook's news. PENDING says nothing definite, so it changes nothing.
WEBHOOK_OUTCOMES: dict[ProviderStatus, PaymentIntentStatus | None] = {
    ProviderStatus.SUCCEEDED: S.SUCCEEDED,
    ProviderStatus.PROCESSING: S.PROCESSING,
    ProviderStatus.PENDING: None,
    ProviderStatus.REQUIRES_ACTION: S.REQUIRES_ACTION,
    ProviderStatus.REQUIRES_CAPTURE: S.REQUIRES_CAPTURE,
    ProviderStatus.FAILED: S.FAILED,
    ProviderStatus.CANCELED: S.CANCELED,
    ProviderStatus.EXPIRED: S.EXPIRED,
}
