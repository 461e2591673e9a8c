"""The webhook inbox: each PSP event once, by (provider, event id)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Exists, and_, bindparam, exists, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.dialect import insert_ignore
from app.db.tables import WebhookInbox
from app.db.write_behind import write_behind

T = WebhookInbox.__table__


@dataclass(frozen=True, slots=True)
class InboxRow:
    id: int
    event: dict[str, Any]


async def store(
    conn: AsyncConnection,
    *,
    provider: str,
    event_id: str,
    event_type: str,
    handle: str | None,
    body: str,
    event: dict[str, Any],
    now: datetime,
) -> int | None:
    """The new row's id, or None when this event was stored before (a replay)."""
    result = await conn.execute(
        insert_ignore(conn, T, ["provider", "event_id"])
        .values(
            provider=provider,
            event_id=event_id,
            event_type=event_type,
            handle=handle,
            body=body,
            event=event,
            outcome="received",
            received_at=now,
        )
        .returning(T.c.id)
    )
    row = result.first()
    return int(row.id) if row else None


async def store_rejected(
    conn: AsyncConnection,
    *,
    provider: str,
    event_id: str,
    body: str,
    reason: str,
    now: datetime,
) -> bool:
    """Keep a malformed signed event as `rejected`; False when it was kept before."""
    result = await conn.execute(
        insert_ignore(conn, T, ["provider", "event_id"])
        .values(
            provider=provider,
            event_id=event_id,
            event_type="malformed",
            handle=None,
            body=body,
            event={},
            outcome="rejected",
            reason=reason,
            received_at=now,
        )
        .returning(T.c.id)
    )
    return result.first() is not None


_SET_OUTCOME = (
    update(T)
    .where(T.c.id == bindparam("b_id"))
    .values(outcome=bindparam("outcome"), intent_id=bindparam("intent_id"))
)


async def set_outcome(
    conn: AsyncConnection, row_id: int, outcome: str, intent_id: str | None
) -> None:
    """Written behind (app/db/write_behind.py): the row is the caller's own."""
    await write_behind(
        conn, _SET_OUTCOME, {"b_id": row_id, "outcome": outcome, "intent_id": intent_id}
    )


def waiting(provider: str = "provider", handles: str = "handles") -> Any:
    """Events that came for these handles before they were known, bound under the
    names given (an UPDATE must not reuse its columns' names): asked about inside
    the statement that settles a confirmation's intent (intents.get_locked_seeing,
    intents.save), a statement fewer than asking apart."""
    return and_(
        T.c.outcome == "unmatched",
        T.c.provider == bindparam(provider),
        T.c.handle.in_(bindparam(handles, expanding=True)),
    )


# Built once: read on a confirmation that found some waiting.
_WAITING = waiting()
ANY_UNMATCHED: Exists = exists().where(_WAITING)
_UNMATCHED = select(T.c.id, T.c.event).where(_WAITING).order_by(T.c.id)


async def unmatched(conn: AsyncConnection, provider: str, handles: list[str]) -> list[InboxRow]:
    rows = await conn.execute(_UNMATCHED, {"provider": provider, "handles": handles})
    return [InboxRow(*row) for row in rows]


async def unmatched_since(conn: AsyncConnection, since: datetime, limit: int) -> list[InboxRow]:
    rows = await conn.execute(
        select(T.c.id, T.c.event)
        .where(T.c.outcome == "unmatched", T.c.received_at >= since)
        .order_by(T.c.id)
        .limit(limit)
    )
    return [InboxRow(*row) for row in rows]
