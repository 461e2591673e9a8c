"""Idempotency keys on mutations (contract section 3).

The same key with the same input returns the first result for 7 days (the
longest an OXXO voucher lives, so a retried checkout gets the same reference); the
same key with other input is IDEMPOTENCY_CONFLICT. The key is claimed in the same
transaction that starts the work, so two requests with one key never both run: the
second gets the first's result, or, while the first is in flight,
IDEMPOTENCY_IN_PROGRESS: a code of its own (Stripe answers such a retry with a 409
of its own), because a client must retry that one and must never retry a conflict.
A request that fails having changed nothing releases its claim.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.repositories import idempotency as rows
from app.domain.errors import IdempotencyConflict, IdempotencyInProgress, InvalidInput
from app.services.results import MutationResult

RETENTION = timedelta(days=7)
MAX_KEY_LENGTH = 255
# A request holding its key this long is presumed dead; a retry may take over.
IN_FLIGHT_LIMIT = timedelta(seconds=90)
FIELD = ("input", "idempotencyKey")


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"idempotencyKey must be 1 to {MAX_KEY_LENGTH} printable characters", FIELD
        )
    return key


def request_hash(operation: str, request: dict[str, Any]) -> str:
    canonical = json.dumps([operation, request], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Keyed:
    """One mutation's key: who, which operation, the key, and what was asked."""

    merchant_id: str
    operation: str
    key: str | None
    digest: str


def keyed(
    merchant_id: str, operation: str, key: str | None, request: Callable[[], dict[str, Any]]
) -> Keyed:
    """The key for this mutation; `request()` is hashed only when there is a key to
    compare retries under (a request without one never looks at the digest)."""
    digest = request_hash(operation, request()) if key is not None else ""
    return Keyed(merchant_id, operation, key, digest)


async def replay(conn: AsyncConnection, keyed: Keyed, now: datetime) -> MutationResult | None:
    """The first result for this key if that request finished; None if there is none
    (or it is still running: `begin` decides what to do about that)."""
    stored = await replay_stored(conn, keyed, now)
    return None if stored is None else MutationResult.from_dict(stored)


async def replay_stored(
    conn: AsyncConnection, keyed: Keyed, now: datetime
) -> dict[str, Any] | None:
    """`replay` for any operation: the first result as it was stored."""
    if keyed.key is None:
        return None
    stored = await rows.find(conn, keyed.merchant_id, keyed.operation, keyed.key, now)
    if stored is None or not stored.finished:
        return None
    _same_request(stored, keyed)
    return stored.response


async def begin(
    conn: AsyncConnection,
    keyed: Keyed,
    now: datetime,
    in_flight_limit: timedelta = IN_FLIGHT_LIMIT,
) -> MutationResult | None:
    """Claim the key in the caller's transaction. Returns the first result when that
    request already finished; raises IdempotencyConflict when the input differs,
    IdempotencyInProgress when the same request is still running; returns None when
    this request may go ahead.

    A request that lost its database halfway could not release its claim; past
    `in_flight_limit` (for a confirmation, its lease on the intent) a retry takes
    over and finds out what the first one did."""
    stored = await begin_stored(conn, keyed, now, in_flight_limit)
    return None if stored is None else MutationResult.from_dict(stored)


async def begin_stored(
    conn: AsyncConnection,
    keyed: Keyed,
    now: datetime,
    in_flight_limit: timedelta = IN_FLIGHT_LIMIT,
) -> dict[str, Any] | None:
    """`begin` for any operation: the first result as it was stored, or None."""
    if keyed.key is None:
        return None
    claimed = await rows.claim(
        conn,
        merchant_id=keyed.merchant_id,
        operation=keyed.operation,
        key=keyed.key,
        request_hash=keyed.digest,
        now=now,
        expires_at=now + RETENTION,
    )
    if claimed:
        return None
    stored = await rows.find(conn, keyed.merchant_id, keyed.operation, keyed.key, now)
    assert stored is not None
    _same_request(stored, keyed)
    if stored.finished:
        return stored.response
    if now - stored.created_at < in_flight_limit:
        raise IdempotencyInProgress(
            f"a request with idempotencyKey {keyed.key!r} is still in progress; "
            "retry shortly with the same key",
            FIELD,
        )
    await rows.take_over(conn, keyed.merchant_id, keyed.operation, keyed.key, now)
    return None


async def finish(
    conn: AsyncConnection, keyed: Keyed, result: MutationResult, now: datetime
) -> None:
    subject = result.intent.id if result.intent else None
    await finish_stored(conn, keyed, result.to_dict(), subject, now)


async def finish_stored(
    conn: AsyncConnection,
    keyed: Keyed,
    response: dict[str, Any],
    subject_id: str | None,
    now: datetime,
) -> None:
    """`finish` for any operation: store `response` for the key's retries."""
    if keyed.key is None:
        return
    await rows.finish(
        conn,
        merchant_id=keyed.merchant_id,
        operation=keyed.operation,
        key=keyed.key,
        intent_id=subject_id,
        response=response,
        now=now,
    )


async def release(conn: AsyncConnection, keyed: Keyed, claimed_at: datetime | None = None) -> None:
    """Give the key's unfinished claim back (`claimed_at`: only the one made then)."""
    if keyed.key is not None:
        await rows.release(conn, keyed.merchant_id, keyed.operation, keyed.key, claimed_at)


def _same_request(stored: rows.StoredKey, keyed: Keyed) -> None:
    if stored.request_hash != keyed.digest:
        raise IdempotencyConflict(
            f"idempotencyKey {keyed.key!r} was already used with different input", FIELD
        )
