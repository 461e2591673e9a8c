"""Capture later (contract section 7): capture an authorization, all or part, and
void the ones nobody captured in time.

A capture is written (amount and idempotency key) before the PSP hears of it. If its
answer is lost (a timeout, a 500, a crash), the capture stays pending and the next
capturePaymentIntent, or the sweep at `captureBefore`, replays it to the same PSP
with the same key and amount: the PSP answers what it did, and nothing is ever
captured twice or sent as a second capture. The intent is leased meanwhile, so a
capture, a cancel and the sweep never act on it at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import attempts as attempt_rows
from app.db.repositories import captures as capture_rows
from app.db.repositories import intents as intent_rows
from app.db.repositories.audit import NewAuditEvent
from app.db.repositories.captures import Capture
from app.domain.errors import (
    CaptureExceedsAuthorized,
    CobroError,
    InvalidAmount,
    InvalidInput,
    InvalidState,
    NotFound,
    ProviderUnavailable,
)
from app.domain.ids import new_id
from app.domain.intents import PaymentError, PaymentIntent, PaymentIntentStatus, authorization
from app.domain.money import Money, parse_amount
from app.services import idempotency
from app.services.auth import Principal, can_read, require_secret_key
from app.services.changes import record_change, record_events, status_event
from app.services.due_sweep import sweep_due
from app.services.provider_cancel import cancel_at_provider
from app.services.results import MutationResult
from app.services.routing import Router
from providers.base import Captures, ProviderError, ProviderPayment, ProviderStatus

log = logging.getLogger("cobro.capture")

OPERATION = "capturePaymentIntent"
S = PaymentIntentStatus
# Long enough for a capture or a void at a PSP whose every call times out.
LEASE = timedelta(seconds=60)
AUTHORIZATION_EXPIRED = "AUTHORIZATION_EXPIRED"


@dataclass(frozen=True, slots=True)
class CaptureIntent:
    intent_id: str
    amount: object = None  # a decimal string; None: all that is capturable
    idempotency_key: str | None = None


class CaptureService:
    def __init__(self, db: Database, clock: Clock, router: Router) -> None:
        self.db = db
        self.clock = clock
        self.router = router

    async def capture(self, principal: Principal | None, command: CaptureIntent) -> MutationResult:
        principal = require_secret_key(principal)
        key = idempotency.check_key(command.idempotency_key)
        async with self.db.read() as conn:
            intent = await intent_rows.get(conn, command.intent_id)
        if intent is None or not can_read(principal, intent):
            raise NotFound(f"no payment intent {command.intent_id}", ("input", "id"))
        field = ("input", "amount")
        asked = (
            None
            if command.amount is None
            else parse_amount(command.amount, intent.amount.currency, field=field)
        )
        keyed = idempotency.keyed(
            intent.merchant_id,
            OPERATION,
            key,
            lambda: {"id": intent.id, "amount": asked.minor if asked else None},
        )
        async with self.db.read() as conn:
            replayed = await idempotency.replay(conn, keyed, self.clock.now())
        if replayed is not None:
            return replayed
        wanted = _check_capturable(intent, asked)
        now = self.clock.now()
        until = now + LEASE
        async with self.db.transaction() as conn:
            replayed = await idempotency.begin(conn, keyed, now, LEASE)
            if replayed is not None:
                return replayed
            if not await intent_rows.take_lease(conn, intent.id, intent.version, now, until):
                raise InvalidState(
                    f"payment intent {intent.id} is busy or just changed; fetch it and retry",
                    ("input", "id"),
                )
            # A capture whose answer was lost goes again as it was, never as a new one.
            capture = await capture_rows.live_for(conn, intent.id)
            if capture is None:
                capture = _new_capture(intent, wanted)
                await capture_rows.insert_capture(conn, capture, now)
                await record_events(conn, intent, [_requested(capture, intent)], now)
        try:
            after = await self._send(intent, capture, until)
        except BaseException:
            async with self.db.transaction() as conn:
                await intent_rows.release_lease(conn, intent.id, until)
                await idempotency.release(conn, keyed)
            raise
        result = MutationResult(after)
        async with self.db.transaction() as conn:
            await idempotency.finish(conn, keyed, result, self.clock.now())
        return result

    async def void_lapsed(self) -> int:
        """Void every authorization past its captureBefore (the worker's job): the
        intent becomes CANCELED with AUTHORIZATION_EXPIRED. A capture left pending is
        replayed instead: it may have happened."""
        return await sweep_due(
            self.db, self.clock, S.REQUIRES_CAPTURE, self._lapse, column="capture_before"
        )

    async def _lapse(self, intent: PaymentIntent, until: datetime) -> int:
        async with self.db.read() as conn:
            capture = await capture_rows.live_for(conn, intent.id)
        if capture is not None:
            try:
                await self._send(intent, capture, until)
            except CobroError as exc:
                # Unknown still (tried again next sweep), or refused (voided next sweep).
                log.warning("the capture of %s at its lapse: %s", intent.id, exc)
                async with self.db.transaction() as conn:
                    await intent_rows.release_lease(conn, intent.id, until)
            return 0
        events = await self._void_at_provider(intent)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            current = await intent_rows.get(conn, intent.id, for_update=True)
            assert current is not None
            if current.status is not S.REQUIRES_CAPTURE:
                await intent_rows.release_lease(conn, intent.id, until)
                return 0
            lapsed = current.capture_before.isoformat() if current.capture_before else "now"
            error = PaymentError(
                AUTHORIZATION_EXPIRED,
                f"the authorization was not captured by {lapsed} and was voided",
                current.provider,
            )
            after = current.moved_to(
                S.CANCELED,
                now,
                last_error=error,
                **authorization(current, S.CANCELED, now),
            )
            status = status_event(after, reason="authorization_expired", code=error.code)
            await record_change(conn, current, after, [*events, status], now)
        log.info("voided the lapsed authorization of %s", intent.id)
        return 1

    # -- the PSP -----------------------------------------------------------------

    async def _send(
        self, intent: PaymentIntent, capture: Capture, until: datetime
    ) -> PaymentIntent:
        """Send (or replay) `capture` and apply the answer; the lease is released."""
        ref = await self._provider_ref(intent, capture.provider)
        provider: object = self.router.providers.get(capture.provider)
        if not isinstance(provider, Captures):
            raise ProviderUnavailable(f"{capture.provider} cannot capture authorizations")
        try:
            payment = await self.router.call(
                capture.provider,
                lambda p: cast(Captures, p).capture_payment(
                    ref, capture.amount, capture.idempotency_key
                ),
            )
        except ProviderError as exc:
            if exc.retryable or exc.outcome_unknown:
                await self._note(intent, capture, "provider.error", until, message=exc.message)
                raise ProviderUnavailable(
                    f"{capture.provider} has not said whether it captured ({exc.message}); "
                    "retry: the same capture is sent again, never a second one"
                ) from exc
            await self._refused(intent, capture, until, exc)
            raise InvalidInput(
                f"{capture.provider} refused the capture: {exc.message}", ("input", "id")
            ) from exc
        if payment.status is not ProviderStatus.SUCCEEDED:
            await self._note(
                intent, capture, "provider.response", until, status=payment.status.value
            )
            raise ProviderUnavailable(
                f"{capture.provider} answered the capture with {payment.status.value}; "
                "retry shortly"
            )
        return await self._captured(intent, capture, payment, until)

    async def _provider_ref(self, intent: PaymentIntent, provider: str) -> str:
        async with self.db.read() as conn:
            attempt = await attempt_rows.latest_with_ref(conn, intent.id, provider)
        if attempt is None or attempt.provider_ref is None:
            raise InvalidState(f"{intent.id} has no authorization at {provider}", ("input", "id"))
        return attempt.provider_ref

    async def _captured(
        self, intent: PaymentIntent, capture: Capture, payment: ProviderPayment, until: datetime
    ) -> PaymentIntent:
        now = self.clock.now()
        currency = intent.amount.currency
        received = Money(
            payment.amount_received if payment.amount_received else capture.amount, currency
        )
        async with self.db.transaction() as conn:
            await capture_rows.finish(conn, capture.id, "succeeded", now)
            current = await intent_rows.get(conn, intent.id, for_update=True)
            assert current is not None
            done = NewAuditEvent(
                "provider.captured",
                provider=capture.provider,
                data={
                    "capture": capture.id,
                    "provider_ref": payment.provider_ref,
                    "amount": received.to_decimal_string(),
                    "released": Money(
                        max(current.amount_capturable.minor - received.minor, 0), currency
                    ).to_decimal_string(),
                },
            )
            if current.status is not S.REQUIRES_CAPTURE:
                # The PSP's webhook told us first.
                await record_events(conn, current, [done], now)
                await intent_rows.release_lease(conn, current.id, until)
                return current
            after = current.moved_to(
                S.SUCCEEDED,
                now,
                amount_received=received,
                **authorization(current, S.SUCCEEDED, now),
            )
            await record_change(conn, current, after, [done, status_event(after)], now)
        return after

    async def _refused(
        self, intent: PaymentIntent, capture: Capture, until: datetime, exc: ProviderError
    ) -> None:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await capture_rows.finish(conn, capture.id, "failed", now)
            await record_events(
                conn,
                intent,
                [_event("provider.capture_refused", capture, code=exc.code, message=exc.message)],
                now,
            )
            await intent_rows.release_lease(conn, intent.id, until)

    async def _note(
        self, intent: PaymentIntent, capture: Capture, kind: str, until: datetime, **data: str
    ) -> None:
        async with self.db.transaction() as conn:
            await record_events(conn, intent, [_event(kind, capture, **data)], self.clock.now())
            await intent_rows.release_lease(conn, intent.id, until)

    async def _void_at_provider(self, intent: PaymentIntent) -> list[NewAuditEvent]:
        """Release the hold at the PSP. One that cannot be reached does not keep the
        intent waiting: the issuer drops an uncaptured hold on its own."""
        if not intent.provider or intent.provider not in self.router.providers:
            return []
        ref = await self._provider_ref(intent, intent.provider)
        return await cancel_at_provider(
            self.router,
            intent.provider,
            ref,
            key=f"void-{intent.id}",
            reason="authorization_expired",
        )


def _check_capturable(intent: PaymentIntent, asked: Money | None) -> int:
    if intent.status is not S.REQUIRES_CAPTURE:
        raise InvalidState(
            f"payment intent {intent.id} is {intent.status.value}; only REQUIRES_CAPTURE "
            "can be captured",
            ("input", "id"),
        )
    wanted = asked.minor if asked is not None else intent.amount_capturable.minor
    if wanted <= 0:
        raise InvalidAmount("a capture takes more than 0", ("input", "amount"))
    if wanted > intent.amount_capturable.minor:
        raise CaptureExceedsAuthorized(
            f"{Money(wanted, intent.amount.currency)} is more than the "
            f"{intent.amount_capturable} authorized",
            ("input", "amount"),
        )
    return wanted


def _new_capture(intent: PaymentIntent, amount: int) -> Capture:
    capture_id = new_id("cap")
    assert intent.provider is not None
    return Capture(
        id=capture_id,
        intent_id=intent.id,
        provider=intent.provider,
        amount=amount,
        idempotency_key=f"cobro-{capture_id}",
        status="pending",
    )


def _requested(capture: Capture, intent: PaymentIntent) -> NewAuditEvent:
    amount = Money(capture.amount, intent.amount.currency).to_decimal_string()
    return _event(
        "provider.capture", capture, amount=amount, idempotency_key=capture.idempotency_key
    )


def _event(kind: str, capture: Capture, **data: str) -> NewAuditEvent:
    return NewAuditEvent(kind, provider=capture.provider, data={"capture": capture.id, **data})
