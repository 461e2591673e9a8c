"""Payment intent rows <-> domain `PaymentIntent` values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    UniqueConstraint,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Update

from app.db.dialect import is_deadlock, key_taken, refused_null
from app.db.repositories import inbox
from app.db.repositories.claims import claim_ids
from app.db.tables import Outbox, PaymentIntentRow, ProviderHandle, ProviderPayment
from app.db.write_behind import write_behind
from app.domain.codec import RULES
from app.domain.intents import PaymentIntent, PaymentIntentStatus
from app.domain.plain import Codec, Times

T = PaymentIntentRow.__table__
_COLUMNS = [c for c in T.c if c.name not in ("lease_until", "checked_at")]
# Built once: the hottest read (paymentIntent by id) skips building and keying a
# new statement on every request.
_GET = select(*_COLUMNS).where(T.c.id == bindparam("id"))
_GET_FOR_UPDATE = _GET.with_for_update()
_GET_FOR_UPDATE_SEEING_INBOX = (
    select(*_COLUMNS, inbox.ANY_UNMATCHED.label("inbox_waiting"))
    .where(T.c.id == bindparam("id"))
    .with_for_update(of=T)
)
# The intent a PSP's event is about, read FOR UPDATE in one statement: by the handle
# recorded for the payment (provider_handles), else by the intent id the PSP echoed
# back (`hint`: a payment whose creating call timed out has no handle).
_H = ProviderHandle.__table__
_BY_HANDLE = (
    select(_H.c.intent_id)
    .where(
        _H.c.provider == bindparam("provider"),
        _H.c.handle.in_(bindparam("handles", expanding=True)),
    )
    .limit(1)
    .scalar_subquery()
)
_GET_FOR_UPDATE_BY_HANDLE = (
    select(*_COLUMNS)
    .where(T.c.id == func.coalesce(_BY_HANDLE, bindparam("hint", type_=T.c.id.type)))
    .with_for_update(of=T)
)
_INSERT = insert(T)
# The version this writer read is still the row's.
_UNMOVED = T.c.version == bindparam("b_version")
# A new version, only over the one we read (another writer would have bumped it).
_SAVE = update(T).where(T.c.id == bindparam("b_id"), _UNMOVED)


def _guarded(condition: Any) -> Update:
    """A new version written behind, with no row count to check: where `condition`
    does not hold it writes NULL, which the column refuses, so the transaction fails
    instead of overwriting another writer's version."""
    next_version = bindparam("b_next", type_=T.c.version.type)
    return (
        update(T)
        .where(T.c.id == bindparam("b_id"))
        .values(version=case((condition, next_version), else_=null()))
    )


# Over a row this transaction read FOR UPDATE, where the version cannot have moved
# (the guard catches a caller that did not lock).
_SAVE_LOCKED = _guarded(_UNMOVED)
# Over a row read before this transaction (a confirmation's, whose lease keeps other
# confirmations off it), refused as well while the webhook inbox holds an event for
# the payment's handles: either way the transaction fails (`moved_meanwhile`) and
# the caller reads and locks.
_SAVE_UNLESS_WAITING = _guarded(
    and_(_UNMOVED, ~exists().where(inbox.waiting("b_inbox_provider", "b_inbox_handles")))
)
_ATTEMPTS = ProviderPayment.__table__
# The lease is free to whoever read the intent at `b_version`: nobody holds it, or
# the holder's ran out.
_LEASE_FREE = and_(
    _UNMOVED,
    or_(T.c.lease_until.is_(None), T.c.lease_until < bindparam("b_now")),
)
# No attempt on the intent awaits its answer (attempts are written only under the
# lease). Its own name: kept statements cannot plan one parameter used twice.
_NONE_PENDING = ~exists().where(
    _ATTEMPTS.c.intent_id == bindparam("b_attempts_of"), _ATTEMPTS.c.status == "pending"
)
_TAKE_LEASE = (
    update(T)
    .where(T.c.id == bindparam("b_id"), _LEASE_FREE)
    .values(lease_until=bindparam("b_until"))
)
# The lease, taken only when no attempt on the intent awaits its answer (a fresh
# confirmation learns that it has nothing to replay in the statement that leases),
# written behind with the work it guards (its first attempt), as one statement: when
# it cannot be taken (the version moved, someone holds it, an attempt awaits its
# answer) the version comes out NULL, the column refuses it and nothing of the
# statement is written (`moved_meanwhile`).
_LEASE_UNLESS_BUSY = (
    update(T)
    .where(T.c.id == bindparam("b_id"))
    .values(
        lease_until=bindparam("b_until", type_=T.c.lease_until.type),
        version=case((and_(_LEASE_FREE, _NONE_PENDING), T.c.version), else_=null()),
    )
)
# The outbox's one row per (intent, version).
_OUTBOX_VERSION = next(
    c
    for c in Outbox.__table__.constraints
    if isinstance(c, UniqueConstraint)
    and [col.name for col in c.columns] == ["intent_id", "version"]
)


