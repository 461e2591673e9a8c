"""Reconciliation: ask the PSP about payments that have waited too long.

A webhook can be lost. Intents waiting on a PSP that have heard nothing for a while
are checked (each at most once per interval, across all workers), and what the PSP
says is applied as a synthetic event through the very same inbox and change path
as a webhook, so a webhook that does arrive later is a duplicate, not a second
payment. Each round also searches the PSPs for payments Cobro does not hold
(services/charge_search.py): attempts whose outcome a PSP would not tell, and
charges made for attempts Cobro took for failed.
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
from app.services.charge_search import ChargeSearch
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
        searches: ChargeSearch | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.router = router
        self.events = events
        self.quiet_for = quiet_for
        self.every = every
        self.searches = searches

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
        if self.searches is not None:
            changed += await self.searches.run_once()
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
        events = as_events(intent, ref, payment)
        if not events:
            return 0
        body = json.dumps(payment.raw, default=str).encode()
        received = await self.events.receive(events, body)
        return sum(r.outcome == "applied" for r in received)


def as_events(intent: PaymentIntent, ref: str, payment: ProviderPayment) -> list[ProviderEvent]:
    """What the PSP told us, as the events its webhooks would have brought.

    Money paid in by transfers is one event per deposit, named as the deposit's own
    webhook names it, so a deposit learnt both ways is counted once. Everything else
    is one event per status the PSP reports."""
    provider = intent.provider or ""
    if intent.method in ACCUMULATING and payment.deposits:
        return [
            ProviderEvent(
                provider=provider,
                event_id=deposit.event_id,
                type="reconciliation.deposit",
                status=ProviderStatus.SUCCEEDED,
                provider_ref=ref,
                amount=deposit.amount,
            )
            for deposit in payment.deposits
        ] + _status_only(intent, ref, payment)
    if payment.status in (ProviderStatus.PENDING, ProviderStatus.REQUIRES_ACTION):
        return []
    amount = payment.amount_received
    # A PSP that reports no single deposits (Conekta's SPEI is paid in full or
    # refused) is credited only if nothing was credited yet.
    if intent.method in ACCUMULATING and intent.amount_received.minor:
        return []
    return [
        ProviderEvent(
            provider=provider,
            event_id=f"reconcile:{intent.id}:{payment.status.value}",
            type="reconciliation",
            status=payment.status,
            provider_ref=ref,
            amount=amount,
        )
    ]


def _status_only(intent: PaymentIntent, ref: str, payment: ProviderPayment) -> list[ProviderEvent]:
    """For deposit-paid methods, a status that is not about money (expired, failed)."""
    if payment.status not in (
        ProviderStatus.EXPIRED,
        ProviderStatus.CANCELED,
        ProviderStatus.FAILED,
    ):
        return []
    return [
        ProviderEvent(
            provider=intent.provider or "",
            event_id=f"reconcile:{intent.id}:{payment.status.value}",
            type="reconciliation",
            status=payment.status,
            provider_ref=ref,
        )
    ]
