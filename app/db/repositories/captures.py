"""Captures of card authorizations: written before the PSP hears of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import CardCapture

T = CardCapture.__table__
_INSERT = insert(T)
_FINISH = update(T).where(T.c.id == bindparam("b_id"), T.c.status == "pending")
# The capture that is not refused: pending (its answer may be lost) or done.
_LIVE = (
    select(T.c.id, T.c.intent_id, T.c.provider, T.c.amount, T.c.idempotency_key, T.c.status)
    .where(T.c.intent_id == bindparam("intent_id"), T.c.status != "failed")
    .order_by(T.c.created_at)
)


@dataclass(frozen=True, slots=True)
class Capture:
    id: str
    intent_id: str
    provider: str
    amount: int  # minor units
    idempotency_key: str
    status: str  # pending | succeeded | failed


async def insert_capture(conn: AsyncConnection, capture: Capture, now: datetime) -> None:
    await conn.execute(
        _INSERT,
        {
            "id": capture.id,
            "intent_id": capture.intent_id,
            "provider": capture.provider,
            "amount": capture.amount,
            "idempotency_key": capture.idempotency_key,
            "status": capture.status,
            "created_at": now,
            "updated_at": now,
        },
    )


async def live_for(conn: AsyncConnection, intent_id: str) -> Capture | None:
    """The intent's capture that is pending or succeeded, if any."""
    row = (await conn.execute(_LIVE, {"intent_id": intent_id})).mappings().first()
    return Capture(**row) if row else None


async def finish(conn: AsyncConnection, capture_id: str, status: str, now: datetime) -> None:
    await conn.execute(_FINISH, {"b_id": capture_id, "status": status, "updated_at": now})
