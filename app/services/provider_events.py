"""PSP webhooks: store each event once, then apply it, in one transaction.

The inbox is unique on (provider, event id), so a replayed event finds its row and
changes nothing. An event is applied through the same change path as everything
else (audit + outbox with the intent). An event that names a payment we have not
recorded yet (the PSP was faster than our own commit) waits in the inbox as
`unmatched`; confirmation applies it the moment it records the payment's handles.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import inbox
from app.db.repositories import intents as intent_rows
from app.db.repositories import payouts as payout_rows
from app.db.repositories import refunds as refund_rows
from app.db.repositories.audit import NewAuditEvent
from app.domain.ids import looks_like_id
from app.domain.intents import PaymentIntent
from app.domain.money import Money
from app.domain.settlement import PaymentNews, decide
from app.services.changes import record_change, record_events
from app.services.outcomes import WEBHOOK_OUTCOMES
from app.services.payout_news import PayoutNews, apply_payout_news
from app.services.refund_changes import move_refund
from providers.base import PayoutState, ProviderEvent, ProviderStatus

log = logging.getLogger("cobro.webhooks")

# Unmatched events are retried for this long; after that they wait for a person.
UNMATCHED_WINDOW = timedelta(days=7)
BATCH = 200
# Rejected events are kept under this prefix and a digest of their body.
REJECTED_PREFIX = "rejected:"


@dataclass(frozen=True, slots=True)
class Received:
    event_id: str
    outcome: str  # applied | ignored | unmatched | duplicate | rejected
    reason: str | None = None  # why a rejected event was refused


class ProviderEventService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def receive(self, events: list[ProviderEvent], body: bytes) -> list[Received]:
        """Store and apply each event; return only once all of them are committed."""
        return [await self._receive(event, body) for event in events]

    async def reject(self, provider: str, body: bytes, reason: str) -> Received:
        """Keep a validly signed but malformed event as `rejected`, and nothing else.

        Its id comes from its body, not from what it claims (that may be the malformed
        part), so a PSP's retry of the same bytes is kept once; were the same event
        ever applied after all (it is resent well-formed), it would not collide."""
        event_id = REJECTED_PREFIX + hashlib.sha256(body).hexdigest()[:32]
        async with self.db.transaction() as conn:
            stored = await inbox.store_rejected(
                conn,
                provider=provider,
                event_id=event_id,
                body=_storable(body),
                reason=reason,
                now=self.clock.now(),
            )
        log.warning(
            "%s event %s rejected%s: %s",
            provider,
            event_id,
            "" if stored else " again",
            reason,
        )
        return Received(event_id, "rejected", reason)

    async def retry_unmatched(self) -> int:
        """Apply stored events whose payment or refund we now know (the worker's job).

        An event can beat the commit that records its handle (on PostgreSQL the two
        transactions cannot see each other), and refund news can beat the refund row;
        this catches them up. Returns how many were applied."""
        now = self.clock.now()
        applied = 0
        async with self.db.transaction() as conn:
            for row in await inbox.unmatched_since(conn, now - UNMATCHED_WINDOW, BATCH):
                outcome, intent_id = await apply_event(
                    conn, ProviderEvent.from_dict(row.event), now
                )
                if outcome != "unmatched":
                    await inbox.set_outcome(conn, row.id, outcome, intent_id)
                    applied += 1
        return applied

    async def _receive(self, event: ProviderEvent, body: bytes) -> Received:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            row_id = await inbox.store(
                conn,
                provider=event.provider,
                event_id=event.event_id,
                event_type=event.type,
                handle=event.handle,
                body=body.decode("utf-8", "replace"),
                event=event.to_dict(),
                now=now,
            )
            if row_id is None:
                return Received(event.event_id, "duplicate")
            outcome, intent_id = await apply_event(conn, event, now)
            await inbox.set_outcome(conn, row_id, outcome, intent_id)
        log.info("%s event %s (%s): %s", event.provider, event.event_id, event.type, outcome)
        return Received(event.event_id, outcome)


async def apply_event(
    conn: AsyncConnection, event: ProviderEvent, now: datetime
) -> tuple[str, str | None]:
    """Apply one stored event; return its outcome and the intent it touched."""
    if event.refund_ref and not (event.provider_ref or event.lookup_key):
        payout = await payout_rows.by_provider_ref(conn, event.provider, event.refund_ref)
        if payout is not None:
            return await _apply_payout_event(conn, payout.id, event, now)
        return await _apply_refund_news(conn, event, now)
    intent = await _intent_of(conn, event)
    if intent is None:
        return "unmatched", None
    news = PaymentNews(
        status=WEBHOOK_OUTCOMES[event.status] if event.status else None,
        amount=event.amount,
        provider=event.provider,
        detail=event.type,
    )
    decision = decide(intent, news, now)
    received = NewAuditEvent(
        "webhook.received",
        provider=event.provider,
        data={
            "event_id": event.event_id,
            "type": event.type,
            "provider_status": event.status.value if event.status else None,
            "amount": _amount(event.amount, intent),
        },
    )
    if decision.intent is None:
        ignored = NewAuditEvent(
            decision.note, provider=event.provider, data={"reason": decision.reason}
        )
        await record_events(conn, intent, [received, ignored], now)
        return "ignored", intent.id
    after = decision.intent
    note = NewAuditEvent(
        decision.note,
        status=after.status.value if decision.note.startswith("intent.") else None,
        provider=event.provider,
        data={"reason": decision.reason} if decision.reason else None,
    )
    await record_change(conn, intent, after, [received, note], now, locked=True)
    return "applied", intent.id


async def _intent_of(conn: AsyncConnection, event: ProviderEvent) -> PaymentIntent | None:
    """The intent an event is about: by a handle we recorded, else by the intent id
    the PSP echoed back (a payment whose creating call timed out has no handle)."""
    hint = event.intent_hint if looks_like_id(event.intent_hint or "", "pi") else None
    return await intent_rows.get_locked_by_handle(
        conn, event.provider, [event.provider_ref or "", event.lookup_key or ""], hint
    )


async def apply_waiting(
    conn: AsyncConnection, provider: str, names: list[str], now: datetime
) -> bool:
    """Apply events that arrived before we knew these handles, oldest first; say
    whether any was waiting. A caller that read with intents.get_locked_seeing
    asks only when it said so."""
    waiting = await inbox.unmatched(conn, provider, [n for n in names if n])
    for row in waiting:
        outcome, intent_id = await apply_event(conn, ProviderEvent.from_dict(row.event), now)
        await inbox.set_outcome(conn, row.id, outcome, intent_id)
    return bool(waiting)


async def _apply_payout_event(
    conn: AsyncConnection, payout_id: str, event: ProviderEvent, now: datetime
) -> tuple[str, str | None]:
    """An order-status event about a payout: LIQUIDACION pays it, DEVOLUCION returns it
    (with SPEI's cause), CANCELACION fails it; anything else leaves it in transit."""
    if event.status is ProviderStatus.SUCCEEDED:
        state = PayoutState.PAID
    elif event.status is ProviderStatus.FAILED:
        returned = event.return_code is not None or event.type.upper().endswith("DEVOLUCION")
        state = PayoutState.RETURNED if returned else PayoutState.FAILED
    else:
        state = PayoutState.IN_TRANSIT
    news = PayoutNews(
        state,
        event.provider,
        provider_ref=event.refund_ref,
        return_code=event.return_code,
        message=event.type,
        source="webhook",
        detail=f"{event.type} ({event.event_id})",
    )
    _, changed = await apply_payout_news(conn, payout_id, news, now)
    return ("applied" if changed else "ignored"), payout_id


async def _apply_refund_news(
    conn: AsyncConnection, event: ProviderEvent, now: datetime
) -> tuple[str, str | None]:
    refund = await refund_rows.by_provider_ref(conn, event.provider, event.refund_ref or "")
    if refund is None:
        return "unmatched", None
    intent = await intent_rows.get(conn, refund.intent_id, for_update=True)
    assert intent is not None
    data = {"refund": refund.id, "event_id": event.event_id, "type": event.type}
    if refund.status != "processing" or event.status not in (
        ProviderStatus.SUCCEEDED,
        ProviderStatus.FAILED,
    ):
        await record_events(
            conn,
            intent,
            [
                NewAuditEvent(
                    "webhook.ignored",
                    provider=event.provider,
                    data={**data, "reason": f"refund is {refund.status}"},
                )
            ],
            now,
        )
        return "ignored", intent.id
    if event.status is ProviderStatus.SUCCEEDED:
        await move_refund(conn, refund.id, "succeeded", now)
        await record_events(
            conn,
            intent,
            [NewAuditEvent("refund.succeeded", provider=event.provider, data=data)],
            now,
        )
        return "applied", intent.id
    # The transfer bounced: the money is back with the merchant, so it can be refunded again.
    await move_refund(conn, refund.id, "failed", now, error_message=event.type)
    after = intent.changed(
        now, amount_refunded=intent.amount_refunded - Money(refund.amount, intent.amount.currency)
    )
    await record_change(
        conn,
        intent,
        after,
        [NewAuditEvent("refund.failed", provider=event.provider, data=data)],
        now,
    )
    return "applied", intent.id


def _storable(body: bytes) -> str:
    """A body as text any database keeps: bytes that are not UTF-8 and NUL (which
    PostgreSQL refuses in text) written as escapes. A body that was applied is JSON,
    and JSON is UTF-8 without NUL, so only rejected bodies can ever differ."""
    return body.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def _amount(minor: int | None, intent: PaymentIntent) -> str | None:
    return None if minor is None else Money(minor, intent.amount.currency).to_decimal_string()