class ConcurrentUpdate(Exception):
    """The row changed under us (another process moved the intent first)."""


# A row is the intent's plain form with datetimes as they are: every column but the
# lease and the reconciliation mark is a field of the dataclass, by the same name
# (tests/domain/test_plain.py holds the table to that).
_ROW: Codec[PaymentIntent] = Codec(PaymentIntent, rules=RULES, times=Times.NATIVE, complete=True)
_values = _ROW.to_plain
from_row = _ROW.from_plain
# Fixed for the intent's life, so never in an update.
_UNCHANGING = ("id", "merchant_id", "created_at", "client_secret")


async def insert_intent(conn: AsyncConnection, intent: PaymentIntent) -> None:
    """Written behind (app/db/write_behind.py): its id is new, nothing can refuse it."""
    await write_behind(conn, _INSERT, _values(intent))


async def get(
    conn: AsyncConnection, intent_id: str, *, for_update: bool = False
) -> PaymentIntent | None:
    statement = _GET_FOR_UPDATE if for_update else _GET
    row = (await conn.execute(statement, {"id": intent_id})).mappings().first()
    return from_row(row) if row else None


async def get_locked_by_handle(
    conn: AsyncConnection, provider: str, handles: list[str], hint: str | None
) -> PaymentIntent | None:
    """The intent a PSP's event names, by one of its `handles` for the payment, else
    by `hint` (the intent id it echoed back), read FOR UPDATE: a round trip fewer
    than finding the handle first."""
    values = {"provider": provider, "handles": [h for h in handles if h], "hint": hint}
    row = (await conn.execute(_GET_FOR_UPDATE_BY_HANDLE, values)).mappings().first()
    return from_row(row) if row else None


async def get_locked_seeing(
    conn: AsyncConnection, intent_id: str, provider: str, handles: list[str]
) -> tuple[PaymentIntent | None, bool]:
    """The intent read FOR UPDATE, and whether the webhook inbox holds an event for
    one of `handles` that arrived before they were known (inbox.ANY_UNMATCHED), in
    one statement: a confirmation settling its intent asks both."""
    if not handles:
        return await get(conn, intent_id, for_update=True), False
    values = {"id": intent_id, "provider": provider, "handles": handles}
    row = (await conn.execute(_GET_FOR_UPDATE_SEEING_INBOX, values)).mappings().first()
    if row is None:
        return None, False
    return from_row(row), bool(row["inbox_waiting"])


async def get_many(conn: AsyncConnection, intent_ids: list[str]) -> dict[str, PaymentIntent]:
    rows = (await conn.execute(select(*_COLUMNS).where(T.c.id.in_(intent_ids)))).mappings()
    return {row["id"]: from_row(row) for row in rows}


async def save(
    conn: AsyncConnection,
    intent: PaymentIntent,
    *,
    previous_version: int,
    locked: bool = False,
    unless_waiting: tuple[str, list[str]] | None = None,
) -> None:
    """Write a new version; refuse if someone else wrote one since we read it.
    `locked`: the caller read the row FOR UPDATE in this transaction (`get`), so
    nobody can have: the write goes behind (app/db/write_behind.py), a round trip
    fewer on PostgreSQL. `unless_waiting` (a PSP and handles): the caller read it
    before the transaction; written behind too, and the transaction fails
    (`moved_meanwhile`) if the version moved or an event for those handles waits
    in the webhook inbox."""
    values = _values(intent)
    for column in _UNCHANGING:
        del values[column]
    values |= {"lease_until": None, "b_id": intent.id, "b_version": previous_version}
    if unless_waiting is not None:
        values["b_next"] = values.pop("version")
        values["b_inbox_provider"], values["b_inbox_handles"] = unless_waiting
        await write_behind(conn, _SAVE_UNLESS_WAITING, values)
        return
    if locked:
        values["b_next"] = values.pop("version")
        await write_behind(conn, _SAVE_LOCKED, values)
        return
    result = await conn.execute(_SAVE, values)
    if result.rowcount != 1:
        raise ConcurrentUpdate(intent.id)


def moved_meanwhile(error: BaseException) -> bool:
    """Whether `error` is a guarded save's refusal (`_SAVE_LOCKED`,
    `_SAVE_UNLESS_WAITING`, `_LEASE_UNLESS_BUSY`): the version it would write came out
    NULL, which the column refuses; or, for a save sent as one statement with its
    outbox row, that row's version was taken, by the writer that moved the intent
    (PostgreSQL runs the parts of one statement in no set order, so that refusal may
    come first); or PostgreSQL ended a deadlock with that writer by aborting ours
    (its outbox row waited for ours while ours waited for the intent it held)."""
    return (
        refused_null(error, T.c.version) or key_taken(error, _OUTBOX_VERSION) or is_deadlock(error)
    )


