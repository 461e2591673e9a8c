"""Merchant webhook endpoints, the deliveries owed to them, and each attempt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, bindparam, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.dialect import insert_ignore
from app.db.repositories.claims import claim_ids
from app.db.tables import DeliveryAttempt, WebhookDelivery, WebhookEndpoint
from app.domain.records import Delivery, Endpoint, RetiringSecret

E = WebhookEndpoint.__table__
D = WebhookDelivery.__table__
A = DeliveryAttempt.__table__


_ENDPOINT = (
    E.c.id,
    E.c.merchant_id,
    E.c.url,
    E.c.events,
    E.c.secret,
    E.c.enabled,
    E.c.created_at,
    E.c.retiring_secrets,
)
_DELIVERY = (
    D.c.id,
    D.c.endpoint_id,
    D.c.event_id,
    D.c.event_type,
    D.c.intent_id,
    D.c.intent_version,
    D.c.body,
    D.c.status,
    D.c.attempts,
    D.c.last_status_code,
    D.c.created_at,
    D.c.next_attempt_at,
    D.c.delivered_at,
)


async def insert_endpoint(conn: AsyncConnection, endpoint: Endpoint) -> None:
    await conn.execute(
        insert(E).values(
            id=endpoint.id,
            merchant_id=endpoint.merchant_id,
            url=endpoint.url,
            events=endpoint.events,
            secret=endpoint.secret,
            enabled=endpoint.enabled,
            created_at=endpoint.created_at,
        )
    )


_ENDPOINTS_OF = (
    select(*_ENDPOINT)
    .where(
        E.c.merchant_id.in_(bindparam("merchant_ids", expanding=True)),
        E.c.deleted_at.is_(None),
    )
    .order_by(E.c.created_at)
)


async def endpoints_of(conn: AsyncConnection, merchant_ids: list[str]) -> list[Endpoint]:
    rows = await conn.execute(_ENDPOINTS_OF, {"merchant_ids": merchant_ids})
    return [_endpoint(row) for row in rows]


async def endpoints_by_id(conn: AsyncConnection, endpoint_ids: list[str]) -> dict[str, Endpoint]:
    rows = await conn.execute(
        select(*_ENDPOINT).where(E.c.id.in_(endpoint_ids), E.c.deleted_at.is_(None))
    )
    return {row.id: _endpoint(row) for row in rows}


async def endpoint(
    conn: AsyncConnection, endpoint_id: str, *, for_update: bool = False
) -> Endpoint | None:
    query = select(*_ENDPOINT).where(E.c.id == endpoint_id, E.c.deleted_at.is_(None))
    row = (await conn.execute(query.with_for_update() if for_update else query)).first()
    return _endpoint(row) if row else None


def _endpoint(row: Row[*tuple[Any, ...]]) -> Endpoint:
    return Endpoint(
        row.id,
        row.merchant_id,
        row.url,
        row.events,
        row.secret,
        row.enabled,
        row.created_at,
        retiring=tuple(
            RetiringSecret(r["secret"], datetime.fromisoformat(r["expires_at"]))
            for r in row.retiring_secrets or ()
        ),
    )


def _delivery(row: Row[*tuple[Any, ...]]) -> Delivery:
    # A row of the 13 columns of _DELIVERY, in Delivery's order. (mypy cannot spread a
    # row wider than select()'s typed overloads straight into a call.)
    return Delivery(*row)


async def set_secrets(
    conn: AsyncConnection, endpoint_id: str, secret: str, retiring: tuple[RetiringSecret, ...]
) -> None:
    """The endpoint's new signing secret, and the old ones still signing meanwhile."""
    await conn.execute(
        update(E)
        .where(E.c.id == endpoint_id)
        .values(
            secret=secret,
            retiring_secrets=[
                {"secret": r.secret, "expires_at": r.expires_at.isoformat()} for r in retiring
            ]
            or None,
        )
    )


async def delete_endpoint(conn: AsyncConnection, endpoint_id: str, now: datetime) -> None:
    await conn.execute(update(E).where(E.c.id == endpoint_id).values(deleted_at=now, enabled=False))
    # Nothing more goes to a deleted endpoint.
    await conn.execute(
        update(D)
        .where(D.c.endpoint_id == endpoint_id, D.c.status == "pending")
        .values(status="canceled", next_attempt_at=None)
    )


async def enqueue(conn: AsyncConnection, rows: list[dict[str, object]]) -> None:
    if rows:
        await conn.execute(insert_ignore(conn, D, ["endpoint_id", "event_id"]), rows)


async def claim_due(
    conn: AsyncConnection, *, now: datetime, lease_until: datetime, limit: int
) -> list[Delivery]:
    """Due deliveries, leased to us; never one whose earlier version for the same
    endpoint and intent is still owed (events of an intent go in version order)."""
    earlier = D.alias("earlier")
    blocked = exists().where(
        and_(
            earlier.c.endpoint_id == D.c.endpoint_id,
            earlier.c.intent_id == D.c.intent_id,
            earlier.c.intent_version < D.c.intent_version,
            earlier.c.status == "pending",
        )
    )
    candidates = (
        select(D.c.id)
        .where(
            D.c.status == "pending",
            D.c.next_attempt_at <= now,
            (D.c.lease_until.is_(None)) | (D.c.lease_until < now),
            ~blocked,
        )
        .order_by(D.c.next_attempt_at)
        .limit(limit)
    )
    ids = await claim_ids(conn, candidates, D, lease_until=lease_until)
    if not ids:
        return []
    rows = await conn.execute(
        select(*_DELIVERY).where(D.c.id.in_(ids)).order_by(D.c.next_attempt_at)
    )
    return [_delivery(row) for row in rows]


async def record_attempt(
    conn: AsyncConnection,
    delivery: Delivery,
    *,
    lease: datetime,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    now: datetime,
    outcome: str,
    next_attempt_at: datetime | None,
) -> bool:
    """Record one try and the delivery's new state, if our lease on it still holds
    (a task that outlived its lease must not overwrite a newer attempt's outcome)."""
    result = await conn.execute(
        update(D)
        .where(D.c.id == delivery.id, D.c.lease_until == lease)
        .values(
            attempts=D.c.attempts + 1,
            status=outcome,
            last_status_code=status_code,
            last_error=error,
            next_attempt_at=next_attempt_at,
            delivered_at=now if outcome == "delivered" else None,
            lease_until=None,
        )
    )
    await conn.execute(
        insert(A).values(
            delivery_id=delivery.id,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
            at=now,
        )
    )
    return bool(result.rowcount)


async def deliveries_of(conn: AsyncConnection, endpoint_id: str, limit: int) -> list[Delivery]:
    rows = await conn.execute(
        select(*_DELIVERY)
        .where(D.c.endpoint_id == endpoint_id)
        .order_by(D.c.created_at.desc(), D.c.intent_version.desc())
        .limit(limit)
    )
    return [_delivery(row) for row in rows]


_PENDING = select(func.count(), func.min(D.c.created_at)).where(D.c.status == "pending")


async def pending(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """How many deliveries are still owed, and when the oldest was queued (for
    /metrics; the (status, next_attempt_at) index finds them)."""
    count, oldest = (await conn.execute(_PENDING)).one()
    return int(count), oldest
