"""Idempotency keys: claimed when a keyed request starts, holding its first result
once it finishes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.dialect import insert_ignore
from app.db.tables import IdempotencyKey
from app.db.write_behind import write_behind

T = IdempotencyKey.__table__


@dataclass(frozen=True, slots=True)
class StoredKey:
    request_hash: str
    response: dict[str, Any]
    created_at: datetime
    finished: bool


# Built once, so both databases run them as kept (prepared) statements.
_KEY = (
    T.c.merchant_id == bindparam("b_merchant"),
    T.c.operation == bindparam("b_operation"),
    T.c.key == bindparam("b_key"),
)
_FIND = select(T.c.request_hash, T.c.response, T.c.created_at, T.c.finished_at).where(
    *_KEY, T.c.expires_at > bindparam("b_now")
)
_DELETE_EXPIRED = delete(T).where(*_KEY, T.c.expires_at <= bindparam("b_now"))
_TAKE_OVER = update(T).where(*_KEY).values(created_at=bindparam("b_now"))
_FINISH = (
    update(T)
    .where(*_KEY)
    .values(
        intent_id=bindparam("b_intent"),
        response=bindparam("b_response"),
        finished_at=bindparam("b_now"),
    )
)
_RELEASE = delete(T).where(*_KEY, T.c.finished_at.is_(None))
_RELEASE_MINE = _RELEASE.where(T.c.created_at == bindparam("b_claimed_at"))


def _key(merchant_id: str, operation: str, key: str) -> dict[str, Any]:
    return {"b_merchant": merchant_id, "b_operation": operation, "b_key": key}


async def find(
    conn: AsyncConnection, merchant_id: str, operation: str, key: str, now: datetime
) -> StoredKey | None:
    row = (await conn.execute(_FIND, {**_key(merchant_id, operation, key), "b_now": now})).first()
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
    await conn.execute(_DELETE_EXPIRED, {**_key(merchant_id, operation, key), "b_now": now})
    result = await conn.execute(
        insert_ignore(conn, T, ["merchant_id", "operation", "key"]),
        {
            "merchant_id": merchant_id,
            "operation": operation,
            "key": key,
            "request_hash": request_hash,
            "response": {},
            "created_at": now,
            "expires_at": expires_at,
        },
    )
    return bool(result.rowcount)


async def take_over(
    conn: AsyncConnection, merchant_id: str, operation: str, key: str, now: datetime
) -> None:
    """Restart an unfinished claim whose request died."""
    await conn.execute(_TAKE_OVER, {**_key(merchant_id, operation, key), "b_now": now})


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
    """Written behind (app/db/write_behind.py): the caller claimed the key in this
    transaction or holds its claim."""
    await write_behind(
        conn,
        _FINISH,
        {
            **_key(merchant_id, operation, key),
            "b_intent": intent_id,
            "b_response": response,
            "b_now": now,
        },
    )


async def release(
    conn: AsyncConnection,
    merchant_id: str,
    operation: str,
    key: str,
    claimed_at: datetime | None = None,
) -> None:
    """Forget an unfinished claim: the request failed and changed nothing.
    `claimed_at`: only the claim made then (not one another request made since)."""
    if claimed_at is None:
        await conn.execute(_RELEASE, _key(merchant_id, operation, key))
        return
    mine = {**_key(merchant_id, operation, key), "b_claimed_at": claimed_at}
    await conn.execute(_RELEASE_MINE, mine)


async def purge_expired(conn: AsyncConnection, now: datetime) -> int:
    result = await conn.execute(delete(T).where(T.c.expires_at <= now))
    return result.rowcount or 0
