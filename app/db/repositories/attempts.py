"""Provider payment attempts: one row per call to a PSP, written before the call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.repositories.claims import claim_ids
from app.db.tables import ProviderPayment, ReferenceNumber
from app.db.write_behind import write_behind

T = ProviderPayment.__table__
_INSERT = insert(T)
_FINISH = update(T).where(T.c.id == bindparam("b_id"))
_NEXT_NUMBER = insert(ReferenceNumber.__table__)
_COLUMNS = (
    T.c.id,
    T.c.intent_id,
    T.c.provider,
    T.c.method,
    T.c.idempotency_key,
    T.c.status,
    T.c.provider_ref,
    T.c.request,
)
_PENDING = (
    select(*_COLUMNS)
    .where(T.c.intent_id == bindparam("intent_id"), T.c.status == "pending")
    .order_by(T.c.created_at)
)
# A charge the intent did not need: never the payment to refund or to ask about.
EXTRA = "extra"
# Replaying an attempt the PSP answered this way cannot tell us more; searching can.
MISMATCH = "IDEMPOTENCY_MISMATCH"


@dataclass(frozen=True, slots=True)
class Attempt:
    id: str
    intent_id: str
    provider: str
    method: str
    idempotency_key: str
    status: str
    provider_ref: str | None
    request: dict[str, Any]


async def insert_attempt(conn: AsyncConnection, attempt: Attempt, now: datetime) -> None:
    """Written behind (app/db/write_behind.py): its id and key are new."""
    await write_behind(
        conn,
        _INSERT,
        {
            "id": attempt.id,
            "intent_id": attempt.intent_id,
            "provider": attempt.provider,
            "method": attempt.method,
            "idempotency_key": attempt.idempotency_key,
            "status": attempt.status,
            "provider_ref": attempt.provider_ref,
            "request": attempt.request,
            "created_at": now,
            "updated_at": now,
        },
    )


async def finish(
    conn: AsyncConnection,
    attempt_id: str,
    *,
    status: str,
    now: datetime,
    provider_ref: str | None = None,
    response: dict[str, Any] | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    search_after: datetime | None = None,
) -> None:
    """Store the attempt's outcome; `search_after` asks reconciliation to search the PSP
    for a payment it may hide (None: nothing to look for). Written behind
    (app/db/write_behind.py)."""
    await write_behind(
        conn,
        _FINISH,
        {
            "b_id": attempt_id,
            "status": status,
            "provider_ref": provider_ref,
            "response": response,
            "error_code": error_code,
            "error_message": error_message,
            "search_after": search_after,
            "updated_at": now,
        },
    )


async def pending_for(conn: AsyncConnection, intent_id: str) -> list[Attempt]:
    """Attempts whose call may have reached the PSP but whose answer we never stored."""
    rows = await conn.execute(_PENDING, {"intent_id": intent_id})
    return [Attempt(*row) for row in rows]


async def latest_with_ref(conn: AsyncConnection, intent_id: str, provider: str) -> Attempt | None:
    """The newest attempt at `provider` that the PSP gave an id to."""
    row = (
        await conn.execute(
            select(*_COLUMNS)
            .where(
                T.c.intent_id == intent_id,
                T.c.provider == provider,
                T.c.provider_ref.is_not(None),
                T.c.status != EXTRA,
            )
            .order_by(T.c.created_at.desc())
            .limit(1)
        )
    ).first()
    return Attempt(*row) if row else None


async def allocate_reference_number(conn: AsyncConnection, attempt_id: str) -> int:
    """A number no other attempt has, from the database's own sequence."""
    result = await conn.execute(_NEXT_NUMBER, {"attempt_id": attempt_id})
    number = result.inserted_primary_key
    assert number is not None
    return int(number[0])


async def intents_with_pending(conn: AsyncConnection, before: datetime, limit: int) -> list[str]:
    """Intents with an attempt still pending since before `before` (nobody came back)."""
    rows = await conn.execute(
        select(T.c.intent_id)
        .where(
            T.c.status == "pending",
            T.c.created_at < before,
            # Replays of these only hear the mismatch again: reconciliation searches.
            or_(T.c.error_code.is_(None), T.c.error_code != MISMATCH),
        )
        .group_by(T.c.intent_id)
        .limit(limit)
    )
    return [row.intent_id for row in rows]


async def claim_for_search(
    conn: AsyncConnection, *, due: datetime, again_at: datetime, limit: int
) -> list[Attempt]:
    """Attempts whose search fell due by `due`, re-stamped `again_at` so that no other
    worker takes them, and so that one whose search is cut short is searched again."""
    candidates = (
        select(T.c.id)
        .where(T.c.search_after.is_not(None), T.c.search_after <= due)
        .order_by(T.c.search_after)
        .limit(limit)
    )
    ids = await claim_ids(conn, candidates, T, search_after=again_at)
    if not ids:
        return []
    rows = await conn.execute(select(*_COLUMNS).where(T.c.id.in_(ids)).order_by(T.c.created_at))
    return [Attempt(*row) for row in rows]


async def search_again(conn: AsyncConnection, attempt_id: str, at: datetime | None) -> None:
    """When to search for this attempt's payment next; None: never."""
    await conn.execute(update(T).where(T.c.id == attempt_id).values(search_after=at))


async def by_ref(conn: AsyncConnection, provider: str, provider_ref: str) -> Attempt | None:
    """The attempt the PSP's `provider_ref` belongs to, if Cobro holds it."""
    row = (
        await conn.execute(
            select(*_COLUMNS).where(T.c.provider == provider, T.c.provider_ref == provider_ref)
        )
    ).first()
    return Attempt(*row) if row else None
