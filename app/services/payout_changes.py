"""The one way a payout changes: new version, audit events in the merchant's chain,
outbox row, all in the caller's transaction (as services/changes.py does for intents)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from app import logs
from app.db.engine import Database
from app.db.repositories import audit, outbox
from app.db.repositories import payouts as payout_rows
from app.db.repositories.audit import NewAuditEvent
from app.domain.payout_codec import payout_to_dict
from app.domain.payout_events import payout_event_type
from app.domain.payouts import Payout
from app.services.changes import OUTBOX_LEASE
from app.services.refund_payouts import follow_payout


async def record_new_payout(
    conn: AsyncConnection,
    payout: Payout,
    events: list[NewAuditEvent],
    now: datetime,
    *,
    lease_until: datetime,
) -> None:
    await payout_rows.insert_payout(conn, payout, lease_until=lease_until)
    await record_payout_events(conn, payout, events, now)
    await _log(conn, None, payout, now)


async def record_payout_change(
    conn: AsyncConnection,
    before: Payout,
    after: Payout,
    events: list[NewAuditEvent],
    now: datetime,
    *,
    keep_lease: bool = False,
) -> None:
    if after.version != before.version + 1:
        raise ValueError("a change must bump the version by exactly one")
    await payout_rows.save(conn, after, previous_version=before.version, keep_lease=keep_lease)
    await record_payout_events(conn, after, events, now)
    await _log(conn, before, after, now)
    if after.status is not before.status:
        await follow_payout(conn, after, now)


async def record_payout_events(
    conn: AsyncConnection, payout: Payout, events: list[NewAuditEvent], now: datetime
) -> None:
    await audit.append(
        conn, intent_id=payout.id, merchant_id=payout.merchant_id, events=events, at=now
    )


def payout_status_event(payout: Payout, **data: object) -> NewAuditEvent:
    """payout.in_transit, payout.paid, payout.returned, ...: reaching `payout.status`.
    The status goes in `data`: an event's own `status` is a PaymentIntentStatus."""
    return NewAuditEvent(
        type=f"payout.{payout.status.value.lower()}",
        provider=payout.provider,
        data={"status": payout.status.value, **{k: v for k, v in data.items() if v is not None}},
    )


async def _log(conn: AsyncConnection, before: Payout | None, after: Payout, now: datetime) -> None:
    logs.note(merchant_id=after.merchant_id, payout_id=after.id)
    entry = await outbox.append(
        conn,
        intent_id=after.id,
        merchant_id=after.merchant_id,
        version=after.version,
        event_type=payout_event_type(before, after),
        payload=payout_to_dict(after),
        now=now,
        lease_until=now + OUTBOX_LEASE,
    )
    Database.after_commit(conn, entry)
