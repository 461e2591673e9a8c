"""Refund a paid intent, in full or in part, never beyond what was paid.

Cards go back through the card PSP that took the payment. Cash and bank payments
(OXXO, SPEI, and crypto, which settled in pesos) go back by a payout to the
customer's CLABE: the refund row and its payout are recorded together, the payout is
sent like any other (failover, replays, callbacks: services/payout_sending.py) and
the refund follows it (services/refund_payouts.py). The refund row, with its
idempotency key, is committed before the PSP call; refunds not yet accepted count
against what is left, so two refunds at once cannot exceed it. A card refund whose
outcome is unknown (the PSP went silent after taking it) stays pending, its amount
held, and the worker resends it with the same key until the PSP says what it did: it
is never sent as a second, new refund.
An extra charge reconciliation found (a card charged twice) is refunded the same way,
by Cobro itself, against that charge rather than the intent's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from app import logs
from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import attempts as attempt_rows
from app.db.repositories import intents as intent_rows
from app.db.repositories import payouts as payout_rows
from app.db.repositories import refunds as refund_rows
from app.db.repositories.audit import NewAuditEvent
from app.db.repositories.refunds import RefundRow
from app.domain.clabe import bank_name, validate_clabe
from app.domain.errors import (
    CobroError,
    InvalidInput,
    InvalidState,
    NotFound,
    PaymentFailed,
    ProviderUnavailable,
    RefundExceedsAmount,
)
from app.domain.ids import new_id
from app.domain.intents import PaymentIntent
from app.domain.methods import PaymentMethodType
from app.domain.money import Currency, Money, parse_amount
from app.domain.payouts import (
    MAX_CONCEPT,
    Payout,
    PayoutStatus,
    reference_for,
    tracking_key_for,
    validate_concept,
)
from app.domain.refunds import Refund, public_status
from app.domain.text import check_text
from app.services import idempotency
from app.services.auth import Principal, can_read, require_secret_key
from app.services.changes import record_change, record_events
from app.services.failover import no_provider_error
from app.services.payout_changes import record_new_payout
from app.services.payout_sending import SEND_LEASE, PayoutSender
from app.services.refund_changes import move_refund, record_new_refund
from app.services.results import MutationResult
from app.services.routing import Router
from providers.base import ProviderError, ProviderRefund, ProviderStatus, RefundRequest

MAX_REASON = 500
EXTRA_CHARGE_REASON = "duplicate charge found by reconciliation, refunded by Cobro"
OPERATION = "refundPaymentIntent"
# SPEI needs a beneficiary name; a refund knows only the customer's CLABE.
REFUND_BENEFICIARY = "CLIENTE"
REFUND_CONCEPT = "DEVOLUCION"
BATCH = 50


@dataclass(frozen=True, slots=True)
class RefundCommand:
    intent_id: str
    amount: object = None
    reason: str | None = None
    clabe: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class _Plan:
    """Where the money goes back: which PSPs may carry it, and to which CLABE."""

    providers: list[str]
    clabe: str | None
    provider_ref: str | None
    extra: bool = False  # provider_ref is an extra charge, not the one that paid


class RefundService:
    def __init__(self, db: Database, clock: Clock, router: Router, sender: PayoutSender) -> None:
        self.db = db
        self.clock = clock
        self.router = router
        self.sender = sender

    async def refund(self, principal: Principal | None, command: RefundCommand) -> MutationResult:
        principal = require_secret_key(principal)
        key = idempotency.check_key(command.idempotency_key)
        async with self.db.read() as conn:
            intent = await intent_rows.get(conn, command.intent_id)
        if intent is None or not can_read(principal, intent):
            raise NotFound(f"no payment intent {command.intent_id}", ("input", "id"))
        amount = (
            None
            if command.amount is None
            else parse_amount(command.amount, intent.amount.currency, field=("input", "amount"))
        )
        reason = check_text(command.reason, ("input", "reason"), MAX_REASON)
        keyed = idempotency.Keyed(
            intent.merchant_id,
            OPERATION,
            key,
            idempotency.request_hash(
                OPERATION,
                {
                    "id": intent.id,
                    "amount": amount.minor if amount else None,
                    "reason": reason,
                    "clabe": command.clabe,
                },
            ),
        )
        async with self.db.read() as conn:
            replayed = await idempotency.replay(conn, keyed, self.clock.now())
        if replayed is not None:
            return replayed
        if intent.amount_received.minor == 0:
            raise InvalidState(
                f"payment intent {intent.id} is {intent.status.value} and has received no money",
                ("input", "id"),
            )
        plan = await self._plan(intent, command.clabe)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            # Claim the key, check what is left to refund and record the refund, at once.
            answered = await idempotency.begin(conn, keyed, now)
            if answered is not None:
                return answered  # a request with this key finished since the read above
            refund, payout = await self._reserve(conn, intent, amount, plan, reason, keyed, now)
        if payout is not None:
            return await self._send_payout(intent, refund, payout, keyed)
        return await self._send(intent, refund, plan, reason, keyed)

    async def reserve_extra(
        self,
        conn: AsyncConnection,
        intent: PaymentIntent,
        provider: str,
        charge_ref: str,
        amount: int,
        now: datetime,
    ) -> RefundRow:
        """Record the refund of a charge the intent did not need (all of it, to the card
        it came from) in the caller's transaction, the one that records the charge: a
        crash after it leaves a pending refund the worker sends, never extra money that
        nobody gives back."""
        plan = _Plan([provider], None, charge_ref, extra=True)
        keyed = idempotency.Keyed(intent.merchant_id, OPERATION, None, "")
        money = Money(amount, intent.amount.currency)
        refund, _ = await self._reserve(conn, intent, money, plan, EXTRA_CHARGE_REASON, keyed, now)
        return refund

    async def send_extra(self, intent: PaymentIntent, refund: RefundRow) -> None:
        """Send a refund `reserve_extra` recorded. Raises ProviderUnavailable if the PSP
        cannot be told now (an unknown outcome stays pending and the worker resends it)."""
        plan = _Plan([refund.provider or ""], None, refund.charge_ref, extra=True)
        keyed = idempotency.Keyed(intent.merchant_id, OPERATION, None, "")
        await self._send(intent, refund, plan, EXTRA_CHARGE_REASON, keyed)

    async def resolve_pending(self, older_than: timedelta) -> int:
        """Resend refunds whose outcome is unknown, same key (the worker's job)."""
        now = self.clock.now()
        async with self.db.read() as conn:
            stale = await refund_rows.stale_pending(conn, now - older_than, BATCH)
        settled = 0
        for refund in stale:
            async with self.db.read() as conn:
                intent = await intent_rows.get(conn, refund.intent_id)
            assert intent is not None
            if refund.charge_ref:
                plan = _Plan([refund.provider or ""], None, refund.charge_ref, extra=True)
            elif refund.clabe is not None:
                # Sent by SPEI before refunds rode on payouts (no payout carries it):
                # finish it as it was begun, at the first SPEI PSP (STP's refund order).
                plan = _Plan(self.sender.route[:1], refund.clabe, None)
            else:
                plan = await self._plan(intent, None)
            keyed = idempotency.Keyed(
                intent.merchant_id, OPERATION, refund.client_key, refund.request_hash or ""
            )
            try:
                await self._send(intent, refund, plan, refund.reason, keyed)
                settled += 1
            except (ProviderUnavailable, InvalidInput):
                continue
        return settled

    async def of_intents(self, intent_ids: list[str]) -> dict[str, list[Refund]]:
        """Each intent's refunds, oldest first, with the payout carrying each (for
        `PaymentIntent.refunds`; the caller has checked who may see them)."""
        async with self.db.read() as conn:
            rows = await refund_rows.of_intents(conn, intent_ids)
            carried = await payout_rows.ids_by_refund(
                conn, [r.id for found in rows.values() for r in found]
            )
        return {
            intent_id: [_public(r, carried.get(r.id)) for r in found]
            for intent_id, found in rows.items()
        }

    async def get(self, principal: Principal | None, refund_id: str) -> Refund | None:
        """The refund, or None when it does not exist or is another merchant's."""
        merchant_id = require_secret_key(principal).merchant_id
        async with self.db.read() as conn:
            row = await refund_rows.get(conn, refund_id)
            if row is None or row.merchant_id != merchant_id:
                return None
            carried = await payout_rows.ids_by_refund(conn, [row.id])
        return _public(row, carried.get(row.id))

    async def _plan(self, intent: PaymentIntent, clabe: str | None) -> _Plan:
        if intent.method is PaymentMethodType.CARD:
            if clabe is not None:
                raise InvalidInput(
                    "card payments go back to the card; leave clabe out", ("input", "clabe")
                )
            assert intent.provider is not None
            async with self.db.read() as conn:
                attempt = await attempt_rows.latest_with_ref(conn, intent.id, intent.provider)
            return _Plan([intent.provider], None, attempt.provider_ref if attempt else None)
        if clabe is None:
            raise InvalidInput(
                f"{intent.method.value if intent.method else 'these'} payments are refunded "
                "by SPEI: give the customer's clabe",
                ("input", "clabe"),
            )
        return _Plan([], validate_clabe(clabe, ("input", "clabe")), None)

    async def _reserve(
        self,
        conn: AsyncConnection,
        intent: PaymentIntent,
        amount: Money | None,
        plan: _Plan,
        reason: str | None,
        keyed: idempotency.Keyed,
        now: datetime,
    ) -> tuple[RefundRow, Payout | None]:
        """Record the refund in the caller's transaction, if that much is left to refund
        (refunds not yet accepted count as given back), and the payout that carries it
        when it goes back by SPEI."""
        current = await intent_rows.get(conn, intent.id, for_update=True)
        assert current is not None
        pending = await refund_rows.pending_total(conn, intent.id)
        left = current.amount_received.minor - current.amount_refunded.minor - pending
        wanted = amount.minor if amount is not None else left
        if wanted <= 0 or wanted > left:
            shown = Money(max(left, 0), current.amount.currency).to_decimal_string()
            raise RefundExceedsAmount(
                f"at most {shown} {current.amount.currency.value} is left to refund",
                ("input", "amount"),
            )
        refund_id = new_id("re")
        logs.note(payout_id=refund_id)
        refund = RefundRow(
            id=refund_id,
            intent_id=intent.id,
            merchant_id=intent.merchant_id,
            amount=wanted,
            currency=current.amount.currency.value,
            status="pending",
            provider=plan.providers[0] if plan.extra else None,
            provider_ref=None,
            idempotency_key=f"cobro-{refund_id}",
            clabe=plan.clabe,
            reason=reason,
            client_key=keyed.key,
            request_hash=keyed.digest,
            charge_ref=plan.provider_ref if plan.extra else None,
        )
        payout = None
        if plan.clabe is not None and not plan.extra:
            payout = await self._carry(conn, intent, refund, now)
        await record_new_refund(conn, refund, now)
        await record_events(
            conn,
            current,
            [
                NewAuditEvent(
                    "refund.requested",
                    data={
                        "refund": refund_id,
                        "amount": _decimal(wanted, current),
                        "clabe": plan.clabe,
                        "reason": reason,
                    },
                )
            ],
            now,
        )
        return refund, payout

    async def _send(
        self,
        intent: PaymentIntent,
        refund: RefundRow,
        plan: _Plan,
        reason: str | None,
        keyed: idempotency.Keyed,
    ) -> MutationResult:
        request = RefundRequest(
            refund_id=refund.id,
            intent_id=intent.id,
            amount=Money(refund.amount, intent.amount.currency),
            provider_ref=plan.provider_ref,
            clabe=plan.clabe,
            reason=reason,
        )
        failures: list[ProviderError] = []
        for name in plan.providers:
            try:
                answer = await self.router.call(
                    name, lambda p: p.refund(request, refund.idempotency_key)
                )
            except ProviderError as exc:
                if exc.outcome_unknown:
                    await self._unknown(intent, refund, exc)
                    raise ProviderUnavailable(
                        f"{name} did not say whether it sent the refund ({exc.message}); "
                        "it stays pending and Cobro will find out: it will not be sent twice"
                    ) from exc
                failures.append(exc)
                continue
            return await self._accepted(intent, refund, name, answer, keyed)
        await self._failed(intent, refund, failures, keyed)
        raise no_provider_error(failures, "refund", ("input",))

    async def _accepted(
        self,
        intent: PaymentIntent,
        refund: RefundRow,
        provider: str,
        answer: ProviderRefund,
        keyed: idempotency.Keyed,
    ) -> MutationResult:
        done = answer.status is ProviderStatus.SUCCEEDED
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await move_refund(
                conn,
                refund.id,
                "succeeded" if done else "processing",
                now,
                provider=provider,
                provider_ref=answer.provider_ref,
            )
            current = await intent_rows.get(conn, intent.id, for_update=True)
            assert current is not None
            refunded = current.amount_refunded + Money(refund.amount, current.amount.currency)
            after = current.changed(now, amount_refunded=refunded)
            event = NewAuditEvent(
                "refund.succeeded" if done else "refund.processing",
                provider=provider,
                data={
                    "refund": refund.id,
                    "amount": _decimal(refund.amount, current),
                    "provider_ref": answer.provider_ref,
                },
            )
            await record_change(conn, current, after, [event], now)
            result = MutationResult(after)
            await idempotency.finish(conn, keyed, result, now)
        return result

    async def _unknown(self, intent: PaymentIntent, refund: RefundRow, exc: ProviderError) -> None:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await move_refund(conn, refund.id, "pending", now, error_message=exc.message)
            await record_events(
                conn,
                intent,
                [
                    NewAuditEvent(
                        "refund.unknown",
                        provider=exc.provider,
                        data={"refund": refund.id, "message": exc.message},
                    )
                ],
                now,
            )

    async def _failed(
        self,
        intent: PaymentIntent,
        refund: RefundRow,
        failures: list[ProviderError],
        keyed: idempotency.Keyed,
    ) -> None:
        message = "; ".join(f"{f.provider}: {f.message}" for f in failures) or "no provider is up"
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await move_refund(conn, refund.id, "failed", now, error_message=message)
            await record_events(
                conn,
                intent,
                [
                    NewAuditEvent(
                        "refund.failed",
                        data={"refund": refund.id, "message": message},
                    )
                ],
                now,
            )
            await idempotency.release(conn, keyed)

    async def _carry(
        self, conn: AsyncConnection, intent: PaymentIntent, refund: RefundRow, now: datetime
    ) -> Payout:
        """Record the payout that carries `refund` to the customer's CLABE, in the
        refund's transaction (before the refund's own row refers to it)."""
        assert refund.clabe is not None
        payout_id = new_id("po")
        payout = Payout(
            id=payout_id,
            merchant_id=intent.merchant_id,
            status=PayoutStatus.PENDING,
            version=1,
            amount=Money(refund.amount, intent.amount.currency),
            clabe=refund.clabe,
            bank=bank_name(refund.clabe),
            beneficiary_name=REFUND_BENEFICIARY,
            concept=validate_concept(f"{REFUND_CONCEPT} {intent.id}"[:MAX_CONCEPT]),
            reference=reference_for(payout_id),
            tracking_key=tracking_key_for(payout_id),
            created_at=now,
            updated_at=now,
            refund_id=refund.id,
        )
        created = NewAuditEvent(
            "payout.created",
            data={
                "status": payout.status.value,
                "amount": payout.amount.to_decimal_string(),
                "clabe": payout.clabe,
                "tracking_key": payout.tracking_key,
                "reference": payout.reference,
                "refund": refund.id,
            },
        )
        await record_new_payout(conn, payout, [created], now, lease_until=now + SEND_LEASE)
        return payout

    async def _send_payout(
        self, intent: PaymentIntent, refund: RefundRow, payout: Payout, keyed: idempotency.Keyed
    ) -> MutationResult:
        """Send the refund's payout; the refund has followed it by the time this returns.
        A payout no PSP answered for stays PENDING and the worker sends it (same
        tracking key, same PSP if one may have taken it): the refund stays PENDING."""
        sent = await self.sender.send_new(payout, payout.created_at + SEND_LEASE)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            current = await intent_rows.get(conn, intent.id)
            assert current is not None
            errors: tuple[CobroError, ...] = ()
            if sent.payout is not None and sent.payout.status is PayoutStatus.FAILED:
                errors = (
                    PaymentFailed(
                        f"refund {refund.id} failed: its transfer was refused "
                        f"({sent.payout.failure_message}); nothing was sent",
                        ("input",),
                    ),
                )
            result = MutationResult(current, errors)
            await idempotency.finish(conn, keyed, result, now)
        return result


def _public(row: RefundRow, payout_id: str | None) -> Refund:
    assert row.created_at is not None
    return Refund(
        id=row.id,
        intent_id=row.intent_id,
        merchant_id=row.merchant_id,
        status=public_status(row.status),
        amount=Money(row.amount, Currency(row.currency)),
        reason=row.reason,
        payout_id=payout_id,
        created_at=row.created_at,
    )


def _decimal(minor: int, intent: PaymentIntent) -> str:
    return Money(minor, intent.amount.currency).to_decimal_string()