async def take_lease(
    conn: AsyncConnection,
    intent_id: str,
    version: int,
    now: datetime,
    until: datetime,
) -> bool:
    """Hold the intent until `until` for our work on it; False if someone else holds it
    (or it changed since we read it at `version`)."""
    parameters = {"b_id": intent_id, "b_version": version, "b_now": now, "b_until": until}
    result = await conn.execute(_TAKE_LEASE, parameters)
    return result.rowcount == 1


async def lease_unless_busy(
    conn: AsyncConnection, intent_id: str, version: int, now: datetime, until: datetime
) -> None:
    """`take_lease`, also refused while an attempt on the intent awaits its answer
    (attempts are written only under the lease, so none can appear while we hold
    it), written behind with no answer: when the lease cannot be taken the
    transaction fails (`moved_meanwhile`), and a block in steps (Database.steps)
    writes nothing of what it kept with it."""
    parameters = {
        "b_id": intent_id,
        "b_version": version,
        "b_now": now,
        "b_until": until,
        "b_attempts_of": intent_id,
    }
    await write_behind(conn, _LEASE_UNLESS_BUSY, parameters)


async def release_lease(conn: AsyncConnection, intent_id: str, until: datetime) -> None:
    """Give the lease back, if it is still the one we took (it may have run out and
    gone to someone else)."""
    await conn.execute(
        update(T).where(T.c.id == intent_id, T.c.lease_until == until).values(lease_until=None)
    )


async def page(
    conn: AsyncConnection,
    merchant_id: str,
    *,
    limit: int,
    after: tuple[datetime, str] | None,
    status: PaymentIntentStatus | None,
) -> list[PaymentIntent]:
    """Newest first; `after` is the (created_at, id) of the last row already seen."""
    statement = select(*_COLUMNS).where(T.c.merchant_id == merchant_id)
    if status is not None:
        statement = statement.where(T.c.status == status.value)
    if after is not None:
        created_at, intent_id = after
        statement = statement.where(
            or_(
                T.c.created_at < created_at,
                and_(T.c.created_at == created_at, T.c.id < intent_id),
            )
        )
    statement = statement.order_by(T.c.created_at.desc(), T.c.id.desc()).limit(limit)
    return [from_row(row) for row in (await conn.execute(statement)).mappings()]


async def claim_due(
    conn: AsyncConnection,
    *,
    statuses: list[PaymentIntentStatus],
    due_before: datetime,
    now: datetime,
    lease_until: datetime,
    limit: int,
    column: str = "expires_at",
) -> list[PaymentIntent]:
    """Intents in `statuses` whose `column` is at or before `due_before`, leased to us
    (skipping any another process holds), oldest first."""
    due = getattr(T.c, column)
    candidates = (
        select(T.c.id)
        .where(
            T.c.status.in_([s.value for s in statuses]),
            due.is_not(None),
            due <= due_before,
            or_(T.c.lease_until.is_(None), T.c.lease_until < now),
        )
        .order_by(due)
        .limit(limit)
    )
    ids = await claim_ids(conn, candidates, T, lease_until=lease_until)
    if not ids:
        return []
    rows = await conn.execute(select(*_COLUMNS).where(T.c.id.in_(ids)).order_by(due))
    return [from_row(row) for row in rows.mappings()]


async def claim_unsettled(
    conn: AsyncConnection,
    *,
    quiet_since: datetime,
    checked_before: datetime,
    now: datetime,
    limit: int,
) -> list[PaymentIntent]:
    """Intents waiting on a PSP (REQUIRES_ACTION, PROCESSING) that have heard nothing
    since `quiet_since` and were not checked since `checked_before`; marked checked."""
    waiting = [PaymentIntentStatus.REQUIRES_ACTION.value, PaymentIntentStatus.PROCESSING.value]
    candidates = (
        select(T.c.id)
        .where(
            T.c.status.in_(waiting),
            T.c.provider.is_not(None),
            T.c.updated_at <= quiet_since,
            or_(T.c.checked_at.is_(None), T.c.checked_at <= checked_before),
            or_(T.c.lease_until.is_(None), T.c.lease_until < now),
        )
        .order_by(T.c.updated_at)
        .limit(limit)
    )
    ids = await claim_ids(conn, candidates, T, checked_at=now)
    if not ids:
        return []
    rows = await conn.execute(select(*_COLUMNS).where(T.c.id.in_(ids)))
    return [from_row(row) for row in rows.mappings()]
