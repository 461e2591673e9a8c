"""Find payments a PSP made that Cobro does not hold, by searching the PSP for our
intent id (every payment request carries it, and the attempt id, in its metadata).

Two kinds of attempt are searched for (`attempt_rows.claim_for_search`):
- a pending attempt whose replay the PSP answered "key used with other parameters":
  only the PSP's own record can say what that key did. Found, it is applied as the
  attempt's answer; not found, it stays pending (nothing else is tried for the
  intent) and is searched again every `every`.
- an attempt marked failed or unknown: the PSP may have charged anyway (an orphan
  charge). One found pays the intent if the intent still waits for a payment;
  otherwise (paid through another attempt, or closed) it is recorded as extra money
  on the intent and refunded at once, with audit events and merchant webhooks for
  both.

A PSP's search may lag its writes (Stripe: under a minute, longer in outages), so an
attempt is searched only once it has been quiet for `quiet_for`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import attempts as attempt_rows
from app.db.repositories import handles
from app.db.repositories import intents as intent_rows
from app.db.repositories.attempts import Attempt
from app.db.repositories.audit import NewAuditEvent
from app.domain.errors import CobroError
from app.domain.intents import PaymentIntentStatus
from app.domain.money import Money
from app.services.changes import record_change
from app.services.confirm import ConfirmService
from app.services.refunds import RefundService
from app.services.routing import Router
from providers.base import ProviderError, ProviderPayment, ProviderStatus

log = logging.getLogger("cobro.reconcile")
BATCH = 50


class ChargeSearch:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        router: Router,
        confirm: ConfirmService,
        refunds: RefundService,
        *,
        quiet_for: timedelta,
        every: timedelta,
    ) -> None:
        self.db = db
        self.clock = clock
        self.router = router
        self.confirm = confirm
        self.refunds = refunds
        self.quiet_for = quiet_for
        self.every = every

    async def run_once(self) -> int:
        """Search for one batch of due attempts; return how many payments were found
        and applied (settled, or recorded as extra and refunded)."""
        now = self.clock.now()
        async with self.db.transaction() as conn:
            due = await attempt_rows.claim_for_search(
                conn, due=now - self.quiet_for, again_at=now + self.every, limit=BATCH
            )
        found = 0
        for attempt in due:
            found += await self._search(attempt)
        return found

    async def _search(self, attempt: Attempt) -> int:
        if attempt.provider not in self.router.providers:
            return 0  # searched again after `every`, in case it is configured by then
        try:
            found = await self.router.call(
                attempt.provider, lambda p: p.search_payments(attempt.intent_id)
            )
        except ProviderError as exc:
            log.warning("could not search %s for %s: %s", attempt.provider, attempt.id, exc)
            return 0  # claimed until `every` from now: searched again then
        payment = await self._unheld(attempt, found or [])
        if attempt.status == "pending":
            if payment is None:
                return 0  # still unknown: searched again after `every`
            return int(await self.confirm.settle_found(attempt, payment))
        if payment is None or payment.status is not ProviderStatus.SUCCEEDED:
            await self._searched(attempt)
            return 0
        return await self._orphan(attempt, payment)

    async def _unheld(
        self, attempt: Attempt, found: list[ProviderPayment]
    ) -> ProviderPayment | None:
        """The payment found that is this attempt's (its metadata names it, or names no
        attempt, as requests made before attempts were named) and Cobro does not hold."""
        mine = [p for p in found if p.provider_ref and p.attempt_hint in (attempt.id, None)]
        mine.sort(key=lambda p: p.attempt_hint != attempt.id)  # named ones first
        async with self.db.read() as conn:
            for payment in mine:
                if await attempt_rows.by_ref(conn, attempt.provider, payment.provider_ref) is None:
                    return payment
        return None

    async def _orphan(self, attempt: Attempt, payment: ProviderPayment) -> int:
        """A charge made for an attempt Cobro took for failed."""
        async with self.db.read() as conn:
            intent = await intent_rows.get(conn, attempt.intent_id)
        assert intent is not None
        if intent.status is PaymentIntentStatus.REQUIRES_PAYMENT_METHOD:
            # It still waits for a payment: this one pays it (busy: search again later).
            return int(await self.confirm.settle_found(attempt, payment))
        amount = await self._record_extra(attempt, payment)
        try:
            await self.refunds.refund_extra(intent, attempt.provider, payment.provider_ref, amount)
        except CobroError as exc:
            # Recorded either way: a pending refund is resent by the worker, a refused
            # one is on the intent's trail for the merchant to act on.
            log.warning("extra charge %s not refunded yet: %s", payment.provider_ref, exc)
        return 1

    async def _record_extra(self, attempt: Attempt, payment: ProviderPayment) -> int:
        """Hold the charge as extra money on the intent; return its amount (minor units)."""
        now = self.clock.now()
        async with self.db.transaction() as conn:
            current = await intent_rows.get(conn, attempt.intent_id, for_update=True)
            assert current is not None
            amount = payment.amount_received or current.amount.minor
            await attempt_rows.finish(
                conn,
                attempt.id,
                status=attempt_rows.EXTRA,
                now=now,
                provider_ref=payment.provider_ref,
                response=payment.raw,
            )
            names = [payment.provider_ref, *payment.lookup_keys]
            await handles.remember(conn, attempt.provider, names, current.id, attempt.id)
            received = current.amount_received + Money(amount, current.amount.currency)
            event = NewAuditEvent(
                "payment.extra",
                provider=attempt.provider,
                data={
                    "attempt": attempt.id,
                    "provider_ref": payment.provider_ref,
                    "amount": Money(amount, current.amount.currency).to_decimal_string(),
                    "reason": f"charged by an attempt Cobro took for {attempt.status}; "
                    f"the intent was {current.status.value}: refunded",
                },
            )
            await record_change(
                conn, current, current.changed(now, amount_received=received), [event], now
            )
        return amount

    async def _searched(self, attempt: Attempt) -> None:
        async with self.db.transaction() as conn:
            await attempt_rows.search_again(conn, attempt.id, None)
