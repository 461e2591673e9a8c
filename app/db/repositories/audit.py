"""The append-only audit trail: insert and read, never update or delete.

Events are chained per merchant (app/domain/audit_chain.py). `append` only stages
a transaction's events; the transaction inserts them once, as its last work
(`Database.before_commit`), in merchant order:

- PostgreSQL: unlinked, their canonical content split around the position they
  do not know yet; the server links each one in as the transaction commits
  (app/db/audit_link.py), so the merchant's head is locked only for the commit
  itself, not across round trips from here.
- SQLite (one writer at a time): linked here, from the head this connection last
  moved (compare-and-set), or from the head read afresh when another process on
  the same file moved it meanwhile.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import Database
from app.db.tables import AuditChainHead, AuditEvent
from app.db.write_behind import write_behind
from app.domain import audit_chain
from app.domain.audit_chain import GENESIS, ChainedEvent
from app.domain.records import AuditRecord

T = AuditEvent.__table__
H = AuditChainHead.__table__
_INSERT = insert(T)
_HEAD = select(H.c.seq, H.c.hash).where(H.c.merchant_id == bindparam("m"))
_MOVE_HEAD = (
    update(H)
    .where(H.c.merchant_id == bindparam("m"))
    .values(seq=bindparam("seq"), hash=bindparam("hash"))
)
_MOVE_KNOWN_HEAD = _MOVE_HEAD.where(
    H.c.seq == bindparam("old_seq"), H.c.hash == bindparam("old_hash")
)
_NEW_HEAD_ROW = (
    sqlite.insert(H)
    .values(merchant_id=bindparam("m"), seq=0, hash=GENESIS)
    .on_conflict_do_nothing(index_elements=[H.c.merchant_id])
)
_KNOWN_HEADS = "cobro.audit_heads"
_KNOWN_HEADS_MAX = 10_000
_HOOK = "audit_chain"
# Rows read at a time when walking a chain (verify, export).
PAGE = 1_000


@dataclass(frozen=True, slots=True)
class NewAuditEvent:
    type: str
    status: str | None = None
    provider: str | None = None
    data: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ChainHead:
    merchant_id: str
    seq: int
    hash: str


class _Staged:
    """A transaction's audit events, waiting for its end to be chained."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        # merchant id -> the events' rows, in the order they were appended
        self.rows: dict[str, list[dict[str, Any]]] = {}

    async def flush(self, conn: AsyncConnection) -> None:
        # Heads are locked in merchant order (the trigger links rows in insertion
        # order), so two transactions that write for the same merchants wait for
        # each other rather than deadlock.
        merchants = sorted(self.rows)
        if conn.dialect.name == "postgresql":
            # Written behind (app/db/write_behind.py): with the transaction's other
            # such writes, as one statement, in this order.
            await write_behind(
                conn, _INSERT, [_awaiting_link(row) for m in merchants for row in self.rows[m]]
            )
        else:
            for merchant_id in merchants:
                await _chain(conn, merchant_id, self.rows[merchant_id])
        self.rows.clear()


async def append(
    conn: AsyncConnection,
    *,
    intent_id: str,
    merchant_id: str,
    events: list[NewAuditEvent],
    at: datetime,
) -> None:
    """Stage `events` in the caller's transaction; they are chained and inserted
    when it is about to commit, and vanish with it if it fails."""
    if not events:
        return
    staged = Database.before_commit(conn, _HOOK, _Staged)
    staged.rows.setdefault(merchant_id, []).extend(
        {
            "intent_id": intent_id,
            "merchant_id": merchant_id,
            "type": e.type,
            "status": e.status,
            "provider": e.provider,
            "data": audit_chain.as_stored(e.data),
            "at": at,
        }
        for e in events
    )


async def _chain(conn: AsyncConnection, merchant_id: str, rows: list[dict[str, Any]]) -> None:
    """SQLite: one writer connection per process, which remembers each head it
    moved. Moving it only from there (compare-and-set) spares reading it; another
    process on the same file that moved it meanwhile makes the update miss, and
    the head is read afresh."""
    known: dict[str, tuple[int, str]] = conn.info.setdefault(_KNOWN_HEADS, {})
    head = known.get(merchant_id)
    moved = False
    if head is not None:
        seq, last = _link(merchant_id, rows, *head)
        result = await conn.execute(
            _MOVE_KNOWN_HEAD,
            {"m": merchant_id, "seq": seq, "hash": last, "old_seq": head[0], "old_hash": head[1]},
        )
        moved = result.rowcount == 1
    if not moved:
        seq, last = _link(merchant_id, rows, *await _head(conn, merchant_id))
        await conn.execute(_MOVE_HEAD, {"m": merchant_id, "seq": seq, "hash": last})
    await conn.execute(_INSERT, rows)
    # Wrong if this transaction rolls back after all: then the next compare-and-set
    # misses and the head is read again.
    if len(known) >= _KNOWN_HEADS_MAX:
        known.clear()
    known[merchant_id] = (seq, last)


