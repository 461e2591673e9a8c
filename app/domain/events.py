"""What to call a change: the event types merchants and subscribers see.

Stripe's names where Stripe has one (payment_intent.succeeded, ...), and
`payment_intent.partially_funded` for a transfer that fell short, as Stripe's
customer-balance payments do. `payment_intent.late_payment` is ours: money that
arrived after the intent expired or was canceled, which the merchant must return.
"""

from __future__ import annotations

from app.domain.intents import FINAL_STATUSES, PaymentIntent, PaymentIntentStatus
from app.domain.payout_events import PAYOUT_EVENT_TYPES, REFUND_EVENT_TYPES

S = PaymentIntentStatus

STATUS_EVENTS = {
    S.REQUIRES_PAYMENT_METHOD: "payment_intent.updated",
    S.REQUIRES_ACTION: "payment_intent.requires_action",
    # Stripe's name for an authorization now waiting to be captured.
    S.REQUIRES_CAPTURE: "payment_intent.amount_capturable_updated",
    S.PROCESSING: "payment_intent.processing",
    S.SUCCEEDED: "payment_intent.succeeded",
    S.FAILED: "payment_intent.payment_failed",
    S.CANCELED: "payment_intent.canceled",
    S.EXPIRED: "payment_intent.expired",
}

EVENT_TYPES = frozenset(
    {
        "payment_intent.created",
        *STATUS_EVENTS.values(),
        "payment_intent.refunded",
        "payment_intent.partially_funded",
        "payment_intent.late_payment",
        *PAYOUT_EVENT_TYPES,
        *REFUND_EVENT_TYPES,
    }
)


def change_event_type(before: PaymentIntent | None, after: PaymentIntent) -> str:
    if before is None:
        return "payment_intent.created"
    if after.status is not before.status:
        return STATUS_EVENTS[after.status]
    if after.amount_refunded != before.amount_refunded:
        return "payment_intent.refunded"
    if after.amount_received != before.amount_received:
        if after.status in FINAL_STATUSES:
            return "payment_intent.late_payment"
        return "payment_intent.partially_funded"
    return "payment_intent.updated"
