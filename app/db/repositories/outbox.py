"""The outbox: one row per intent version, leased to the process that wrote it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.repositories.claims import claim_ids
from app.db.tables import Outbox
from app.db.write_behind import write_behind

T = Outbox.__table__
_INSERT = insert(T)


@dataclass(slots=True)
class OutboxEntry:
    # The row's id: known once the row is written, which may be as its transaction
    # commits (app/db/write_behind.py); 0 until then.
    id: int
    intent_id: str
    merchant_id: str
    version: int
    event_type: str
    payload: dict[str, Any]
    # Where the change's trace goes on (app/tracing.py); None when it was not traced.
    traceparent: str | None = None


async def append(
    conn: AsyncConnection,
    *,
    intent_id: str,
    merchant_id: str,
    version: int,
    event_type: str,
    payload: dict[str, Any],
    now: datetime,
    lease_until: datetime,
    traceparent: str | None = None,
) -> OutboxEntry:
    entry = OutboxEntry(0, intent_id, merchant_id, version, event_type, payload, traceparent)

    def written(key: Any) -> None:
        entry.id = int(key)

    await write_behind(
        conn,
        _INSERT,
        {
            "intent_id": intent_id,
            "merchant_id": merchant_id,
            "version": version,
            "event_type": event_type,
            "payload": payload,
            "created_at": now,
            "lease_until": lease_until,
            "traceparent": traceparent,
        },
        written,
    )
    return entry


_MARK_PUBLISHED = (
    update(T)
    .where(T.c.id.in_(bindparam("ids", expanding=True)))
    .values(published_at=bindparam("now", type_=T.c.published_at.type), lease_until=None)
)


async def mark_published(conn: AsyncConnection, ids: list[int], now: datetime) -> None:
    await conn.execute(_MARK_PUBLISHED, {"ids": ids, "now": now})


_ENTRY = (
    T.c.id,
    T.c.intent_id,
    T.c.merchant_id,
    T.c.version,
    T.c.event_type,
    T.c.payload,
    T.c.traceparent,
)


async def claim_orphans(
    conn: AsyncConnection, *, now: datetime, lease_until: datetime, limit: int
) -> list[OutboxEntry]:
    """Unpublished rows whose writer's lease ran out (it died): lease them to us."""
    candidates = (
        select(T.c.id)
        .where(T.c.published_at.is_(None), T.c.lease_until < now)
        .order_by(T.c.id)
        .limit(limit)
    )
    ids = await claim_ids(conn, candidates, T, lease_until=lease_until)
    if not ids:
        return []
    rows = await conn.execute(select(*_ENTRY).where(T.c.id.in_(ids)).order_by(T.c.id))
    return [OutboxEntry(*row) for row in rows]


async def versions_between(
    conn: AsyncConnection, intent_id: str, after: int, up_to: int | None = None
) -> list[OutboxEntry]:
    """The intent's logged versions after `after` (and up to `up_to`), oldest first."""
    statement = select(*_ENTRY).where(T.c.intent_id == intent_id, T.c.version > after)
    if up_to is not None:
        statement = statement.where(T.c.version <= up_to)
    rows = await conn.execute(statement.order_by(T.c.version))
    return [OutboxEntry(*row) for row in rows]


async def merchant_since(
    conn: AsyncConnection, merchant_id: str, since: datetime, *, after_id: int, limit: int
) -> list[OutboxEntry]:
    """One page of the merchant's changes logged since `since`, by id after `after_id`."""
    rows = await conn.execute(
        select(*_ENTRY)
        .where(T.c.merchant_id == merchant_id, T.c.created_at >= since, T.c.id > after_id)
        .order_by(T.c.id)
        .limit(limit)
    )
    return [OutboxEntry(*row) for row in rows]


async def purge_published(conn: AsyncConnection, before: datetime) -> int:
    """Drop published rows older than `before` (subscribers resync from newer ones)."""
    result = await conn.execute(
        delete(T).where(T.c.published_at.is_not(None), T.c.created_at < before)
    )
    return result.rowcount or 0


_UNPUBLISHED = select(func.count(), func.min(T.c.created_at)).where(T.c.published_at.is_(None))


async def unpublished(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """How many rows wait to be published, and when the oldest was written (for
    /metrics; the published_at index finds them)."""
    count, oldest = (await conn.execute(_UNPUBLISHED)).one()
    return int(count), oldest
