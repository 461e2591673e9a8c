"""The shared sandbox clock offset: one row."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.dialect import insert_ignore
from app.db.tables import SandboxClock

T = SandboxClock.__table__
ROW = 1


async def offset(conn: AsyncConnection) -> float:
    value = await conn.scalar(select(T.c.offset_seconds).where(T.c.id == ROW))
    return float(value or 0.0)


async def advance(conn: AsyncConnection, seconds: float) -> float:
    await conn.execute(insert_ignore(conn, T, ["id"]).values(id=ROW, offset_seconds=0.0))
    await conn.execute(
        update(T).where(T.c.id == ROW).values(offset_seconds=T.c.offset_seconds + seconds)
    )
    return await offset(conn)
