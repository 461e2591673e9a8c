"""Persisted GraphQL documents by SHA-256: looked up by any process, kept bounded."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.dialect import insert_ignore
from app.db.tables import PersistedQuery

T = PersistedQuery.__table__
_FIND = select(T.c.query).where(T.c.sha256 == bindparam("sha256"))


async def find(conn: AsyncConnection, sha256: str) -> str | None:
    row = (await conn.execute(_FIND, {"sha256": sha256})).first()
    return None if row is None else str(row.query)


async def add(conn: AsyncConnection, sha256: str, query: str, now: datetime) -> None:
    """Insert, or nothing when another process stored the same document first."""
    await conn.execute(
        insert_ignore(conn, T, ["sha256"]).values(sha256=sha256, query=query, created_at=now)
    )


async def keep_newest(conn: AsyncConnection, count: int) -> int:
    """Delete all but the `count` most recently stored documents; how many went."""
    newest = select(T.c.sha256).order_by(T.c.created_at.desc()).limit(count)
    gone = await conn.execute(delete(T).where(T.c.sha256.not_in(newest.scalar_subquery())))
    return int(gone.rowcount or 0)
