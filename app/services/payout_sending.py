"""Sending a payout to an SPEI PSP, with failover only while nothing may have left.

Each try is an attempt row holding the exact request (the PSP's order, signed), written
before the call. The answer decides:
- accepted: the payout is IN_TRANSIT at that PSP (or further, if it says so);
- refused on its merits (a bad account, insufficient funds): FAILED, nothing else tried;
- never sent (refused connection, 503, 429, open circuit): the next PSP is tried;
- unknown (timeout, 500): the attempt stays pending and the payout PENDING, and the
  same bytes, with the same tracking key, go to the same PSP again until it answers.
  A payout whose outcome is unknown never goes to a second PSP, and cannot be canceled.
A payout no PSP would take stays PENDING (cancelable) and the worker tries again.
Senders lease the payout, so two processes never send one payout at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import payouts as payout_rows
from app.db.repositories.audit import NewAuditEvent
from app.db.repositories.payouts import AttemptRow
from app.domain.errors import CobroError
from app.domain.ids import new_id
from app.domain.payouts import Payout, PayoutStatus
from app.services.payout_changes import record_payout_events
from app.services.payout_news import PayoutNews, apply_payout_news
from app.services.provider_events import apply_waiting
from app.services.routing import Router
from providers.base import (
    INVALID_REQUEST,
    PayoutProvider,
    PayoutRequest,
    PayoutState,
    Provider,
    ProviderError,
    ProviderPayout,
    WireRequest,
)

log = logging.getLogger("cobro.payouts")

# Long enough for every PSP on the route to time out once.
SEND_LEASE = timedelta(seconds=60)
BATCH = 50


@dataclass(frozen=True, slots=True)
class PayoutResult:
    payout: Payout | None
    errors: tuple[CobroError, ...] = ()


def payout_request(payout: Payout) -> PayoutRequest:
    return PayoutRequest(
        payout_id=payout.id,
        amount=payout.amount,
        clabe=payout.clabe,
        beneficiary_name=payout.beneficiary_name,
        concept=payout.concept,
        reference=payout.reference,
        tracking_key=payout.tracking_key,
        rfc=payout.rfc,
    )


def sends_payouts(provider: Provider) -> bool:
    return callable(getattr(provider, "prepare_payout", None))


def _payouts(provider: Provider) -> PayoutProvider:
    return cast(PayoutProvider, provider)


class PayoutSender:
    def __init__(self, db: Database, clock: Clock, router: Router, route: list[str]) -> None:
        self.db = db
        self.clock = clock
        self.router = router
        self.route = [
            name
            for name in route
            if name in router.providers and sends_payouts(router.providers[name])
        ]

    async def send_new(self, payout: Payout, lease: datetime) -> PayoutResult:
        """Send a payout just recorded (its creator holds the lease until `lease`)."""
        return PayoutResult(await self._send(payout, lease))

    async def resend(self) -> int:
        """Send PENDING payouts nobody is sending (the worker's job): replay the attempt
        whose outcome is unknown, or try the route again. Returns how many moved."""
        now = self.clock.now()
        async with self.db.read() as conn:
            waiting = await payout_rows.unsent(conn, now, BATCH)
        moved = 0
        for payout_id in waiting:
            lease = now + SEND_LEASE
            async with self.db.transaction() as conn:
                taken = await payout_rows.take_lease(conn, payout_id, now, lease)
                payout = await payout_rows.get(conn, payout_id)
            if not taken or payout is None or payout.status is not PayoutStatus.PENDING:
                continue
            after = await self._send(payout, lease)
            moved += after.status is not PayoutStatus.PENDING
        return moved

    async def reconcile(self, quiet_for: timedelta) -> int:
        """Ask the PSP where payouts IN_TRANSIT for `quiet_for` are (a callback can be
        lost); apply what it says through the same path as a callback."""
        now = self.clock.now()
        async with self.db.read() as conn:
            stale = await payout_rows.in_transit_since(conn, now - quiet_for, BATCH)
        moved = 0
        for payout in stale:
            provider = payout.provider or ""
            if provider not in self.router.providers:
                continue
            try:
                found = await self._fetch(provider, payout_request(payout))
            except ProviderError as exc:
                log.info("could not ask %s about payout %s: %s", provider, payout.id, exc.message)
                continue
            async with self.db.transaction() as conn:
                await payout_rows.mark_checked(conn, payout.id, self.clock.now())
                if found is not None and found.state is not PayoutState.IN_TRANSIT:
                    news = _news(provider, found, "reconciliation")
                    _, changed = await apply_payout_news(conn, payout.id, news, self.clock.now())
                    moved += changed
        return moved

    async def _fetch(self, provider: str, request: PayoutRequest) -> ProviderPayout | None:
        return await self.router.call(provider, lambda p: _payouts(p).fetch_payout(request))

    async def _send(self, payout: Payout, lease: datetime) -> Payout:
        async with self.db.read() as conn:
            unanswered = await payout_rows.open_attempt(conn, payout.id)
        if unanswered is not None:
            return await self._replay(payout, unanswered, lease)
        request = payout_request(payout)
        failures: list[ProviderError] = []
        for name in self.route:
            if not self.router.breakers.accepts_calls(name):
                failures.append(ProviderError(name, "circuit open", retryable=True))
                continue
            wire = _payouts(self.router.providers[name]).prepare_payout(request)
            attempt = AttemptRow(new_id("pa"), payout.id, name, "pending", wire.to_dict())
            await self._record_attempt(payout, attempt)
            outcome = await self._call(name, request, wire)
            if isinstance(outcome, ProviderPayout):
                return await self._accepted(payout, attempt, outcome)
            if outcome.outcome_unknown:
                return await self._unknown(payout, attempt, outcome, lease)
            if outcome.code == INVALID_REQUEST:
                return await self._refused(payout, attempt, outcome)
            await self._finish(payout, attempt, "unsent", outcome)
            failures.append(outcome)
        return await self._unsent(payout, failures, lease)

    async def _replay(self, payout: Payout, attempt: AttemptRow, lease: datetime) -> Payout:
        """The same bytes to the same PSP: it says what it did, or we keep asking."""
        wire = WireRequest.from_dict(attempt.wire)
        if attempt.provider not in self.router.providers:
            return await self._release(payout, lease)
        outcome = await self._call(attempt.provider, payout_request(payout), wire)
        if isinstance(outcome, ProviderPayout):
            return await self._accepted(payout, attempt, outcome)
        if outcome.code == INVALID_REQUEST and not outcome.outcome_unknown:
            return await self._refused(payout, attempt, outcome)
        return await self._unknown(payout, attempt, outcome, lease)

    async def _call(
        self, name: str, request: PayoutRequest, wire: WireRequest
    ) -> ProviderPayout | ProviderError:
        try:
            return await self.router.call(name, lambda p: _payouts(p).send_payout(request, wire))
        except ProviderError as exc:
            return exc

    async def _record_attempt(self, payout: Payout, attempt: AttemptRow) -> None:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await payout_rows.insert_attempt(conn, attempt, now)
            event = NewAuditEvent(
                "provider.request",
                provider=attempt.provider,
                data={"attempt": attempt.id, "tracking_key": payout.tracking_key},
            )
            await record_payout_events(conn, payout, [event], now)

    async def _finish(
        self, payout: Payout, attempt: AttemptRow, status: str, error: ProviderError
    ) -> None:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await payout_rows.finish_attempt(
                conn, attempt.id, status, now, error_message=error.message
            )
            event = NewAuditEvent(
                f"provider.{status}",
                provider=attempt.provider,
                data={"attempt": attempt.id, "message": error.message},
            )
            await record_payout_events(conn, payout, [event], now)

    async def _accepted(
        self, payout: Payout, attempt: AttemptRow, answer: ProviderPayout
    ) -> Payout:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await payout_rows.finish_attempt(conn, attempt.id, "accepted", now, response=answer.raw)
            after, _ = await apply_payout_news(
                conn, payout.id, _news(attempt.provider, answer, "provider"), now
            )
            # Its callback may have beaten this commit: it waits in the inbox under the
            # PSP's id, and is applied now.
            await apply_waiting(conn, attempt.provider, [answer.provider_ref], now)
            latest = await payout_rows.get(conn, payout.id)
        return latest or after

    async def _refused(self, payout: Payout, attempt: AttemptRow, error: ProviderError) -> Payout:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await payout_rows.finish_attempt(
                conn, attempt.id, "refused", now, error_message=error.message
            )
            news = PayoutNews(
                PayoutState.FAILED, attempt.provider, message=error.message, detail="refused"
            )
            after, _ = await apply_payout_news(conn, payout.id, news, now)
        return after

    async def _unknown(
        self, payout: Payout, attempt: AttemptRow, error: ProviderError, lease: datetime
    ) -> Payout:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await payout_rows.finish_attempt(
                conn, attempt.id, "pending", now, error_message=error.message
            )
            event = NewAuditEvent(
                "provider.unknown",
                provider=attempt.provider,
                data={
                    "attempt": attempt.id,
                    "message": error.message,
                    "next": "resent to the same PSP with the same tracking key",
                },
            )
            await record_payout_events(conn, payout, [event], now)
            await payout_rows.release_lease(conn, payout.id, lease)
            current = await payout_rows.get(conn, payout.id)
        return current or payout

    async def _unsent(
        self, payout: Payout, failures: list[ProviderError], lease: datetime
    ) -> Payout:
        now = self.clock.now()
        tried = "; ".join(f"{f.provider}: {f.message}" for f in failures) or "no SPEI PSP"
        async with self.db.transaction() as conn:
            event = NewAuditEvent("payout.unsent", data={"message": tried})
            await record_payout_events(conn, payout, [event], now)
            await payout_rows.release_lease(conn, payout.id, lease)
        return payout

    async def _release(self, payout: Payout, lease: datetime) -> Payout:
        async with self.db.transaction() as conn:
            await payout_rows.release_lease(conn, payout.id, lease)
        return payout


def _news(provider: str, answer: ProviderPayout, source: str) -> PayoutNews:
    return PayoutNews(
        answer.state,
        provider,
        provider_ref=answer.provider_ref,
        return_code=answer.return_code,
        message=answer.message,
        source=source,
    )
