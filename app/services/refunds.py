"""Refund a paid intent, in full or in part, never beyond what was paid.

Cards go back through the card PSP that took the payment. Cash and bank payments
(OXXO, SPEI, and crypto, which settled in pesos) go back by an SPEI transfer to the
customer's CLABE. The refund row, with its idempotency key, is committed before the
PSP call; `amountRefunded` grows once the PSP accepts it, and refunds still waiting
for an answer count against what is left, so two refunds at once cannot exceed it.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import attempts as attempt_rows
from app.db.repositories import intents as intent_rows
from app.db.repositories import refunds as refund_rows
from app.db.repositories.audit import NewAuditEvent
from app.db.repositories.refunds import RefundRow
from app.domain.clabe import validate_clabe
from app.domain.errors import (
    InvalidInput,
    InvalidState,
    NotFound,
    ProviderUnavailable,
    RefundExceedsAmount,
)
from app.domain.ids import new_id
from app.domain.intents import PaymentIntent
from app.domain.methods import PaymentMethodType
from app.domain.money import Money, parse_amount
from app.services import idempotency
from app.services.auth import Principal, can_read, require_secret_key
from app.services.changes import record_change, record_events
from app.services.results import MutationResult
from app.services.routing import Router
from providers.base import INVALID_REQUEST, ProviderError, ProviderStatus, RefundRequest

MAX_REASON = 500
OPERATION = "refundPaymentIntent"


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


class RefundService:
    def __init__(
        self, db: Database, clock: Clock, router: Router, spei_payout_providers: list[str]
    ) -> None:
        self.db = db
        self.clock = clock
        self.router = router
        self.payout_providers = spei_payout_providers

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
        if command.reason is not None and len(command.reason) > MAX_REASON:
            raise InvalidInput(f"reason is at most {MAX_REASON} characters", ("input", "reason"))
        digest = idempotency.request_hash(
            OPERATION,
            {
                "id": intent.id,
                "amount": amount.minor if amount else None,
                "reason": command.reason,
                "clabe": command.clabe,
            },
        )
        async with self.db.read() as conn:
            replayed = await idempotency.replay(
                conn,
                merchant_id=intent.merchant_id,
                operation=OPERATION,
                key=key,
                digest=digest,
                now=self.clock.now(),
            )
        if replayed is not None:
            return replayed
        if intent.amount_received.minor == 0:
            raise InvalidState(
                f"payment intent {intent.id} is {intent.status.value} and has received no money",
                ("input", "id"),
            )
        plan = await self._plan(intent, command.clabe)
        refund = await self._reserve(intent, amount, plan, command.reason)
        return await self._send(intent, refund, plan, command.reason, key, digest)

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
                f"{intent.method.value if intent.method else 'this'} payments are refunded by "
                "SPEI: give the customer's clabe",
                ("input", "clabe"),
            )
        valid = validate_clabe(clabe, ("input", "clabe"))
        return _Plan(self.payout_providers, valid, None)

    async def _reserve(
        self, intent: PaymentIntent, amount: Money | None, plan: _Plan, reason: str | None
    ) -> RefundRow:
        """Check what is left to refund and record the refund, in one transaction."""
        now = self.clock.now()
        async with self.db.transaction() as conn:
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
            refund = RefundRow(
                id=refund_id,
                intent_id=intent.id,
                merchant_id=intent.merchant_id,
                amount=wanted,
                currency=current.amount.currency.value,
                status="pending",
                provider=None,
                provider_ref=None,
                idempotency_key=f"cobro-{refund_id}",
                clabe=plan.clabe,
            )
            await refund_rows.insert_refund(conn, refund, reason=reason, now=now)
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
        return refund

    async def _send(
        self,
        intent: PaymentIntent,
        refund: RefundRow,
        plan: _Plan,
        reason: str | None,
        key: str | None,
        digest: str,
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
                failures.append(exc)
                continue
            return await self._accepted(
                intent, refund, name, answer.provider_ref, answer.status, key, digest
            )
        await self._failed(intent, refund, failures)
        if failures and all(f.code == INVALID_REQUEST for f in failures):
            raise InvalidInput(f"the refund was refused: {failures[0].message}", ("input",))
        tried = "; ".join(f"{f.provider}: {f.message}" for f in failures) or "no provider is up"
        raise ProviderUnavailable(f"the refund could not be sent ({tried}); nothing changed")

    async def _accepted(
        self,
        intent: PaymentIntent,
        refund: RefundRow,
        provider: str,
        provider_ref: str,
        status: ProviderStatus,
        key: str | None,
        digest: str,
    ) -> MutationResult:
        done = status is ProviderStatus.SUCCEEDED
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await refund_rows.set_status(
                conn,
                refund.id,
                "succeeded" if done else "processing",
                now,
                provider=provider,
                provider_ref=provider_ref,
            )
            current = await intent_rows.get(conn, intent.id, for_update=True)
            assert current is not None
            after = current.changed(
                now,
                amount_refunded=current.amount_refunded
                + Money(refund.amount, current.amount.currency),
            )
            event = NewAuditEvent(
                "refund.succeeded" if done else "refund.processing",
                provider=provider,
                data={
                    "refund": refund.id,
                    "amount": _decimal(refund.amount, current),
                    "provider_ref": provider_ref,
                },
            )
            await record_change(conn, current, after, [event], now)
            result = MutationResult(after)
            await idempotency.remember(
                conn,
                merchant_id=intent.merchant_id,
                operation=OPERATION,
                key=key,
                digest=digest,
                result=result,
                now=now,
            )
        return result

    async def _failed(
        self, intent: PaymentIntent, refund: RefundRow, failures: list[ProviderError]
    ) -> None:
        message = "; ".join(f"{f.provider}: {f.message}" for f in failures) or "no provider is up"
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await refund_rows.set_status(conn, refund.id, "failed", now, error_message=message)
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


def _decimal(minor: int, intent: PaymentIntent) -> str:
    return Money(minor, intent.amount.currency).to_decimal_string()
