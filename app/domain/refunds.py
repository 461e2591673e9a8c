"""A refund as merchants see it: its public status and its JSON (contract section 8).

Inside, a refund is pending (recorded; for a card, not yet taken by the PSP; for SPEI,
its payout not yet paid), processing (the PSP took it: counted in amount_refunded),
succeeded or failed. Merchants see PENDING for the first two. A refund of a cash,
bank or crypto payment is carried by a payout and follows it: PAID succeeds it,
FAILED, CANCELED or RETURNED fails it. Pure.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.domain.money import Money

OBJECT = "refund"


class RefundStatus(enum.StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


_PUBLIC = {
    "pending": RefundStatus.PENDING,
    "processing": RefundStatus.PENDING,
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
}
# Internal statuses that count in the intent's amount_refunded.
COUNTED = frozenset({"processing", "succeeded"})


def public_status(status: str) -> RefundStatus:
    return _PUBLIC[status]


@dataclass(frozen=True, slots=True)
class Refund:
    """A refund as the API shows it."""

    id: str
    intent_id: str
    merchant_id: str
    status: RefundStatus
    amount: Money
    reason: str | None
    payout_id: str | None  # the payout carrying it (cash, bank and crypto payments)
    created_at: datetime


def refund_event_type(before: str | None, after: str) -> str | None:
    """refund.created, refund.succeeded, refund.failed: the webhook a change sends, or
    None when merchants see no change (pending -> processing is PENDING both ways)."""
    if before is None:
        return "refund.created"
    if public_status(before) is public_status(after):
        return None
    return f"refund.{public_status(after).value.lower()}"


def is_refund_dict(data: dict[str, Any]) -> bool:
    return data.get("object") == OBJECT


def refund_json(
    *,
    refund_id: str,
    status: str,
    amount: str,
    currency: str,
    reason: str | None,
    intent_id: str,
    payout_id: str | None,
    created_at: datetime,
) -> dict[str, Any]:
    """The refund as the GraphQL API names its fields (an outbox row's payload and the
    webhook's data.object)."""
    return {
        "id": refund_id,
        "object": OBJECT,
        "status": public_status(status).value,
        "amount": {"amount": amount, "currency": currency},
        "reason": reason,
        "paymentIntentId": intent_id,
        "payout": payout_id,
        "createdAt": created_at.isoformat(),
    }
