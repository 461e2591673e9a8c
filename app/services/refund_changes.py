"""The one way a refund row changes: new version, and its refund.* webhook as an
outbox row under the refund's id, in the caller's transaction (as payout_changes.py
does for payouts). Refund rows go to merchant webhooks only: no subscription
carries them, so the relay publishes nothing for them on the broker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import Database
from app.db.repositories import outbox
from app.db.repositories import payouts as payout_rows
from app.db.repositories import refunds as refund_rows
from app.db.repositories.refunds import RefundRow
from app.domain.money import Currency, Money
from app.domain.refunds import refund_event_type, refund_json
from app.services.changes import OUTBOX_LEASE


async def record_new_refund(conn: AsyncConnection, refund: RefundRow, now: datetime) -> None:
    """Insert the refund; a payout carrying it must be inserted before this runs."""
    await refund_rows.insert_refund(conn, refund, now=now)
    await _log(conn, None, refund.id, now)


async def move_refund(
    conn: AsyncConnection,
    refund_id: str,
    status: str,
    now: datetime,
    *,
    provider: str | None = None,
    provider_ref: str | None = None,
    error_message: str | None = None,
) -> None:
    before = await refund_rows.get(conn, refund_id, for_update=True)
    assert before is not None
    await refund_rows.set_status(
        conn,
        refund_id,
        status,
        now,
        provider=provider,
        provider_ref=provider_ref,
        error_message=error_message,
    )
    await _log(conn, before.status, refund_id, now)


async def _log(conn: AsyncConnection, before: str | None, refund_id: str, now: datetime) -> None:
    after = await refund_rows.get(conn, refund_id)
    assert after is not None and after.created_at is not None
    event_type = refund_event_type(before, after.status)
    if event_type is None:
        return
    payout = await payout_rows.by_refund(conn, refund_id)
    amount = Money(after.amount, Currency(after.currency)).to_decimal_string()
    entry = await outbox.append(
        conn,
        intent_id=after.id,
        merchant_id=after.merchant_id,
        version=after.version,
        event_type=event_type,
        payload=refund_json(
            refund_id=after.id,
            status=after.status,
            amount=amount,
            currency=after.currency,
            reason=after.reason,
            intent_id=after.intent_id,
            payout_id=payout.id if payout else None,
            created_at=after.created_at,
        ),
        now=now,
        lease_until=now + OUTBOX_LEASE,
    )
    Database.after_commit(conn, entry)
