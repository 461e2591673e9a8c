"""What to call a payout's change: `payout.*` as merchants and subscribers see it
(contract section 8; Stripe's payout.created, payout.paid, payout.failed...)."""

from __future__ import annotations

from app.domain.payouts import Payout, PayoutStatus

P = PayoutStatus

PAYOUT_STATUS_EVENTS = {
    P.PENDING: "payout.updated",
    P.IN_TRANSIT: "payout.in_transit",
    P.PAID: "payout.paid",
    P.RETURNED: "payout.returned",
    P.FAILED: "payout.failed",
    P.CANCELED: "payout.canceled",
}
PAYOUT_EVENT_TYPES = frozenset({"payout.created", *PAYOUT_STATUS_EVENTS.values()})
REFUND_EVENT_TYPES = frozenset({"refund.created", "refund.succeeded", "refund.failed"})


def payout_event_type(before: Payout | None, after: Payout) -> str:
    if before is None:
        return "payout.created"
    if after.status is not before.status:
        return PAYOUT_STATUS_EVENTS[after.status]
    return "payout.updated"
