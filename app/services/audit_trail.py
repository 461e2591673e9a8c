"""Checking and handing over the audit trail: `cobro audit verify` and `cobro audit
export` (contract section 10).

`verify` walks each merchant's chain from its first event: positions must run
1, 2, 3, ... without a gap, each event's `prev_hash` must be the hash of the one
before, each `hash` must be what the event's content gives (app/domain/
audit_chain.py), and the chain must end exactly at the merchant's head. A row
changed in the database breaks its own link; a row deleted leaves a gap (or, if it
was the last, a chain that stops short of its head); a row inserted behind the
code's back either breaks a link or runs past the head. The first broken link of
each merchant is reported.

What a chain cannot show by itself: someone who can write the database may rewrite
a merchant's whole chain and its head consistently. Keep each head's hash
somewhere else now and then (verify prints them): a rewritten chain no longer ends
at a hash you kept.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.db.engine import Database
from app.db.repositories import audit
from app.db.repositories import merchants as merchant_rows
from app.domain import audit_chain
from app.domain.audit_chain import GENESIS
from app.domain.errors import NotFound


@dataclass(frozen=True, slots=True)
class BrokenLink:
    merchant_id: str
    seq: int
    event_id: int | None  # None: the break is at the head, not at a row
    reason: str

    def describe(self) -> str:
        where = f"event ev_{self.event_id} (seq {self.seq})" if self.event_id else f"seq {self.seq}"
        return f"merchant {self.merchant_id}: broken link at {where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    merchant_id: str
    events: int  # events checked before the first broken link (all of them if none)
    head_hash: str | None
    broken: BrokenLink | None

    def describe(self) -> str:
        if self.broken is not None:
            return self.broken.describe()
        return (
            f"merchant {self.merchant_id}: {self.events} events, chain intact, "
            f"head {self.head_hash}"
        )


class AuditTrail:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def verify(self, merchant_id: str | None = None) -> list[ChainReport]:
        """One report per merchant (only `merchant_id`'s when given), in id order."""
        async with self.db.read() as conn:
            if merchant_id is not None:
                if not await merchant_rows.merchant_exists(conn, merchant_id):
                    raise NotFound(f"no merchant {merchant_id}")
                merchants = [merchant_id]
            else:
                merchants = await audit.merchants_with_events(conn)
            return [await _verify_one(conn, m) for m in merchants]

    async def export(
        self, merchant_id: str, since: datetime, until: datetime
    ) -> AsyncIterator[dict[str, Any]]:
        """The merchant's events with `since <= at < until`, in chain order, each as
        a plain JSON object with its link, so the reader can check the links too."""
        async with self.db.read() as conn:
            if not await merchant_rows.merchant_exists(conn, merchant_id):
                raise NotFound(f"no merchant {merchant_id}")
            async for stored in audit.walk(conn, merchant_id, since=since, until=until):
                e = stored.event
                yield {
                    "id": f"ev_{stored.id}",
                    "merchant_id": e.merchant_id,
                    "intent_id": e.intent_id,
                    "seq": e.seq,
                    "type": e.type,
                    "status": e.status,
                    "provider": e.provider,
                    "at": audit_chain.utc_text(e.at),
                    "data": e.data,
                    "prev_hash": e.prev_hash,
                    "hash": e.hash,
                }


async def _verify_one(conn: Any, merchant_id: str) -> ChainReport:
    found = await audit.heads(conn, merchant_id)
    head = found[0] if found else None
    head_hash = head.hash if head else None
    seq, prev, checked = 0, GENESIS, 0

    def broken(at_seq: int, event_id: int | None, reason: str) -> ChainReport:
        return ChainReport(
            merchant_id, checked, head_hash, BrokenLink(merchant_id, at_seq, event_id, reason)
        )

    async for stored in audit.walk(conn, merchant_id):
        event = stored.event
        if event.seq != seq + 1:
            missing = (
                f"seq {seq + 1}" if event.seq == seq + 2 else f"seq {seq + 1} to {event.seq - 1}"
            )
            return broken(
                event.seq,
                stored.id,
                f"the chain jumps from seq {seq} to {event.seq}: "
                f"{missing} missing (deleted from the database?)",
            )
        if event.prev_hash != prev:
            return broken(
                event.seq,
                stored.id,
                f"its prev_hash {event.prev_hash} is not the hash of seq {seq} ({prev}): "
                "a row before it was changed or replaced, or this one was inserted",
            )
        if audit_chain.expected_hash(event) != event.hash:
            return broken(
                event.seq,
                stored.id,
                "its content does not give its hash: the row was changed after it was "
                "written, or inserted with a made-up hash",
            )
        if head is not None and event.seq > head.seq:
            return broken(
                event.seq,
                stored.id,
                f"the chain runs past its head (seq {head.seq}): inserted behind the code's back?",
            )
        seq, prev, checked = event.seq, event.hash, checked + 1
    if head is None:
        if checked:
            return broken(seq, None, "events but no chain head (the head row was deleted?)")
        return ChainReport(merchant_id, 0, None, None)
    if head.seq != seq:
        return broken(
            seq + 1,
            None,
            f"the chain stops at seq {seq} but its head says {head.seq}: the last "
            f"{head.seq - seq} event(s) were deleted from the database",
        )
    if head.hash != prev:
        return broken(
            seq, None, "the head's hash is not the last event's: the head or that event was changed"
        )
    return ChainReport(merchant_id, checked, head_hash, None)
