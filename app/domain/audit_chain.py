"""The audit chain's links: what an event's `hash` is made of (contract section 10).

Every audit event of a merchant has a position, `seq` (1, 2, 3, ... with no gap),
and a `hash`:

    hash = SHA-256( prev_hash || "\\n" || canonical(event) ), as 64 lowercase hex digits

where `prev_hash` is the hash of the merchant's event at `seq - 1` (for the first
event, GENESIS: 64 zeros), and `canonical(event)` is the UTF-8 JSON object

    {"at": "2026-01-31T12:00:00.123456Z", "data": {...} | null, "intent_id": "pi_...",
     "merchant_id": "acct_...", "provider": "stripe" | null, "seq": 7,
     "status": "SUCCEEDED" | null, "type": "intent.succeeded"}

with keys sorted at every level, no whitespace, non-ASCII characters as themselves
(not escaped), integers as integers (money is always integer minor units), and
`at` in UTC with microseconds and a `Z`. `data` is the JSON the database holds
(so non-string keys are already strings). The event's database id is not part of
it (the position is `seq`), so the link is computed before the row is inserted.

A regulator can recompute every link from `cobro audit export`'s lines alone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS = "0" * 64
HASH_LENGTH = 64


@dataclass(frozen=True, slots=True)
class ChainedEvent:
    """An audit event as the chain sees it: its content, position and link."""

    merchant_id: str
    intent_id: str
    seq: int
    type: str
    status: str | None
    provider: str | None
    at: datetime
    data: dict[str, Any] | None
    prev_hash: str
    hash: str


def utc_text(at: datetime) -> str:
    """`2026-01-31T12:00:00.123456Z` (isoformat: a third of strftime's cost)."""
    offset = at.utcoffset()
    if offset is None:
        raise ValueError("naive datetime: audit times are aware UTC")
    if offset:
        at = at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")[:-6] + "Z"


def canonical(
    *,
    merchant_id: str,
    intent_id: str,
    seq: int,
    type: str,
    status: str | None,
    provider: str | None,
    at: datetime,
    data: dict[str, Any] | None,
) -> bytes:
    content = {
        "at": utc_text(at),
        "data": data,
        "intent_id": intent_id,
        "merchant_id": merchant_id,
        "provider": provider,
        "seq": seq,
        "status": status,
        "type": type,
    }
    try:
        return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits: the standard library writes it alike
        return json.dumps(
            content, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()


_SEQ_ZERO = b',"seq":0,"status":'


def canonical_around_seq(
    *,
    merchant_id: str,
    intent_id: str,
    type: str,
    status: str | None,
    provider: str | None,
    at: datetime,
    data: dict[str, Any] | None,
) -> tuple[bytes, bytes]:
    """The canonical content before and after its `seq` digits, for a writer that
    cannot know the position yet (PostgreSQL links at COMMIT: app/db/audit_link.py):
    `prefix + str(seq).encode() + suffix == canonical(..., seq=seq)`.

    Keys are sorted, so the top-level `seq` follows `data` and precedes `status`
    and `type`, whose values are JSON strings (a quote in them is escaped): the
    last `,"seq":0,"status":` is the top-level one, whatever `data` holds."""
    content = canonical(
        merchant_id=merchant_id,
        intent_id=intent_id,
        seq=0,
        type=type,
        status=status,
        provider=provider,
        at=at,
        data=data,
    )
    at_seq = content.rindex(_SEQ_ZERO) + len(',"seq":')
    return content[:at_seq], content[at_seq + 1 :]


def link(prev_hash: str, content: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + content).hexdigest()


def as_stored(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """`data` as the database gives it back (JSON: keys become strings, tuples
    lists), so the hash computed before the insert is the one `verify` recomputes."""
    if data is None:
        return None
    try:
        return orjson.loads(orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS))  # type: ignore[no-any-return]
    except TypeError:
        return json.loads(json.dumps(data))  # type: ignore[no-any-return]


def expected_hash(event: ChainedEvent) -> str:
    """What `event.hash` must be, given its content and `prev_hash`."""
    return link(
        event.prev_hash,
        canonical(
            merchant_id=event.merchant_id,
            intent_id=event.intent_id,
            seq=event.seq,
            type=event.type,
            status=event.status,
            provider=event.provider,
            at=event.at,
            data=event.data,
        ),
    )
