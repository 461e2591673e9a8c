"""Refund rows: written before the PSP call, finished with its answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import PayoutRow, Refund

T = Refund.__table__
P = PayoutRow.__table__
_COLUMNS = (
    T.c.id,
    T.c.intent_id,
    T.c.merchant_id,
    T.c.amount,
    T.c.currency,
    T.c.status,
    T.c.provider,
    T.c.provider_ref,
    T.c.idempotency_key,
    T.c.clabe,
    T.c.reason,
    T.c.client_key,
    T.c.request_hash,
    T.c.charge_ref,
    T.c.version,
    T.c.created_at,
)


@dataclass(frozen=True, slots=True)
class RefundRow:
    id: str
    intent_id: str
    merchant_id: str
    amount: int
    currency: str
    status: str
    provider: str | None
    provider_ref: str | None
    idempotency_key: str
    clabe: str | None
    reason: str | None = None
    client_key: str | None = None
    request_hash: str | None = None
    charge_ref: str | None = None  # an extra charge being returned, not the intent's own
    version: int = 1
    created_at: datetime | None = None  # set once stored


async def insert_refund(conn: AsyncConnection, refund: RefundRow, *, now: datetime) -> None:
    await conn.execute(
        insert(T).values(
            id=refund.id,
            intent_id=refund.intent_id,
            merchant_id=refund.merchant_id,
            amount=refund.amount,
            currency=refund.currency,
            status=refund.status,
            provider=refund.provider,
            provider_ref=refund.provider_ref,
            idempotency_key=refund.idempotency_key,
            reason=refund.reason,
            clabe=refund.clabe,
            client_key=refund.client_key,
            request_hash=refund.request_hash,
            charge_ref=refund.charge_ref,
            version=refund.version,
            created_at=now,
            updated_at=now,
        )
    )


async def set_status(
    conn: AsyncConnection,
    refund_id: str,
    status: str,
    now: datetime,
    *,
    provider: str | None = None,
    provider_ref: str | None = None,
    error_message: str | None = None,
) -> None:
    values: dict[str, object] = {"status": status, "updated_at": now, "version": T.c.version + 1}
    if provider is not None:
        values["provider"] = provider
    if provider_ref is not None:
        values["provider_ref"] = provider_ref
    if error_message is not None:
        values["error_message"] = error_message
    await conn.execute(update(T).where(T.c.id == refund_id).values(**values))


async def pending_total(conn: AsyncConnection, intent_id: str) -> int:
    """Minor units in refunds not yet accepted by a PSP (not in amount_refunded yet)."""
    total = await conn.scalar(
        select(func.coalesce(func.sum(T.c.amount), 0)).where(
            T.c.intent_id == intent_id, T.c.status == "pending"
        )
    )
    return int(total or 0)


async def by_provider_ref(conn: AsyncConnection, provider: str, ref: str) -> RefundRow | None:
    row = (
        await conn.execute(
            select(*_COLUMNS).where(T.c.provider == provider, T.c.provider_ref == ref)
        )
    ).first()
    return RefundRow(*row) if row else None


async def get(
    conn: AsyncConnection, refund_id: str, *, for_update: bool = False
) -> RefundRow | None:
    statement = select(*_COLUMNS).where(T.c.id == refund_id)
    if for_update:
        statement = statement.with_for_update()
    row = (await conn.execute(statement)).first()
    return RefundRow(*row) if row else None


async def of_intents(conn: AsyncConnection, intent_ids: list[str]) -> dict[str, list[RefundRow]]:
    """Each intent's refunds, oldest first."""
    found: dict[str, list[RefundRow]] = {intent_id: [] for intent_id in intent_ids}
    rows = await conn.execute(
        select(*_COLUMNS).where(T.c.intent_id.in_(intent_ids)).order_by(T.c.created_at, T.c.id)
    )
    for row in rows:
        found[row.intent_id].append(RefundRow(*row))
    return found


async def stale_pending(conn: AsyncConnection, before: datetime, limit: int) -> list[RefundRow]:
    """Refunds whose PSP never answered, last touched before `before`."""
    rows = await conn.execute(
        select(*_COLUMNS)
        .where(
            T.c.status == "pending",
            T.c.updated_at < before,
            # A refund a payout carries is resent as that payout (the payouts-send job).
            ~select(P.c.id).where(P.c.refund_id == T.c.id).exists(),
        )
        .order_by(T.c.updated_at)
        .limit(limit)
    )
    return [RefundRow(*row) for row in rows]
