"""Merchants and their API keys (stored as SHA-256 digests only).

A key works while it is not revoked and its `expires_at`, set when it is rolled, is
unset or still ahead."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import ApiKey, Merchant

M = Merchant.__table__
K = ApiKey.__table__


@dataclass(frozen=True, slots=True)
class KeyOwner:
    merchant_id: str
    kind: str
    revoked_at: datetime | None
    expires_at: datetime | None

    def works_at(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class StoredKey:
    """What may be shown of a key: never the key, never its digest."""

    id: str
    kind: str
    key_prefix: str
    last4: str
    created_at: datetime
    expires_at: datetime | None


def _live(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (K.c.revoked_at.is_(None), or_(K.c.expires_at.is_(None), K.c.expires_at > now))


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
    last4: str,
    now: datetime,
) -> None:
    await conn.execute(
        insert(K).values(
            id=key_id,
            merchant_id=merchant_id,
            kind=kind,
            key_hash=key_hash,
            key_prefix=key_prefix,
            last4=last4,
            created_at=now,
        )
    )


_OWNER = select(K.c.merchant_id, K.c.kind, K.c.revoked_at, K.c.expires_at).where(
    K.c.key_hash == bindparam("key_hash")
)


async def owner_of_key(conn: AsyncConnection, key_hash: str) -> KeyOwner | None:
    """Whose key this is, working or not: `works_at` says whether it still does."""
    row = (await conn.execute(_OWNER, {"key_hash": key_hash})).first()
    return KeyOwner(*row) if row else None


async def live_keys(
    conn: AsyncConnection, merchant_id: str, now: datetime, kind: str | None = None
) -> list[StoredKey]:
    """The merchant's working keys: secret keys first, each kind oldest first."""
    query = select(
        K.c.id, K.c.kind, K.c.key_prefix, K.c.last4, K.c.created_at, K.c.expires_at
    ).where(K.c.merchant_id == merchant_id, *_live(now))
    if kind is not None:
        query = query.where(K.c.kind == kind)
    rows = await conn.execute(query.order_by(K.c.kind.desc(), K.c.created_at, K.c.id))
    return [StoredKey(*row) for row in rows]


async def key_prefixes(conn: AsyncConnection, merchant_id: str) -> list[str]:
    """The shown prefixes of every key the merchant was ever given (test or live)."""
    rows = await conn.execute(select(K.c.key_prefix).where(K.c.merchant_id == merchant_id))
    return [row.key_prefix for row in rows]


async def expire_keys(conn: AsyncConnection, key_ids: list[str], at: datetime) -> None:
    """These keys stop working at `at`, or sooner if they already were to."""
    await conn.execute(
        update(K)
        .where(K.c.id.in_(key_ids), or_(K.c.expires_at.is_(None), K.c.expires_at > at))
        .values(expires_at=at)
    )


async def lock_merchant(conn: AsyncConnection, merchant_id: str) -> bool:
    """Hold the merchant's row until commit, so two rolls of its keys run one after
    the other (PostgreSQL; SQLite's one writer does that by itself)."""
    row = (
        await conn.execute(select(M.c.id).where(M.c.id == merchant_id).with_for_update())
    ).first()
    return row is not None


async def merchant_exists(conn: AsyncConnection, merchant_id: str) -> bool:
    row = (await conn.execute(select(M.c.id).where(M.c.id == merchant_id))).first()
    return row is not None


_NAME = select(M.c.name).where(M.c.id == bindparam("merchant_id"))


async def merchant_name(conn: AsyncConnection, merchant_id: str) -> str | None:
    """The name a customer sees on Cobro's hosted pages."""
    return (await conn.execute(_NAME, {"merchant_id": merchant_id})).scalar_one_or_none()
