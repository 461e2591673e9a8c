"""Payout rows <-> domain `Payout` values, and the attempts that send them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.repositories.intents import ConcurrentUpdate
from app.db.tables import PayoutAttempt, PayoutRow
from app.domain.money import Currency, Money
from app.domain.payouts import Payout, PayoutReturn, PayoutStatus

T = PayoutRow.__table__
A = PayoutAttempt.__table__
_COLUMNS = [c for c in T.c if c.name not in ("lease_until", "checked_at")]


def _values(payout: Payout) -> dict[str, Any]:
    returned = payout.return_reason
    return {
        "id": payout.id,
        "merchant_id": payout.merchant_id,
        "status": payout.status.value,
        "version": payout.version,
        "currency": payout.amount.currency.value,
        "amount": payout.amount.minor,
        "clabe": payout.clabe,
        "bank": payout.bank,
        "beneficiary_name": payout.beneficiary_name,
        "concept": payout.concept,
        "reference": payout.reference,
        "rfc": payout.rfc,
        "tracking_key": payout.tracking_key,
        "provider": payout.provider,
        "provider_ref": payout.provider_ref,
        "return_code": returned.code if returned else None,
        "return_message": returned.message if returned else None,
        "failure_message": payout.failure_message,
        "refund_id": payout.refund_id,
        "metadata": payout.metadata,
        "created_at": payout.created_at,
        "updated_at": payout.updated_at,
        "paid_at": payout.paid_at,
    }


def from_row(row: RowMapping) -> Payout:
    return Payout(
        id=row["id"],
        merchant_id=row["merchant_id"],
        status=PayoutStatus(row["status"]),
        version=row["version"],
        amount=Money(row["amount"], Currency(row["currency"])),
        clabe=row["clabe"],
        bank=row["bank"],
        beneficiary_name=row["beneficiary_name"],
        concept=row["concept"],
        reference=row["reference"],
        tracking_key=row["tracking_key"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        rfc=row["rfc"],
        provider=row["provider"],
        provider_ref=row["provider_ref"],
        return_reason=PayoutReturn(row["return_code"], row["return_message"] or "")
        if row["return_code"]
        else None,
        failure_message=row["failure_message"],
        refund_id=row["refund_id"],
        metadata=row["metadata"],
        paid_at=row["paid_at"],
    )


async def insert_payout(conn: AsyncConnection, payout: Payout, *, lease_until: datetime) -> None:
    await conn.execute(insert(T).values(**_values(payout), lease_until=lease_until))


async def get(conn: AsyncConnection, payout_id: str, *, for_update: bool = False) -> Payout | None:
    statement = select(*_COLUMNS).where(T.c.id == payout_id)
    if for_update:
        statement = statement.with_for_update()
    row = (await conn.execute(statement)).mappings().first()
    return from_row(row) if row else None


async def by_provider_ref(conn: AsyncConnection, provider: str, ref: str) -> Payout | None:
    statement = select(*_COLUMNS).where(T.c.provider == provider, T.c.provider_ref == ref)
    row = (await conn.execute(statement)).mappings().first()
    return from_row(row) if row else None


async def by_refund(conn: AsyncConnection, refund_id: str) -> Payout | None:
    """The payout carrying a refund, if one does."""
    statement = select(*_COLUMNS).where(T.c.refund_id == refund_id)
    row = (await conn.execute(statement)).mappings().first()
    return from_row(row) if row else None


async def ids_by_refund(conn: AsyncConnection, refund_ids: list[str]) -> dict[str, str]:
    """refund id -> the id of the payout carrying it, for the refunds a payout carries."""
    rows = await conn.execute(select(T.c.refund_id, T.c.id).where(T.c.refund_id.in_(refund_ids)))
    return {refund_id: payout_id for refund_id, payout_id in rows}


async def by_tracking_key(conn: AsyncConnection, tracking_key: str) -> Payout | None:
    statement = select(*_COLUMNS).where(T.c.tracking_key == tracking_key)
    row = (await conn.execute(statement)).mappings().first()
    return from_row(row) if row else None


async def save(
    conn: AsyncConnection, payout: Payout, *, previous_version: int, keep_lease: bool = False
) -> None:
    """Write a new version over the one we read; ConcurrentUpdate if another writer won."""
    values = _values(payout)
    del values["id"], values["merchant_id"], values["created_at"], values["tracking_key"]
    if not keep_lease:
        values["lease_until"] = None
    result = await conn.execute(
        update(T).where(T.c.id == payout.id, T.c.version == previous_version).values(**values)
    )
    if result.rowcount != 1:
        raise ConcurrentUpdate(payout.id)


async def take_lease(conn: AsyncConnection, payout_id: str, now: datetime, until: datetime) -> bool:
    """Hold the payout for sending until `until`; False if another sender holds it."""
    result = await conn.execute(
        update(T)
        .where(T.c.id == payout_id, or_(T.c.lease_until.is_(None), T.c.lease_until < now))
        .values(lease_until=until)
    )
    return result.rowcount == 1


async def release_lease(conn: AsyncConnection, payout_id: str, until: datetime) -> None:
    await conn.execute(
        update(T).where(T.c.id == payout_id, T.c.lease_until == until).values(lease_until=None)
    )


async def page(
    conn: AsyncConnection,
    merchant_id: str,
    *,
    limit: int,
    after: tuple[datetime, str] | None,
    status: PayoutStatus | None,
) -> list[Payout]:
    """Newest first; `after` is the (created_at, id) of the last row already seen."""
    statement = select(*_COLUMNS).where(T.c.merchant_id == merchant_id)
    if status is not None:
        statement = statement.where(T.c.status == status.value)
    if after is not None:
        created_at, payout_id = after
        statement = statement.where(
            or_(
                T.c.created_at < created_at,
                and_(T.c.created_at == created_at, T.c.id < payout_id),
            )
        )
    statement = statement.order_by(T.c.created_at.desc(), T.c.id.desc()).limit(limit)
    return [from_row(row) for row in (await conn.execute(statement)).mappings()]


async def unsent(conn: AsyncConnection, now: datetime, limit: int) -> list[str]:
    """PENDING payouts no sender holds: never sent, or their sender died."""
    rows = await conn.execute(
        select(T.c.id)
        .where(
            T.c.status == PayoutStatus.PENDING.value,
            or_(T.c.lease_until.is_(None), T.c.lease_until < now),
        )
        .order_by(T.c.updated_at)
        .limit(limit)
    )
    return [row[0] for row in rows]


async def in_transit_since(conn: AsyncConnection, before: datetime, limit: int) -> list[Payout]:
    """IN_TRANSIT payouts unchanged since `before` and not asked about since then."""
    rows = await conn.execute(
        select(*_COLUMNS)
        .where(
            T.c.status == PayoutStatus.IN_TRANSIT.value,
            T.c.updated_at < before,
            or_(T.c.checked_at.is_(None), T.c.checked_at < before),
        )
        .order_by(T.c.updated_at)
        .limit(limit)
    )
    return [from_row(row) for row in rows.mappings()]


async def mark_checked(conn: AsyncConnection, payout_id: str, now: datetime) -> None:
    await conn.execute(update(T).where(T.c.id == payout_id).values(checked_at=now))


# -- attempts ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttemptRow:
    id: str
    payout_id: str
    provider: str
    status: str
    wire: dict[str, Any]


async def insert_attempt(conn: AsyncConnection, attempt: AttemptRow, now: datetime) -> None:
    await conn.execute(
        insert(A).values(
            id=attempt.id,
            payout_id=attempt.payout_id,
            provider=attempt.provider,
            status=attempt.status,
            wire=attempt.wire,
            created_at=now,
            updated_at=now,
        )
    )


async def finish_attempt(
    conn: AsyncConnection,
    attempt_id: str,
    status: str,
    now: datetime,
    *,
    response: dict[str, Any] | None = None,
    error_message: str | None = None,
) -> None:
    await conn.execute(
        update(A)
        .where(A.c.id == attempt_id)
        .values(status=status, response=response, error_message=error_message, updated_at=now)
    )


async def open_attempt(conn: AsyncConnection, payout_id: str) -> AttemptRow | None:
    """The attempt whose outcome is unknown, if any: it is replayed, never replaced."""
    row = (
        await conn.execute(
            select(A.c.id, A.c.payout_id, A.c.provider, A.c.status, A.c.wire)
            .where(A.c.payout_id == payout_id, A.c.status == "pending")
            .order_by(A.c.created_at.desc())
        )
    ).first()
    return AttemptRow(*row) if row else None
