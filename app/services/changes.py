"""The one way an intent changes: new version, audit events, all in the caller's
transaction. Every service that moves an intent goes through here, so no change
can be written without its trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from app import logs, trace_context
from app.db.engine import Database
from app.db.repositories import audit, outbox
from app.db.repositories import intents as intent_rows
from app.db.repositories.audit import NewAuditEvent
from app.domain.codec import intent_to_dict
from app.domain.events import change_event_type
from app.domain.intents import PaymentIntent
from app.metrics import INTENT_CHANGES

# The writer of an outbox row publishes it; if the writer dies, any relay may take
# the row over once this lease has run out.
OUTBOX_LEASE = timedelta(seconds=15)


async def record_new(
    conn: AsyncConnection, intent: PaymentIntent, events: list[NewAuditEvent], now: datetime
) -> None:
    await intent_rows.insert_intent(conn, intent)
    await audit.append(
        conn, intent_id=intent.id, merchant_id=intent.merchant_id, events=events, at=now
    )
    await _log(conn, None, intent, now)


async def record_change(
    conn: AsyncConnection,
    before: PaymentIntent,
    after: PaymentIntent,
    events: list[NewAuditEvent],
    now: datetime,
    *,
    locked: bool = False,
    unless_waiting: tuple[str, list[str]] | None = None,
) -> None:
    """`locked`: `before` was read FOR UPDATE in this transaction; `unless_waiting`:
    it was read before, and the change is refused while the webhook inbox holds an
    event for those (PSP, handles) (intents.save)."""
    if after.version != before.version + 1:
        raise ValueError("a change must bump the version by exactly one")
    await intent_rows.save(
        conn,
        after,
        previous_version=before.version,
        locked=locked,
        unless_waiting=unless_waiting,
    )
    await audit.append(
        conn, intent_id=after.id, merchant_id=after.merchant_id, events=events, at=now
    )
    await _log(conn, before, after, now)


async def _log(
    conn: AsyncConnection, before: PaymentIntent | None, after: PaymentIntent, now: datetime
) -> None:
    """The outbox row of this version, published by our relay once we commit."""
    logs.note(merchant_id=after.merchant_id, intent_id=after.id)
    entry = await outbox.append(
        conn,
        intent_id=after.id,
        merchant_id=after.merchant_id,
        version=after.version,
        event_type=change_event_type(before, after),
        payload=intent_to_dict(after),
        now=now,
        lease_until=now + OUTBOX_LEASE,
        traceparent=trace_context.traceparent(),
    )
    Database.after_commit(conn, entry)
    Database.after_commit(conn, _Changed(after.status.value))


async def record_events(
    conn: AsyncConnection, intent: PaymentIntent, events: list[NewAuditEvent], now: datetime
) -> None:
    """Audit events that do not change the intent (attempts, webhooks that moved nothing)."""
    await audit.append(
        conn, intent_id=intent.id, merchant_id=intent.merchant_id, events=events, at=now
    )


@dataclass(frozen=True, slots=True)
class _Changed:
    """An intent change, counted once its transaction commits (`count_committed`)."""

    status: str


def count_committed(items: list[object]) -> None:
    """After a commit (Database.add_after_commit): count the intent changes it held,
    by the status each left its intent in. Counted here, not as they were written, so
    a transaction that fails (a guarded save refused, then done again) counts none."""
    for item in items:
        if isinstance(item, _Changed):
            INTENT_CHANGES.labels(item.status).inc()


def status_event(intent: PaymentIntent, **data: object) -> NewAuditEvent:
    """The audit event for reaching `intent.status`: intent.succeeded, intent.failed, ..."""
    return NewAuditEvent(
        type=f"intent.{intent.status.value.lower()}",
        status=intent.status.value,
        provider=intent.provider,
        data={k: v for k, v in data.items() if v is not None} or None,
    )
