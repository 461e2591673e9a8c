"""Merchants and their API keys (stored as SHA-256 digests only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import ApiKey, Merchant

M = Merchant.__table__
K = ApiKey.__table__


@dataclass(frozen=True, slots=True)
class KeyOwner:
    merchant_id: str
    kind: str


async def insert_merchant(
    conn: AsyncConnection, merchant_id: str, name: str, now: datetime
) -> None:
    await conn.execute(insert(M).values(id=merchant_id, name=name, created_at=now))


async def insert_key(
    conn: AsyncConnection,
    *,
    key_id: str,
    merchant_id: str,
    kind: str,
    key_hash: str,
    key_prefix: str,
    now: datetime,
) -> None:
    await conn.execute(
        insert(K).values(
            id=key_id,
            merchant_id=merchant_id,
            kind=kind,
            key_hash=key_hash,
            key_prefix=key_prefix,
            created_at=now,
        )
    )


async def owner_of_key(conn: AsyncConnection, key_hash: str) -> KeyOwner | None:
    row = (
        await conn.execute(
            select(K.c.merchant_id, K.c.kind).where(
                K.c.key_hash == key_hash, K.c.revoked_at.is_(None)
            )
        )
    ).first()
    return KeyOwner(row.merchant_id, row.kind) if row else None


async def merchant_exists(conn: AsyncConnection, merchant_id: str) -> bool:
    row = (await conn.execute(select(M.c.id).where(M.c.id == merchant_id))).first()
    return row is not None
