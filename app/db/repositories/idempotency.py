"""Idempotency keys: claimed when a keyed request starts, holding its first result
once it finishes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.dialect import insert_ignore
from app.db.tables import IdempotencyKey

T = IdempotencyKey.__table__


@dataclass(frozen=True, slots=True)
class StoredKey:
    request_hash: str
    response: dict[str, Any]
    created_at: datetime
    finished: bool


def _where(merchant_id: str, operation: str, key: str) -> tuple[Any, ...]:
    return (T.c.merchant_id == merchant_id, T.c.operation == operation, T.c.key == key)


async def find(
    conn: AsyncConnection, merchant_id: str, operation: str, key: str, now: datetime
) -> StoredKey | None:
    row = (
        await conn.execute(
            select(T.c.request_hash, T.c.response, T.c.created_at, T.c.finished_at).where(
                *_where(merchant_id, operation, key), T.c.expires_at > now
            )
        )
    ).first()
    if row is None:
        return None
    return StoredKey(row.request_hash, row.response, row.created_at, row.finished_at is not None)


async def claim(
    conn: AsyncConnection,
    *,
    merchant_id: str,
    operation: str,
    key: str,
    request_hash: str,
    now: datetime,
    expires_at: datetime,
) -> bool:
    """Start a request under this key; False if some request already holds it."""
    # A key past its 7 days may linger until housekeeping: it is free again.
    await conn.execute(delete(T).where(*_where(merchant_id, operation, key), T.c.expires_at <= now))
    result = await conn.execute(
        insert_ignore(conn, T, ["merchant_id", "operation", "key"]).values(
            merchant_id=merchant_id,
            operation=operation,
            key=key,
            request_hash=request_hash,
            response={},
            created_at=now,
            expires_at=expires_at,
        )
    )
    return bool(result.rowcount)


async def take_over(
    conn: AsyncConnection, merchant_id: str, operation: str, key: str, now: datetime
) -> None:
    """Restart an unfinished claim whose request died."""
    await conn.execute(update(T).where(*_where(merchant_id, operation, key)).values(created_at=now))


async def finish(
    conn: AsyncConnection,
    *,
    merchant_id: str,
    operation: str,
    key: str,
    intent_id: str | None,
    response: dict[str, Any],
    now: datetime,
) -> None:
    await conn.execute(
        update(T)
        .where(*_where(merchant_id, operation, key))
        .values(intent_id=intent_id, response=response, finished_at=now)
    )


async def release(conn: AsyncConnection, merchant_id: str, operation: str, key: str) -> None:
    """Forget an unfinished claim: the request failed and changed nothing."""
    await conn.execute(
        delete(T).where(*_where(merchant_id, operation, key), T.c.finished_at.is_(None))
    )


async def purge_expired(conn: AsyncConnection, now: datetime) -> int:
    result = await conn.execute(delete(T).where(T.c.expires_at <= now))
    return result.rowcount or 0
