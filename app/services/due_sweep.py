"""The worker's sweeps over intents that fell due (expired vouchers, lapsed
authorizations): claim a batch under a lease, settle each, until a batch comes back
short. The lease keeps two workers off the same intent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import intents as intent_rows
from app.domain.intents import PaymentIntent, PaymentIntentStatus

LEASE = timedelta(seconds=60)
BATCH = 100


async def sweep_due(
    db: Database,
    clock: Clock,
    status: PaymentIntentStatus,
    settle: Callable[[PaymentIntent, datetime], Awaitable[int]],
    *,
    column: str = "expires_at",
) -> int:
    """Settle every intent in `status` whose `column` is past; the sum of what
    `settle` returned."""
    settled = 0
    while True:
        now = clock.now()
        until = now + LEASE
        async with db.transaction() as conn:
            due = await intent_rows.claim_due(
                conn,
                statuses=[status],
                due_before=now,
                now=now,
                lease_until=until,
                limit=BATCH,
                column=column,
            )
        for intent in due:
            settled += await settle(intent, until)
        if len(due) < BATCH:
            return settled
