"""The names PSPs use for our payments, and which intent each one means."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.dialect import insert_ignore
from app.db.tables import ProviderHandle
from app.db.write_behind import write_behind

T = ProviderHandle.__table__


async def remember(
    conn: AsyncConnection, provider: str, handles: list[str], intent_id: str, attempt_id: str
) -> None:
    rows = [
        {"provider": provider, "handle": h, "intent_id": intent_id, "attempt_id": attempt_id}
        for h in dict.fromkeys(handles)
        if h
    ]
    if rows:  # written behind (app/db/write_behind.py): a name known already is kept
        await write_behind(conn, insert_ignore(conn, T, ["provider", "handle"]), rows)
