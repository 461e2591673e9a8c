"""The append-only audit trail: insert and read, never update or delete."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import AuditEvent
from app.domain.records import AuditRecord

T = AuditEvent.__table__
_INSERT = insert(T)


@dataclass(frozen=True, slots=True)
class NewAuditEvent:
    type: str
    status: str | None = None
    provider: str | None = None
    data: dict[str, Any] | None = None


async def append(
    conn: AsyncConnection,
    *,
    intent_id: str,
    merchant_id: str,
    events: list[NewAuditEvent],
    at: datetime,
) -> None:
    if not events:
        return
    await conn.execute(
        _INSERT,
        [
            {
                "intent_id": intent_id,
                "merchant_id": merchant_id,
                "type": e.type,
                "status": e.status,
                "provider": e.provider,
                "data": e.data,
                "at": at,
            }
            for e in events
        ],
    )


async def for_intents(conn: AsyncConnection, intent_ids: list[str]) -> dict[str, list[AuditRecord]]:
    """Every intent's events, oldest first, in one query."""
    rows = await conn.execute(
        select(T.c.id, T.c.intent_id, T.c.type, T.c.status, T.c.provider, T.c.at, T.c.data)
        .where(T.c.intent_id.in_(intent_ids))
        .order_by(T.c.id)
    )
    found: dict[str, list[AuditRecord]] = defaultdict(list)
    for row in rows:
        found[row.intent_id].append(AuditRecord(*row))
    return found
