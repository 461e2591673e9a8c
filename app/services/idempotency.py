"""Idempotency keys on mutations (contract section 3).

The same key with the same input returns the first result for 7 days (the
longest an OXXO voucher lives, so a retried checkout gets the same reference);
the same key with other input is IDEMPOTENCY_CONFLICT. Only results that changed
something are stored: a mutation that failed changed nothing and may be retried.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.repositories import idempotency as rows
from app.domain.errors import IdempotencyConflict, InvalidInput
from app.services.results import MutationResult

RETENTION = timedelta(days=7)
MAX_KEY_LENGTH = 255


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"idempotencyKey must be 1 to {MAX_KEY_LENGTH} printable characters",
            ("input", "idempotencyKey"),
        )
    return key


def request_hash(operation: str, request: dict[str, Any]) -> str:
    canonical = json.dumps([operation, request], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def replay(
    conn: AsyncConnection,
    *,
    merchant_id: str,
    operation: str,
    key: str | None,
    digest: str,
    now: datetime,
) -> MutationResult | None:
    """The stored first result for this key, None if there is none; conflict if it differs."""
    if key is None:
        return None
    stored = await rows.find(conn, merchant_id, operation, key, now)
    if stored is None:
        return None
    if stored.request_hash != digest:
        raise IdempotencyConflict(
            f"idempotencyKey {key!r} was already used with different input",
            ("input", "idempotencyKey"),
        )
    return MutationResult.from_dict(stored.response)


async def remember(
    conn: AsyncConnection,
    *,
    merchant_id: str,
    operation: str,
    key: str | None,
    digest: str,
    result: MutationResult,
    now: datetime,
) -> None:
    if key is None:
        return
    await rows.store(
        conn,
        merchant_id=merchant_id,
        operation=operation,
        key=key,
        request_hash=digest,
        intent_id=result.intent.id if result.intent else None,
        response=result.to_dict(),
        now=now,
        expires_at=now + RETENTION,
    )
