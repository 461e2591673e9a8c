"""A refund carried by a payout follows it, in the payout's own transaction.

IN_TRANSIT: a PSP took the transfer, so the amount counts as refunded (processing).
PAID: the customer's bank credited it (succeeded). FAILED or CANCELED before it left,
or RETURNED by the receiving bank (even after PAID): the money is the merchant's
again, so the refund fails and that amount can be refunded again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.repositories import intents as intent_rows
from app.db.repositories import refunds as refund_rows
from app.db.repositories.audit import NewAuditEvent
from app.domain.money import Money
from app.domain.payouts import Payout, PayoutStatus
from app.domain.refunds import COUNTED
from app.services.changes import record_change, record_events
from app.services.refund_changes import move_refund

P = PayoutStatus
_FOLLOWS = {
    P.IN_TRANSIT: "processing",
    P.PAID: "succeeded",
    P.FAILED: "failed",
    P.CANCELED: "failed",
    P.RETURNED: "failed",
}
# Where a refund may go from each of its statuses: failed is final; succeeded is not,
# since a PAID payout can still be RETURNED.
_MOVES = {
    "pending": frozenset({"processing", "succeeded", "failed"}),
    "processing": frozenset({"succeeded", "failed"}),
    "succeeded": frozenset({"failed"}),
    "failed": frozenset[str](),
}


async def follow_payout(conn: AsyncConnection, payout: Payout, now: datetime) -> None:
    """Move the refund `payout` carries to match the payout's new status."""
    target = _FOLLOWS.get(payout.status)
    if payout.refund_id is None or target is None:
        return
    refund = await refund_rows.get(conn, payout.refund_id, for_update=True)
    assert refund is not None
    if target not in _MOVES[refund.status]:
        return
    intent = await intent_rows.get(conn, refund.intent_id, for_update=True)
    assert intent is not None
    money = Money(refund.amount, intent.amount.currency)
    counted_before, counted_after = refund.status in COUNTED, target in COUNTED
    data: dict[str, object] = {
        "refund": refund.id,
        "amount": money.to_decimal_string(),
        "payout": payout.id,
        "payout_status": payout.status.value,
    }
    if payout.return_reason is not None:
        data["return_code"] = payout.return_reason.code
        data["return_message"] = payout.return_reason.message
    if payout.status is P.FAILED and payout.failure_message:
        data["message"] = payout.failure_message
    error = _error(payout) if target == "failed" else None
    await move_refund(
        conn,
        refund.id,
        target,
        now,
        provider=payout.provider,
        provider_ref=payout.provider_ref,
        error_message=error,
    )
    event = NewAuditEvent(f"refund.{target}", provider=payout.provider, data=data)
    if counted_before == counted_after:
        await record_events(conn, intent, [event], now)
        return
    refunded = intent.amount_refunded + money if counted_after else intent.amount_refunded - money
    after = intent.changed(now, amount_refunded=refunded)
    await record_change(conn, intent, after, [event], now)


def _error(payout: Payout) -> str:
    if payout.return_reason is not None:
        reason = payout.return_reason
        return f"payout {payout.id} returned: {reason.code} {reason.message}"
    return f"payout {payout.id} {payout.status.value.lower()}: {payout.failure_message or ''}"
