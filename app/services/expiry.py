"""Expiry: unpaid OXXO vouchers, SPEI references and crypto quotes run out.

The sweep leases due intents (so several workers never expire the same one), asks
the PSP to void what it issued where its API allows, and moves the intent to
EXPIRED with its audit event and outbox row. A PSP that cannot be reached does not
keep an intent alive: it expires anyway and the failure is on the trail; money
that still arrives later is recorded as a late payment, never dropped.
"""

from __future__ import annotations

import logging
from datetime import datetime

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import attempts as attempt_rows
from app.db.repositories import intents as intent_rows
from app.db.repositories.audit import NewAuditEvent
from app.domain.intents import PaymentIntent, PaymentIntentStatus
from app.services.changes import record_change, status_event
from app.services.due_sweep import sweep_due
from app.services.provider_cancel import cancel_at_provider
from app.services.routing import Router

log = logging.getLogger("cobro.expiry")

# Long enough to void at a PSP whose every call times out.


class ExpiryService:
    def __init__(self, db: Database, clock: Clock, router: Router) -> None:
        self.db = db
        self.clock = clock
        self.router = router

    async def sweep(self) -> int:
        """Expire every intent that is due now; return how many."""
        return await sweep_due(
            self.db, self.clock, PaymentIntentStatus.REQUIRES_ACTION, self._expire
        )

    async def _expire(self, intent: PaymentIntent, until: datetime) -> int:
        events = await self._void_at_provider(intent)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            current = await intent_rows.get(conn, intent.id, for_update=True)
            assert current is not None
            if current.status is not PaymentIntentStatus.REQUIRES_ACTION:
                # Paid while we were voiding: leave it be.
                await intent_rows.release_lease(conn, intent.id, until)
                return 0
            # Still waiting (perhaps partly paid meanwhile): its time is up all the same.
            after = current.moved_to(PaymentIntentStatus.EXPIRED, now, next_action=None)
            due = current.expires_at.isoformat() if current.expires_at else now.isoformat()
            status = status_event(after, reason=f"unpaid at {due}")
            await record_change(conn, current, after, [*events, status], now)
        log.info("expired %s", intent.id)
        return 1

    async def _void_at_provider(self, intent: PaymentIntent) -> list[NewAuditEvent]:
        if not intent.provider or intent.provider not in self.router.providers:
            return []
        async with self.db.read() as conn:
            attempt = await attempt_rows.latest_with_ref(conn, intent.id, intent.provider)
        if attempt is None or attempt.provider_ref is None:
            return []
        return await cancel_at_provider(
            self.router,
            intent.provider,
            attempt.provider_ref,
            key=f"expire-{intent.id}",
            reason="expired",
        )
