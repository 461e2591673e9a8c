"""Stored first results of keyed mutations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import IdempotencyKey

T = IdempotencyKey.__table__


@dataclass(frozen=True, slots=True)
class StoredResult:
    request_hash: str
    response: dict[str, Any]


async def find(
    conn: AsyncConnection, merchant_id: str, operation: str, key: str, now: datetime
) -> StoredResult | None:
    row = (
        await conn.execute(
            select(T.c.request_hash, T.c.response).where(
                T.c.merchant_id == merchant_id,
                T.c.operation == operation,
                T.c.key == key,
                T.c.expires_at > now,
            )
        )
    ).first()
    return StoredResult(row.request_hash, row.response) if row else None


async def store(
    conn: AsyncConnection,
    *,
    merchant_id: str,
    operation: str,
    key: str,
    request_hash: str,
    intent_id: str | None,
    response: dict[str, Any],
    now: datetime,
    expires_at: datetime,
) -> None:
    # An expired row with the same key may linger until the sweep; replace it.
    await conn.execute(
        delete(T).where(
            T.c.merchant_id == merchant_id,
            T.c.operation == operation,
            T.c.key == key,
            T.c.expires_at <= now,
        )
    )
    await conn.execute(
        insert(T).values(
            merchant_id=merchant_id,
            operation=operation,
            key=key,
            request_hash=request_hash,
            intent_id=intent_id,
            response=response,
            created_at=now,
            expires_at=expires_at,
        )
    )


async def purge_expired(conn: AsyncConnection, now: datetime) -> int:
    result = await conn.execute(delete(T).where(T.c.expires_at <= now))
    return result.rowcount or 0