async def _head(conn: AsyncConnection, merchant_id: str) -> tuple[int, str]:
    head = (await conn.execute(_HEAD, {"m": merchant_id})).first()
    if head is None:
        await conn.execute(_NEW_HEAD_ROW, {"m": merchant_id})
        head = (await conn.execute(_HEAD, {"m": merchant_id})).first()
        assert head is not None
    return head[0], head[1]


def _awaiting_link(row: dict[str, Any]) -> dict[str, Any]:
    row["link_prefix"], row["link_suffix"] = audit_chain.canonical_around_seq(
        merchant_id=row["merchant_id"],
        intent_id=row["intent_id"],
        type=row["type"],
        status=row["status"],
        provider=row["provider"],
        at=row["at"],
        data=row["data"],
    )
    return row


def _link(merchant_id: str, rows: list[dict[str, Any]], seq: int, prev: str) -> tuple[int, str]:
    """Number and hash `rows` on from (seq, prev); the new head."""
    for row in rows:
        seq += 1
        row["seq"] = seq
        row["prev_hash"] = prev
        prev = row["hash"] = audit_chain.link(
            prev,
            audit_chain.canonical(
                merchant_id=merchant_id,
                intent_id=row["intent_id"],
                seq=seq,
                type=row["type"],
                status=row["status"],
                provider=row["provider"],
                at=row["at"],
                data=row["data"],
            ),
        )
    return seq, prev


async def for_intents(conn: AsyncConnection, intent_ids: list[str]) -> dict[str, list[AuditRecord]]:
    """Every intent's events, oldest first, in one query."""
    rows = await conn.execute(
        select(
            T.c.id, T.c.intent_id, T.c.type, T.c.status, T.c.provider, T.c.at, T.c.data, T.c.hash
        )
        .where(T.c.intent_id.in_(intent_ids))
        .order_by(T.c.id)
    )
    found: dict[str, list[AuditRecord]] = defaultdict(list)
    for row in rows:
        found[row.intent_id].append(AuditRecord(*row))
    return found


# -- reading whole chains: `cobro audit verify` and `cobro audit export` -------------


async def heads(conn: AsyncConnection, merchant_id: str | None = None) -> list[ChainHead]:
    query = select(H.c.merchant_id, H.c.seq, H.c.hash).order_by(H.c.merchant_id)
    if merchant_id is not None:
        query = query.where(H.c.merchant_id == merchant_id)
    return [ChainHead(*row) for row in await conn.execute(query)]


async def merchants_with_events(conn: AsyncConnection) -> list[str]:
    """Every merchant that has an event or a head, so an event whose head was
    removed, or a head whose events were, is found too."""
    with_events = select(T.c.merchant_id).distinct()
    with_heads = select(H.c.merchant_id)
    rows = await conn.execute(with_events.union(with_heads))
    return sorted(row[0] for row in rows)


_CHAIN_COLUMNS = (
    T.c.id,
    T.c.merchant_id,
    T.c.intent_id,
    T.c.seq,
    T.c.type,
    T.c.status,
    T.c.provider,
    T.c.at,
    T.c.data,
    T.c.prev_hash,
    T.c.hash,
)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An audit row as stored, for walking the chain."""

    id: int
    event: ChainedEvent


async def walk(
    conn: AsyncConnection,
    merchant_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AsyncIterator[StoredEvent]:
    """The merchant's events in chain order (by `seq`, then id), a page at a time;
    only those with `since <= at < until` when given."""
    after: tuple[int, int] = (-(2**62), 0)
    while True:
        query = (
            select(*_CHAIN_COLUMNS)
            .where(
                T.c.merchant_id == merchant_id,
                (T.c.seq > after[0]) | ((T.c.seq == after[0]) & (T.c.id > after[1])),
            )
            .order_by(T.c.seq, T.c.id)
            .limit(PAGE)
        )
        if since is not None:
            query = query.where(T.c.at >= since)
        if until is not None:
            query = query.where(T.c.at < until)
        rows = (await conn.execute(query)).all()
        for row in rows:
            yield StoredEvent(
                row.id,
                ChainedEvent(
                    merchant_id=row.merchant_id,
                    intent_id=row.intent_id,
                    seq=row.seq,
                    type=row.type,
                    status=row.status,
                    provider=row.provider,
                    at=row.at,
                    data=row.data,
                    prev_hash=row.prev_hash,
                    hash=row.hash,
                ),
            )
        if len(rows) < PAGE:
            return
        after = (rows[-1].seq, rows[-1].id)
