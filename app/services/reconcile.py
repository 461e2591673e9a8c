"""Reconciliation: ask the PSP about payments that have waited too long.

A webhook can be lost. Intents waiting on a PSP that have heard nothing for a while
are checked (each at most once per interval, across all workers), and what the PSP
says is applied as a synthetic event through the very same inbox and change path
as a webhook, so a webhook that does arrive later is a duplicate, not a second
payment.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import attempts as attempt_rows
from app.db.repositories import intents as intent_rows
from app.domain.intents import PaymentIntent
from app.domain.settlement import ACCUMULATING
from app.services.provider_events import ProviderEventService
from app.services.routing import Router
from providers.base import ProviderError, ProviderEvent, ProviderPayment, ProviderStatus

log = logging.getLogger("cobro.reconcile")
BATCH = 50


class ReconciliationService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        router: Router,
        events: ProviderEventService,
        *,
        quiet_for: timedelta,
        every: timedelta,
    ) -> None:
        self.db = db
        self.clock = clock
        self.router = router
        self.events = events
        self.quiet_for = quiet_for
        self.every = every

    async def run_once(self) -> int:
        """Check one batch of quiet intents; return how many the PSP's answer changed."""
        now = self.clock.now()
        async with self.db.transaction() as conn:
            quiet = await intent_rows.claim_unsettled(
                conn,
                quiet_since=now - self.quiet_for,
                checked_before=now - self.every,
                now=now,
                limit=BATCH,
            )
        changed = 0
        for intent in quiet:
            changed += await self._check(intent)
        return changed

    async def _check(self, intent: PaymentIntent) -> int:
        assert intent.provider is not None
        async with self.db.read() as conn:
            attempt = await attempt_rows.latest_with_ref(conn, intent.id, intent.provider)
        if attempt is None or intent.provider not in self.router.providers:
            return 0
        ref = attempt.provider_ref
        assert ref is not None
        try:
            payment = await self.router.call(intent.provider, lambda p: p.fetch_payment(ref))
        except ProviderError as exc:
            log.warning("could not reconcile %s at %s: %s", intent.id, intent.provider, exc.message)
            return 0
        event = _as_event(intent, ref, payment)
        if event is None:
            return 0
        received = await self.events.receive([event], json.dumps(payment.raw, default=str).encode())
        return sum(r.outcome == "applied" for r in received)


def _as_event(intent: PaymentIntent, ref: str, payment: ProviderPayment) -> ProviderEvent | None:
    """What the PSP told us, as the event a webhook would have brought, or None if
    it says nothing new. Deposits are reported as totals; the event carries what is new."""
    if payment.status in (ProviderStatus.PENDING, ProviderStatus.REQUIRES_ACTION):
        total = payment.amount_received or 0
        if intent.method not in ACCUMULATING or total <= intent.amount_received.minor:
            return None
    amount = payment.amount_received
    if intent.method in ACCUMULATING and amount is not None:
        amount = amount - intent.amount_received.minor
        if amount <= 0:
            amount = None
    status = payment.status
    if status is ProviderStatus.REQUIRES_ACTION and amount:
        status = ProviderStatus.SUCCEEDED  # money in; settlement decides if it is all of it
    return ProviderEvent(
        provider=intent.provider or "",
        event_id=f"reconcile:{intent.id}:{status.value}:{payment.amount_received}",
        type="reconciliation",
        status=status,
        provider_ref=ref,
        amount=amount,
        occurred_at=None,
        raw=payment.raw,
    )
