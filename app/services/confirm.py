"""Confirm an intent: route it to a PSP, fail over, and never charge twice.

- Each attempt is written (with its idempotency key and the exact bytes of its
  request, every field fixed then) before the PSP hears of it. If we never learn the
  answer (a crash, or a PSP that took the request and went silent), the attempt stays
  pending and is replayed later: those bytes, that key, to the same PSP, whichever
  process replays it and however it is configured. The PSP answers what it did.
- A PSP that says the key was used with other parameters has not said what it did:
  the attempt stays pending (nothing else is tried for the intent) until
  reconciliation finds the payment by searching the PSP for our intent id.
- A failure that may hide a charge (a timeout after sending, a 500) never moves a
  card payment to another PSP: that could charge the card twice. Vouchers,
  transfer references and quotes cost nothing until paid, so those do fail over;
  if the silent PSP did issue one and the customer pays it, that money is found by
  its webhook (the PSP echoes our intent id) and recorded as a late payment.
- The idempotency key is claimed and the intent leased for the confirmation, so
  no two confirmations run at once. The steps commit one by one on PostgreSQL
  (Database.steps): a claim whose lease is refused is given back, and whatever a
  crash leaves held lapses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import attempts as attempt_rows
from app.db.repositories import handles
from app.db.repositories import intents as intent_rows
from app.db.repositories.attempts import Attempt
from app.db.repositories.audit import NewAuditEvent
from app.domain.errors import (
    CardDeclined,
    CobroError,
    Forbidden,
    InvalidState,
    MethodNotAllowed,
    NotFound,
    PaymentFailed,
    ProviderUnavailable,
    QuoteExpired,
)
from app.domain.ids import new_id
from app.domain.intents import PaymentError, PaymentIntent, PaymentIntentStatus, authorization
from app.domain.methods import PaymentMethodType
from app.domain.money import Money
from app.services import idempotency
from app.services.auth import KeyKind, Principal, can_read, require_principal
from app.services.changes import record_change, record_events, status_event
from app.services.failover import no_provider_error
from app.services.outcomes import CONFIRM_OUTCOMES
from app.services.payment_requests import ConfirmIntent, build_request
from app.services.provider_events import apply_waiting
from app.services.results import MutationResult
from app.services.routing import Router
from providers.base import (
    IDEMPOTENCY_MISMATCH,
    INVALID_REQUEST,
    PaymentRequest,
    ProviderError,
    ProviderPayment,
    WireRequest,
)

OPERATION = "confirmPaymentIntent"
# Error codes a PSP answer can carry that the contract names.
_CONTRACT_ERRORS: dict[str, type[CobroError]] = {
    "CARD_DECLINED": CardDeclined,
    "QUOTE_EXPIRED": QuoteExpired,
}
BATCH = 50


@dataclass(frozen=True, slots=True)
class _Run:
    """One confirmation in progress: the intent as read, its key, and our lease."""

    intent: PaymentIntent
    keyed: idempotency.Keyed
    lease_until: datetime
    started_at: datetime  # when the key was claimed (giving back only that claim)


@dataclass(frozen=True, slots=True)
class _FirstAttempt:
    """The attempt a fresh confirmation starts with: recorded right after the lease,
    in the same block, so the common case costs one block before the PSP call."""

    provider: str
    request: PaymentRequest


@dataclass(frozen=True, slots=True)
class _Started:
    """What taking the lease found: attempts an earlier confirmation sent without
    learning their answer (a crash, a silent PSP), or else the first attempt of this
    one, recorded with the lease (None when there was no provider to record it for)."""

    run: _Run
    unanswered: list[Attempt]
    recorded: Attempt | None = None


class ConfirmService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        router: Router,
        *,
        lease_seconds: float,
        spei_expiry: timedelta,
        public_url: str = "",
    ) -> None:
        self.db = db
        self.clock = clock
        self.router = router
        self.lease = timedelta(seconds=lease_seconds)
        self.spei_expiry = spei_expiry
        # Only for new attempts' return URLs; a replay sends what its attempt stored.
        self.public_url = public_url

    async def confirm(self, principal: Principal | None, command: ConfirmIntent) -> MutationResult:
        """A retried request gets its first result. Otherwise one block (steps) claims
        the key, leases the intent and records the first attempt; attempts an earlier
        confirmation left unanswered are replayed first, then each PSP is tried in
        turn. Anything that ends it before an answer is applied frees intent and key."""
        principal = require_principal(principal)
        if principal.kind is KeyKind.PUBLISHABLE:
            raise Forbidden("confirming needs the intent's client secret or your secret key")
        key = idempotency.check_key(command.idempotency_key)
        async with self.db.read() as conn:
            intent = await intent_rows.get(conn, command.intent_id)
            if intent is None or not can_read(principal, intent):
                raise NotFound(f"no payment intent {command.intent_id}", ("input", "id"))
            keyed = idempotency.keyed(intent.merchant_id, OPERATION, key, command.fingerprint)
            replayed = await idempotency.replay(conn, keyed, self.clock.now())
        if replayed is not None:
            return replayed
        request = build_request(
            intent, command, self.clock.now(), self.spei_expiry, self.public_url
        )
        self._check_confirmable(intent, command.method)
        candidates = self.router.candidates(command.method)
        if request.method is PaymentMethodType.CARD:
            # Only PSPs holding a token for this card (and offering its plan).
            request, candidates = self.router.route_card(request, candidates)
        first = _FirstAttempt(candidates[0], request) if candidates else None
        now = self.clock.now()
        try:
            started = await self._begin(intent, keyed, now, first, at_once=first is not None)
        except DBAPIError as error:
            if not intent_rows.moved_meanwhile(error):
                raise
            # The lease was not free: the key goes back (on PostgreSQL its claim had
            # committed on its own; on SQLite it went with the block, and the claim
            # another request may have made since is not ours to give back), and the
            # lease alone tells why.
            async with self.db.autocommit() as conn:
                await idempotency.release(conn, keyed, claimed_at=now)
            started = await self._begin(intent, keyed, now, first, at_once=False)
        if isinstance(started, MutationResult):
            return started  # a request with this key finished meanwhile
        run = started.run
        try:
            if started.unanswered:
                recovered = await self._recover(run, started.unanswered)
                if recovered is not None:
                    return recovered
            return await self._attempt_each(run, request, candidates, started.recorded)
        except BaseException:
            await self._give_up(run)
            raise

    async def recover_stale(self, older_than: timedelta) -> int:
        """Learn what happened to attempts nobody came back for (the worker's job)."""
        now = self.clock.now()
        async with self.db.read() as conn:
            intent_ids = await attempt_rows.intents_with_pending(conn, now - older_than, BATCH)
            intents = await intent_rows.get_many(conn, intent_ids)
        recovered = 0
        for intent in intents.values():
            try:
                started = await self._lease_unkeyed(intent)
            except InvalidState:
                continue  # someone else is on it
            try:
                if await self._recover(started.run, started.unanswered) is not None:
                    recovered += 1
                else:
                    await self._give_up(started.run)
            except ProviderUnavailable:
                await self._give_up(started.run)
        return recovered

    async def settle_found(self, attempt: Attempt, payment: ProviderPayment) -> bool:
        """Apply what a PSP search found for `attempt`, as if its answer had come back
        (reconciliation's way in); False if the intent is busy: try again later."""
        async with self.db.read() as conn:
            intent = await intent_rows.get(conn, attempt.intent_id)
        assert intent is not None
        try:
            started = await self._lease_unkeyed(intent)
        except InvalidState:
            return False
        try:
            await self._apply(started.run, attempt, payment)
        except BaseException:
            await self._give_up(started.run)
            raise
        return True

    # -- validation ------------------------------------------------------------------

    def _check_confirmable(self, intent: PaymentIntent, method: PaymentMethodType) -> None:
        if intent.status is not PaymentIntentStatus.REQUIRES_PAYMENT_METHOD:
            raise InvalidState(
                f"payment intent {intent.id} is {intent.status.value}; only "
                "REQUIRES_PAYMENT_METHOD can be confirmed",
                ("input", "id"),
            )
        if not intent.allows(method):
            allowed = ", ".join(m.value for m in intent.allowed_methods)
            raise MethodNotAllowed(
                f"this intent accepts {allowed}, not {method.value}", ("input", "method")
            )
        self.router.check_amount(method, intent.amount)

    # -- the lease and the key -------------------------------------------------------

    async def _begin(
        self,
        intent: PaymentIntent,
        keyed: idempotency.Keyed,
        now: datetime,
        first: _FirstAttempt | None,
        *,
        at_once: bool,
    ) -> MutationResult | _Started:
        """Claim the key, lease the intent and record the first attempt, or the answer
        a finished request with this key gave. These need not commit together: each
        step is safe alone, a lapse frees what a failure midway left (Database.steps).
        `at_once`: the lease goes with the attempt, one statement on PostgreSQL, and a
        lease that is not free fails the block (`intents.moved_meanwhile`)."""
        async with self.db.steps() as conn:
            # A request with this key may have finished since the replay read above.
            answered = await idempotency.begin(conn, keyed, now, self.lease)
            if answered is not None:
                return answered
            if at_once and first is not None:
                until = now + self.lease
                await intent_rows.lease_unless_busy(conn, intent.id, intent.version, now, until)
                recorded = await self._insert_attempt(
                    conn, intent, first.provider, first.request, now
                )
                return _Started(_Run(intent, keyed, until, now), [], recorded)
            try:
                return await self._lease(conn, intent, keyed, now, first)
            except InvalidState:
                await idempotency.release(conn, keyed, claimed_at=now)  # claimed above, for nothing
                raise

    async def _lease(
        self,
        conn: AsyncConnection,
        intent: PaymentIntent,
        keyed: idempotency.Keyed,
        now: datetime,
        first: _FirstAttempt | None = None,
    ) -> _Started:
        """Lease the intent in the caller's block (the one that claimed the key) and
        read what an earlier confirmation left unanswered; with nothing unanswered,
        record `first` there too. InvalidState if someone else holds the intent.

        A fresh confirmation (the common case) first tries the lease and its first
        attempt as one statement (`_begin(at_once=True)`); when that is refused, it
        comes here, where the lease alone and the unanswered attempts tell why."""
        until = now + self.lease
        run = _Run(intent, keyed, until, now)
        if not await intent_rows.take_lease(conn, intent.id, intent.version, now, until):
            raise InvalidState(
                f"payment intent {intent.id} is being confirmed or just changed; "
                "fetch it and retry",
                ("input", "id"),
            )
        unanswered = await attempt_rows.pending_for(conn, intent.id)
        if unanswered or first is None:
            return _Started(run, unanswered)
        recorded = await self._insert_attempt(conn, intent, first.provider, first.request, now)
        return _Started(run, [], recorded)

    async def _lease_unkeyed(self, intent: PaymentIntent) -> _Started:
        """Lease the intent for the worker's or reconciliation's work, which claims no
        key (no client is waiting for an answer to replay)."""
        keyed = idempotency.Keyed(intent.merchant_id, OPERATION, None, "")
        async with self.db.transaction() as conn:
            return await self._lease(conn, intent, keyed, self.clock.now())

    async def _give_up(self, run: _Run) -> None:
        """The confirmation changed nothing: free the intent and the key."""
        async with self.db.transaction() as conn:
            await intent_rows.release_lease(conn, run.intent.id, run.lease_until)
            await idempotency.release(conn, run.keyed, claimed_at=run.started_at)

    # -- calling PSPs ----------------------------------------------------------------

    async def _recover(self, run: _Run, pending: list[Attempt]) -> MutationResult | None:
        """Replay attempts whose answer we never got, same key and request: the PSP
        repeats its first answer. Until one answers, nothing else may be tried."""
        for attempt in pending:
            try:
                payment = await self._call(attempt)
            except ProviderError as exc:
                if exc.code == IDEMPOTENCY_MISMATCH:
                    await self._attempt_unknown(run.intent, attempt, exc)
                if exc.retryable or exc.outcome_unknown:
                    raise ProviderUnavailable(
                        f"{attempt.provider} has not told us what became of an earlier "
                        "attempt; retry shortly (nothing will be charged twice)"
                    ) from exc
                await self._attempt_failed(run.intent, attempt, exc)
                continue
            return await self._apply(run, attempt, payment)
        return None

    async def _call(self, attempt: Attempt) -> ProviderPayment:
        """Send the attempt's stored request: the same bytes the first time and on
        every replay. (Attempts stored before requests were kept as bytes are rebuilt
        from their fields; a PSP that sees a difference says so, and that is handled
        as an unknown outcome, never as a failure.)"""
        request = PaymentRequest.from_dict(attempt.request)
        stored = attempt.request.get("wire")
        if stored is None:
            return await self.router.call(
                attempt.provider, lambda p: p.create_payment(request, attempt.idempotency_key)
            )
        wire = WireRequest.from_dict(stored)
        return await self.router.call(attempt.provider, lambda p: p.send_payment(request, wire))

    async def _attempt_each(
        self,
        run: _Run,
        request: PaymentRequest,
        candidates: list[str],
        recorded: Attempt | None = None,
    ) -> MutationResult:
        """Try each PSP in turn, each attempt recorded before it is sent (`recorded`,
        the first, already was); the first answer is applied."""
        failures: list[ProviderError] = []
        for name in candidates:
            if recorded is not None and recorded.provider == name:
                attempt, recorded = recorded, None
            else:
                attempt = await self._record_attempt(run.intent, name, request)
            try:
                payment = await self._call(attempt)
            except ProviderError as exc:
                if exc.outcome_unknown and request.method is PaymentMethodType.CARD:
                    await self._attempt_unknown(run.intent, attempt, exc)
                    raise ProviderUnavailable(
                        f"{name} did not say whether it charged the card ({exc.message}); "
                        "retry the confirmation to find out: it will not be charged twice"
                    ) from exc
                await self._attempt_failed(run.intent, attempt, exc)
                failures.append(exc)
                continue
            return await self._apply(run, attempt, payment)
        raise no_provider_error(
            failures, request.method.value, ("input", request.method.value.lower())
        )

    async def _record_attempt(
        self, intent: PaymentIntent, provider: str, request: PaymentRequest
    ) -> Attempt:
        """Commit the attempt, its key and its exact request before the PSP hears of it."""
        async with self.db.transaction() as conn:
            return await self._insert_attempt(conn, intent, provider, request, self.clock.now())

    async def _insert_attempt(
        self,
        conn: AsyncConnection,
        intent: PaymentIntent,
        provider: str,
        request: PaymentRequest,
        now: datetime,
    ) -> Attempt:
        attempt_id = new_id("pp")
        key = f"cobro-{attempt_id}"
        # SPEI references and per-intent CLABEs are built from this number; no other
        # method uses one, so a card payment skips the insert.
        number = (
            await attempt_rows.allocate_reference_number(conn, attempt_id)
            if request.method is PaymentMethodType.SPEI
            else None
        )
        request = replace(
            request.for_provider(provider), reference_number=number, attempt_id=attempt_id
        )
        wire = self.router.providers[provider].prepare_payment(request, key)
        attempt = Attempt(
            id=attempt_id,
            intent_id=intent.id,
            provider=provider,
            method=request.method.value,
            idempotency_key=key,
            status="pending",
            provider_ref=None,
            request={**request.to_dict(), "wire": wire.to_dict()},
        )
        await attempt_rows.insert_attempt(conn, attempt, now)
        await record_events(
            conn,
            intent,
            [
                NewAuditEvent(
                    "provider.request",
                    provider=provider,
                    data={
                        "attempt": attempt.id,
                        "method": request.method.value,
                        "idempotency_key": attempt.idempotency_key,
                    },
                )
            ],
            now,
        )
        return attempt

    async def _attempt_failed(
        self, intent: PaymentIntent, attempt: Attempt, exc: ProviderError
    ) -> None:
        """Record a failed call; one that may have acted is `unknown`, not `error`.
        Either may hide a payment the PSP made after all (a refusal on the request's
        merits too, once in a while): reconciliation searches the PSP for it later."""
        now = self.clock.now()
        doubtful = exc.outcome_unknown or exc.code == INVALID_REQUEST
        async with self.db.transaction() as conn:
            await attempt_rows.finish(
                conn,
                attempt.id,
                status="unknown" if exc.outcome_unknown else "error",
                now=now,
                error_code=exc.code,
                error_message=exc.message,
                search_after=now if doubtful else None,
            )
            await record_events(conn, intent, [_error_event(attempt, exc)], now)

    async def _attempt_unknown(
        self, intent: PaymentIntent, attempt: Attempt, exc: ProviderError
    ) -> None:
        """The card may have been charged: keep the attempt pending for a replay. If the
        PSP says its key was used with other parameters, a replay cannot tell: the
        attempt is marked for reconciliation to search the PSP instead."""
        now = self.clock.now()
        async with self.db.transaction() as conn:
            if exc.code == IDEMPOTENCY_MISMATCH:
                await attempt_rows.finish(
                    conn,
                    attempt.id,
                    status="pending",
                    now=now,
                    error_code=exc.code,
                    error_message=exc.message,
                    search_after=now,
                )
            await record_events(conn, intent, [_error_event(attempt, exc)], now)

    async def _apply(self, run: _Run, attempt: Attempt, payment: ProviderPayment) -> MutationResult:
        """Store what the PSP answered and move the intent accordingly, in one
        transaction. First from the intent as read before the lease, without reading
        it again (on PostgreSQL one statement: no BEGIN, locked read or COMMIT of its
        own); that is refused if the intent moved meanwhile or a webhook for the
        payment waits in the inbox, and then it is read, locked and settled as it is
        now."""
        now = self.clock.now()
        if run.intent.status is PaymentIntentStatus.REQUIRES_PAYMENT_METHOD:
            try:
                return await self._settle(run, attempt, payment, now, read=False)
            except DBAPIError as error:
                if not intent_rows.moved_meanwhile(error):
                    raise
        return await self._settle(run, attempt, payment, now, read=True)

    async def _settle(
        self, run: _Run, attempt: Attempt, payment: ProviderPayment, now: datetime, *, read: bool
    ) -> MutationResult:
        target = CONFIRM_OUTCOMES[payment.status]
        error = None
        if target is PaymentIntentStatus.FAILED:
            code = payment.error_code or "PAYMENT_FAILED"
            message = payment.error_message or "the payment failed"
            error = PaymentError(code, message, attempt.provider)
        names = [n for n in (payment.provider_ref, *payment.lookup_keys) if n]
        async with self.db.transaction() as conn:
            await attempt_rows.finish(
                conn,
                attempt.id,
                status=payment.status.value,
                now=now,
                provider_ref=payment.provider_ref or None,
                response=payment.raw,
                error_code=error.code if error else None,
                error_message=error.message if error else None,
            )
            current, waiting = run.intent, False
            if read:
                locked, waiting = await intent_rows.get_locked_seeing(
                    conn, run.intent.id, attempt.provider, names
                )
                assert locked is not None
                current = locked
            response = NewAuditEvent(
                "provider.response",
                provider=attempt.provider,
                data={
                    "attempt": attempt.id,
                    "provider_ref": payment.provider_ref,
                    "provider_status": payment.status.value,
                },
            )
            await handles.remember(conn, attempt.provider, names, current.id, attempt.id)
            if current.status is not PaymentIntentStatus.REQUIRES_PAYMENT_METHOD:
                # Only a replay finds the intent moved on (its webhook came first).
                await record_events(conn, current, [response], now)
                await intent_rows.release_lease(conn, current.id, run.lease_until)
                result = MutationResult(current)
                await idempotency.finish(conn, run.keyed, result, now)
                return result
            after = current.moved_to(
                target,
                now,
                method=PaymentMethodType(attempt.method),
                provider=attempt.provider,
                next_action=payment.next_action,
                last_error=error,
                amount_received=_received(current.amount, payment, target),
                expires_at=_expiry(payment, attempt),
                installments=None if error else attempt.request.get("installments"),
                **authorization(current, target, now),
            )
            confirmed = NewAuditEvent(
                "intent.confirmed", provider=attempt.provider, data={"method": attempt.method}
            )
            status = status_event(after, code=error.code if error else None)
            await record_change(
                conn,
                current,
                after,
                [response, confirmed, status],
                now,
                locked=read,
                unless_waiting=None if read else (attempt.provider, names),
            )
            # A webhook that beat this commit waited in the inbox: apply it now.
            if waiting and await apply_waiting(conn, attempt.provider, names, now):
                after = await intent_rows.get(conn, current.id) or after
            result = MutationResult(after, (_user_error(error, after),) if error else ())
            await idempotency.finish(conn, run.keyed, result, now)
        return result


def _error_event(attempt: Attempt, exc: ProviderError) -> NewAuditEvent:
    return NewAuditEvent(
        "provider.error",
        provider=attempt.provider,
        data={
            "attempt": attempt.id,
            "code": exc.code,
            "message": exc.message,
            "retryable": exc.retryable,
            "outcome_unknown": exc.outcome_unknown,
        },
    )


def _user_error(error: PaymentError, intent: PaymentIntent) -> CobroError:
    """The contract code for a failed payment: a card that failed is a declined card."""
    if error.code in _CONTRACT_ERRORS:
        return _CONTRACT_ERRORS[error.code](error.message, ("input",))
    if intent.method is PaymentMethodType.CARD:
        return CardDeclined(error.message, ("input",))
    return PaymentFailed(error.message, ("input",))


def _received(amount: Money, payment: ProviderPayment, target: PaymentIntentStatus) -> Money:
    if target is not PaymentIntentStatus.SUCCEEDED:
        return Money.zero(amount.currency)
    received = payment.amount_received if payment.amount_received is not None else amount.minor
    return Money(received, amount.currency)


def _expiry(payment: ProviderPayment, attempt: Attempt) -> datetime | None:
    """When the customer's instructions stop working: the PSP's date, else ours."""
    action = payment.next_action
    if action is None:
        return None
    for name in ("expires_at", "quote_expires_at"):
        value = getattr(action, name, None)
        if value is not None:
            return value  # type: ignore[no-any-return]
    return PaymentRequest.from_dict(attempt.request).expires_at
