"""Claiming rows for one worker among many: the shared step of every job's lease."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, Table, update
from sqlalchemy.ext.asyncio import AsyncConnection


async def claim_ids(
    conn: AsyncConnection, candidates: Select[Any], table: Table, **stamp: Any
) -> list[Any]:
    """The ids `candidates` selects, stamped with `stamp` (a lease, a checked-at time)
    in the caller's transaction so no other worker takes them. On PostgreSQL the rows
    are locked with SKIP LOCKED, so concurrent workers pass over each other's rows;
    SQLite has one writer at a time."""
    if conn.dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    ids = [row.id for row in await conn.execute(candidates)]
    if ids:
        await conn.execute(update(table).where(table.c.id.in_(ids)).values(**stamp))
    return ids
