"""Payment links: insert, read, page, deactivate."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import PaymentLinkRow
from app.domain.methods import PaymentMethodType
from app.domain.money import Currency, Money
from app.domain.payment_links import PaymentLink

L = PaymentLinkRow.__table__

_GET = select(L).where(L.c.id == bindparam("link_id"))


async def insert_link(conn: AsyncConnection, link: PaymentLink) -> None:
    await conn.execute(
        insert(L).values(
            id=link.id,
            merchant_id=link.merchant_id,
            currency=link.amount.currency.value,
            amount=link.amount.minor,
            description=link.description,
            allowed_methods=None
            if link.allowed_methods is None
            else [m.value for m in link.allowed_methods],
            metadata=link.metadata,
            active=link.active,
            expires_at=link.expires_at,
            created_at=link.created_at,
        )
    )


async def get(conn: AsyncConnection, link_id: str) -> PaymentLink | None:
    row = (await conn.execute(_GET, {"link_id": link_id})).mappings().first()
    return None if row is None else _from_row(row)


async def deactivate(conn: AsyncConnection, link_id: str) -> None:
    await conn.execute(update(L).where(L.c.id == link_id).values(active=False))


async def page(
    conn: AsyncConnection, merchant_id: str, *, limit: int, after: tuple[datetime, str] | None
) -> list[PaymentLink]:
    """Newest first; `after` is the (created_at, id) of the last link already seen."""
    statement = select(L).where(L.c.merchant_id == merchant_id)
    if after is not None:
        created_at, link_id = after
        statement = statement.where(
            or_(L.c.created_at < created_at, and_(L.c.created_at == created_at, L.c.id < link_id))
        )
    statement = statement.order_by(L.c.created_at.desc(), L.c.id.desc()).limit(limit)
    return [_from_row(row) for row in (await conn.execute(statement)).mappings()]


def _from_row(row: RowMapping) -> PaymentLink:
    methods = row["allowed_methods"]
    return PaymentLink(
        id=row["id"],
        merchant_id=row["merchant_id"],
        amount=Money(row["amount"], Currency(row["currency"])),
        description=row["description"],
        allowed_methods=None if methods is None else tuple(PaymentMethodType(m) for m in methods),
        metadata=row["metadata"],
        active=row["active"],
        expires_at=row["expires_at"],
        created_at=row["created_at"],
    )
