"""Confirm an intent: route it to a PSP, fail over, and never pay twice.

Crash safety: each attempt is written (with its idempotency key and the exact
request) before the PSP is called. If the process dies between the call and our
commit, the attempt stays "pending"; the next confirmation of the intent first
replays that attempt with the same key, so the PSP answers what it did the first
time instead of charging again. A lease on the intent keeps two confirmations
from running at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import attempts as attempt_rows
from app.db.repositories import handles
from app.db.repositories import intents as intent_rows
from app.db.repositories.attempts import Attempt
from app.db.repositories.audit import NewAuditEvent
from app.domain.clabe import validate_clabe
from app.domain.errors import (
    CardDeclined,
    CobroError,
    Forbidden,
    InvalidInput,
    InvalidState,
    MethodNotAllowed,
    NotFound,
    ProviderUnavailable,
    QuoteExpired,
)
from app.domain.expiry import oxxo_expires_at, oxxo_expiry_days
from app.domain.ids import new_id
from app.domain.intents import PaymentError, PaymentIntent, PaymentIntentStatus
from app.domain.methods import PaymentMethodType
from app.domain.money import Money
from app.services import idempotency
from app.services.auth import KeyKind, Principal, can_read, require_principal
from app.services.changes import record_change, record_events, status_event
from app.services.outcomes import CONFIRM_OUTCOMES
from app.services.provider_events import apply_waiting
from app.services.results import MutationResult
from app.services.routing import Router
from providers.base import (
    INVALID_REQUEST,
    PaymentRequest,
    ProviderError,
    ProviderPayment,
)

# Error codes a PSP answer can carry that the contract names.
_CONTRACT_ERRORS: dict[str, type[CobroError]] = {
    "CARD_DECLINED": CardDeclined,
    "QUOTE_EXPIRED": QuoteExpired,
}

# Crypto assets and the networks we accept deposits on.
CRYPTO_NETWORKS = {
    "USDC": frozenset({"polygon", "ethereum", "solana"}),
    "USDT": frozenset({"polygon", "ethereum", "tron"}),
    "BTC": frozenset({"bitcoin"}),
}


@dataclass(frozen=True, slots=True)
class CardOptions:
    token: str


@dataclass(frozen=True, slots=True)
class OxxoOptions:
    customer_name: str | None = None
    email: str | None = None
    expires_in_days: int | None = None


@dataclass(frozen=True, slots=True)
class SpeiOptions:
    payer_clabe: str | None = None


@dataclass(frozen=True, slots=True)
class CryptoOptions:
    asset: str = "USDC"
    network: str = "polygon"


@dataclass(frozen=True, slots=True)
class ConfirmIntent:
    intent_id: str
    method: PaymentMethodType
    card: CardOptions | None = None
    oxxo: OxxoOptions | None = None
    spei: SpeiOptions | None = None
    crypto: CryptoOptions | None = None
    idempotency_key: str | None = None

    def fingerprint(self) -> dict[str, object]:
        """What the client asked for, to compare idempotent retries with."""
        fields = asdict(self)
        del fields["idempotency_key"]
        return fields


@dataclass(frozen=True, slots=True)
class _Run:
    """One confirmation in progress: the intent as first read and its idempotency key."""

    intent: PaymentIntent
    key: str | None
    digest: str


class ConfirmService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        router: Router,
        *,
        lease_seconds: float,
        spei_expiry: timedelta,
    ) -> None:
        self.db = db
        self.clock = clock
        self.router = router
        self.lease = timedelta(seconds=lease_seconds)
        self.spei_expiry = spei_expiry

    async def confirm(self, principal: Principal | None, command: ConfirmIntent) -> MutationResult:
        principal = require_principal(principal)
        if principal.kind is KeyKind.PUBLISHABLE:
            raise Forbidden("confirming needs the intent's client secret or your secret key")
        key = idempotency.check_key(command.idempotency_key)
        async with self.db.read() as conn:
            intent = await intent_rows.get(conn, command.intent_id)
        if intent is None or not can_read(principal, intent):
            raise NotFound(f"no payment intent {command.intent_id}", ("input", "id"))
        request = self._request(intent, command)
        run = _Run(
            intent, key, idempotency.request_hash("confirmPaymentIntent", command.fingerprint())
        )
        async with self.db.read() as conn:
            replayed = await idempotency.replay(
                conn,
                merchant_id=intent.merchant_id,
                operation="confirmPaymentIntent",
                key=key,
                digest=run.digest,
                now=self.clock.now(),
            )
        if replayed is not None:
            return replayed
        self._check_confirmable(intent, command.method)
        candidates = self.router.candidates(command.method)
        pending = await self._take_lease(intent)
        try:
            result = await self._recover(run, pending) if pending else None
            return result or await self._attempt_each(run, request, candidates)
        except BaseException:
            await self._release_lease(intent.id)
            raise

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

    def _request(self, intent: PaymentIntent, command: ConfirmIntent) -> PaymentRequest:
        """The PSP request for this confirmation, refusing inputs for another method."""
        method = command.method
        given = {
            PaymentMethodType.CARD: command.card is not None,
            PaymentMethodType.OXXO: command.oxxo is not None,
            PaymentMethodType.SPEI: command.spei is not None,
            PaymentMethodType.CRYPTO: command.crypto is not None,
        }
        for other, present in given.items():
            if present and other is not method:
                raise InvalidInput(
                    f"{other.value.lower()} input given for method {method.value}",
                    ("input", other.value.lower()),
                )
        base = {
            "intent_id": intent.id,
            "amount": intent.amount,
            "method": method,
            "description": intent.description,
        }
        now = self.clock.now()
        if method is PaymentMethodType.CARD:
            token = (command.card.token if command.card else "").strip()
            if not token or len(token) > 200:
                raise InvalidInput("card.token is required for CARD", ("input", "card", "token"))
            return PaymentRequest(**base, card_token=token)
        if method is PaymentMethodType.OXXO:
            oxxo = command.oxxo or OxxoOptions()
            days = oxxo_expiry_days(oxxo.expires_in_days)
            return PaymentRequest(
                **base,
                customer_name=_short(oxxo.customer_name, "customerName", "oxxo"),
                customer_email=_email(oxxo.email),
                expires_in_days=days,
                expires_at=oxxo_expires_at(now, days),
            )
        if method is PaymentMethodType.SPEI:
            payer = (command.spei or SpeiOptions()).payer_clabe
            if payer is not None:
                payer = validate_clabe(payer, ("input", "spei", "payerClabe"))
            return PaymentRequest(**base, payer_clabe=payer, expires_at=now + self.spei_expiry)
        crypto = command.crypto or CryptoOptions()
        asset = crypto.asset.upper()
        if asset not in CRYPTO_NETWORKS or crypto.network not in CRYPTO_NETWORKS[asset]:
            options = "; ".join(
                f"{a} on {', '.join(sorted(n))}" for a, n in CRYPTO_NETWORKS.items()
            )
            raise InvalidInput(
                f"{crypto.asset} on {crypto.network} is not accepted ({options})",
                ("input", "crypto"),
            )
        return PaymentRequest(**base, crypto_asset=asset, crypto_network=crypto.network)

    # -- the lease -------------------------------------------------------------------

    async def _take_lease(self, intent: PaymentIntent) -> list[Attempt]:
        """Hold the intent for this confirmation; return attempts a crash left pending."""
        now = self.clock.now()
        async with self.db.transaction() as conn:
            taken = await intent_rows.take_lease(
                conn, intent.id, intent.version, now, now + self.lease
            )
            if not taken:
                raise InvalidState(
                    f"payment intent {intent.id} is being confirmed or just changed; "
                    "fetch it and retry",
                    ("input", "id"),
                )
            return await attempt_rows.pending_for(conn, intent.id)

    async def _release_lease(self, intent_id: str) -> None:
        async with self.db.transaction() as conn:
            await intent_rows.release_lease(conn, intent_id)

    # -- calling PSPs ----------------------------------------------------------------

    async def _recover(self, run: _Run, pending: list[Attempt]) -> MutationResult | None:
        """Replay attempts a crash interrupted, same key and request: the PSP repeats
        its first answer. The first that got through decides the outcome."""
        for attempt in pending:
            try:
                payment = await self._call(attempt)
            except ProviderError as exc:
                await self._attempt_failed(run.intent, attempt, exc)
                continue
            return await self._apply(run, attempt, payment)
        return None

    async def _call(self, attempt: Attempt) -> ProviderPayment:
        """Send the attempt's stored request with its stored key: the same bytes the
        first time and on a replay after a crash."""
        request = PaymentRequest.from_dict(attempt.request)
        return await self.router.call(
            attempt.provider, lambda p: p.create_payment(request, attempt.idempotency_key)
        )

    async def _attempt_each(
        self, run: _Run, request: PaymentRequest, candidates: list[str]
    ) -> MutationResult:
        failures: list[ProviderError] = []
        for name in candidates:
            attempt = await self._record_attempt(run.intent, name, request)
            try:
                payment = await self._call(attempt)
            except ProviderError as exc:
                await self._attempt_failed(run.intent, attempt, exc)
                failures.append(exc)
                continue
            return await self._apply(run, attempt, payment)
        if failures and all(f.code == INVALID_REQUEST for f in failures):
            # Every PSP answered and refused what the customer sent (say, an unknown
            # card token): that is the client's mistake, not an outage.
            raise InvalidInput(
                f"the payment was refused: {failures[0].message}",
                ("input", request.method.value.lower()),
            )
        tried = "; ".join(f"{f.provider}: {f.message}" for f in failures)
        tried = tried or "every provider's circuit is open"
        raise ProviderUnavailable(
            f"no provider could take this {request.method.value} payment ({tried}); "
            "the intent is unchanged, retry later"
        )

    async def _record_attempt(
        self, intent: PaymentIntent, provider: str, request: PaymentRequest
    ) -> Attempt:
        """Commit the attempt, its key and its exact request before the PSP hears of it."""
        attempt_id = new_id("pp")
        now = self.clock.now()
        async with self.db.transaction() as conn:
            number = await attempt_rows.allocate_reference_number(conn, attempt_id)
            attempt = Attempt(
                id=attempt_id,
                intent_id=intent.id,
                provider=provider,
                method=request.method.value,
                idempotency_key=f"cobro-{attempt_id}",
                status="pending",
                provider_ref=None,
                request=replace(request, reference_number=number).to_dict(),
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
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await attempt_rows.finish(
                conn,
                attempt.id,
                status="error",
                now=now,
                error_code=exc.code,
                error_message=exc.message,
            )
            await record_events(
                conn,
                intent,
                [
                    NewAuditEvent(
                        "provider.error",
                        provider=attempt.provider,
                        data={
                            "attempt": attempt.id,
                            "code": exc.code,
                            "message": exc.message,
                            "retryable": exc.retryable,
                        },
                    )
                ],
                now,
            )

    async def _apply(self, run: _Run, attempt: Attempt, payment: ProviderPayment) -> MutationResult:
        """Store what the PSP answered and move the intent accordingly, in one transaction."""
        target = CONFIRM_OUTCOMES[payment.status]
        now = self.clock.now()
        error = None
        if target is PaymentIntentStatus.FAILED:
            code = payment.error_code or "PAYMENT_FAILED"
            error = PaymentError(
                code, payment.error_message or "the payment failed", attempt.provider
            )
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
            current = await intent_rows.get(conn, run.intent.id, for_update=True)
            assert current is not None
            response = NewAuditEvent(
                "provider.response",
                provider=attempt.provider,
                data={
                    "attempt": attempt.id,
                    "provider_ref": payment.provider_ref,
                    "provider_status": payment.status.value,
                },
            )
            names = [payment.provider_ref, *payment.lookup_keys]
            await handles.remember(conn, attempt.provider, names, current.id, attempt.id)
            if current.status is not PaymentIntentStatus.REQUIRES_PAYMENT_METHOD:
                # Only a crash recovery finds the intent moved on: keep what it shows.
                await record_events(conn, current, [response], now)
                await intent_rows.release_lease(conn, current.id)
                return await self._remember(conn, run, MutationResult(current), now)
            after = current.moved_to(
                target,
                now,
                method=PaymentMethodType(attempt.method),
                provider=attempt.provider,
                next_action=payment.next_action,
                last_error=error,
                amount_received=_received(current.amount, payment, target),
                expires_at=_expiry(payment, attempt),
            )
            confirmed = NewAuditEvent(
                "intent.confirmed", provider=attempt.provider, data={"method": attempt.method}
            )
            await record_change(
                conn,
                current,
                after,
                [response, confirmed, status_event(after, code=error.code if error else None)],
                now,
            )
            # A webhook that beat this commit waited in the inbox: apply it now.
            if await apply_waiting(conn, attempt.provider, names, now):
                after = await intent_rows.get(conn, current.id) or after
            errors: tuple[CobroError, ...] = ()
            if error is not None:
                errors = (_CONTRACT_ERRORS.get(error.code, CobroError)(error.message, ("input",)),)
            return await self._remember(conn, run, MutationResult(after, errors), now)

    async def _remember(
        self, conn: AsyncConnection, run: _Run, result: MutationResult, now: datetime
    ) -> MutationResult:
        """Keep the result for retries with the same key, in the same transaction."""
        await idempotency.remember(
            conn,
            merchant_id=run.intent.merchant_id,
            operation="confirmPaymentIntent",
            key=run.key,
            digest=run.digest,
            result=result,
            now=now,
        )
        return result


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


def _short(value: str | None, name: str, group: str, limit: int = 200) -> str | None:
    if value is not None and len(value) > limit:
        raise InvalidInput(f"{name} is at most {limit} characters", ("input", group, name))
    return value


def _email(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or len(value) > 254 or " " in value:
        raise InvalidInput(f"{value!r} is not an email address", ("input", "oxxo", "email"))
    return value
