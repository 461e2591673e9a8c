"""Create, read, list and cancel SPEI payouts (contract section 8, secret key only).

A payout is recorded PENDING with its tracking key, reference and audit trail, its
idempotency key finished in the same transaction (so a retry finds this payout and
never makes a second one), and only then sent (services/payout_sending.py). A retry
with the same key answers the payout as it is now.
"""

from __future__ import annotations

import base64
import builtins
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import audit
from app.db.repositories import payouts as payout_rows
from app.db.repositories.audit import NewAuditEvent
from app.domain.cep import cep_url
from app.domain.clabe import bank_name, validate_clabe
from app.domain.errors import (
    AmountOutOfRange,
    InvalidInput,
    NotFound,
    PayoutNotCancelable,
)
from app.domain.ids import looks_like_id, new_id
from app.domain.money import Currency, Money, parse_amount
from app.domain.payouts import (
    Payout,
    PayoutStatus,
    reference_for,
    tracking_key_for,
    validate_beneficiary,
    validate_concept,
    validate_reference,
    validate_rfc,
)
from app.domain.records import AuditRecord
from app.services import idempotency
from app.services.auth import Principal, require_secret_key
from app.services.intents import MAX_PAGE, decode_cursor, validate_metadata
from app.services.live_payouts import PayoutLive
from app.services.payout_changes import payout_status_event, record_new_payout, record_payout_change
from app.services.payout_sending import SEND_LEASE, PayoutResult, PayoutSender

OPERATION = "createPayout"
# SPEI itself has no ceiling; this one keeps a typo of a few digits from going out.
MAX_PAYOUT = Money(99_999_999_99, Currency.MXN)  # 99,999,999.99 MXN
FIELD = ("input",)
CANCEL_LEASE = timedelta(seconds=5)  # held only while the cancel's transaction runs


@dataclass(frozen=True, slots=True)
class CreatePayout:
    amount: object
    clabe: str
    beneficiary_name: str
    concept: str
    reference: int | None = None
    rfc: str | None = None
    metadata: Any = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class PayoutPage:
    payouts: list[Payout]
    has_next_page: bool


class PayoutService:
    def __init__(
        self, db: Database, clock: Clock, sender: PayoutSender, live: PayoutLive, cep_base: str
    ) -> None:
        self.db = db
        self.clock = clock
        self.sender = sender
        self.live = live
        self.cep_base = cep_base

    def proof_url(self, payout: Payout) -> str | None:
        """Where the payout's CEP is fetched, once it was paid."""
        return cep_url(payout, self.cep_base)

    async def create(self, principal: Principal | None, command: CreatePayout) -> PayoutResult:
        merchant_id = require_secret_key(principal).merchant_id
        key = idempotency.check_key(command.idempotency_key)
        amount = parse_amount(command.amount, Currency.MXN, field=(*FIELD, "amount"))
        if amount.minor > MAX_PAYOUT.minor:
            raise AmountOutOfRange(
                f"a payout is at most {MAX_PAYOUT.to_decimal_string()} MXN", (*FIELD, "amount")
            )
        clabe = validate_clabe(command.clabe, (*FIELD, "clabe"))
        name = validate_beneficiary(command.beneficiary_name, (*FIELD, "beneficiaryName"))
        concept = validate_concept(command.concept, (*FIELD, "concept"))
        reference = (
            None
            if command.reference is None
            else validate_reference(command.reference, (*FIELD, "reference"))
        )
        rfc = validate_rfc(command.rfc, (*FIELD, "rfc"))
        metadata = validate_metadata(command.metadata)
        keyed = idempotency.keyed(
            merchant_id,
            OPERATION,
            key,
            lambda: {
                "amount": amount.minor,
                "clabe": clabe,
                "beneficiary_name": name,
                "concept": concept,
                "reference": reference,
                "rfc": rfc,
                "metadata": metadata,
            },
        )
        now = self.clock.now()
        lease = now + SEND_LEASE
        async with self.db.transaction() as conn:
            stored = await idempotency.begin_stored(conn, keyed, now)
            if stored is None:
                payout_id = new_id("po")
                payout = Payout(
                    id=payout_id,
                    merchant_id=merchant_id,
                    status=PayoutStatus.PENDING,
                    version=1,
                    amount=amount,
                    clabe=clabe,
                    bank=bank_name(clabe),
                    beneficiary_name=name,
                    concept=concept,
                    reference=reference or reference_for(payout_id),
                    tracking_key=tracking_key_for(payout_id),
                    created_at=now,
                    updated_at=now,
                    rfc=rfc,
                    metadata=metadata,
                )
                created = NewAuditEvent(
                    "payout.created",
                    data={
                        "status": payout.status.value,
                        "amount": amount.to_decimal_string(),
                        "clabe": clabe,
                        "tracking_key": payout.tracking_key,
                        "reference": payout.reference,
                    },
                )
                await record_new_payout(conn, payout, [created], now, lease_until=lease)
                await idempotency.finish_stored(conn, keyed, {"payout": payout_id}, payout_id, now)
        if stored is not None:
            return await self._replayed(stored)
        return await self.sender.send_new(payout, lease)

    async def _replayed(self, stored: dict[str, Any]) -> PayoutResult:
        async with self.db.read() as conn:
            payout = await payout_rows.get(conn, stored["payout"])
        return PayoutResult(payout)

    async def get(self, principal: Principal | None, payout_id: str) -> Payout | None:
        """The payout, or None when it does not exist or belongs to another merchant."""
        merchant_id = require_secret_key(principal).merchant_id
        if not looks_like_id(payout_id, "po"):
            return None
        async with self.db.read() as conn:
            payout = await payout_rows.get(conn, payout_id)
        return payout if payout is not None and payout.merchant_id == merchant_id else None

    async def list(
        self,
        principal: Principal | None,
        *,
        first: int,
        after: str | None,
        status: PayoutStatus | None,
    ) -> PayoutPage:
        merchant_id = require_secret_key(principal).merchant_id
        if not 1 <= first <= MAX_PAGE:
            raise InvalidInput(f"first must be between 1 and {MAX_PAGE}", ("first",))
        position = decode_cursor(after, "po") if after else None
        async with self.db.read() as conn:
            found = await payout_rows.page(
                conn, merchant_id, limit=first + 1, after=position, status=status
            )
        return PayoutPage(found[:first], has_next_page=len(found) > first)

    async def events(self, payout_ids: builtins.list[str]) -> dict[str, builtins.list[AuditRecord]]:
        async with self.db.read() as conn:
            return await audit.for_intents(conn, payout_ids)

    async def cancel(self, principal: Principal | None, payout_id: str) -> PayoutResult:
        """Cancel a payout no PSP has been asked to take: PENDING, not being sent, and
        with no attempt whose outcome is unknown (that one may have left)."""
        payout = await self.get(principal, payout_id)
        if payout is None:
            raise NotFound(f"no payout {payout_id}", ("id",))
        now = self.clock.now()
        async with self.db.transaction() as conn:
            current = await payout_rows.get(conn, payout.id, for_update=True)
            assert current is not None
            held = not await payout_rows.take_lease(conn, payout.id, now, now + CANCEL_LEASE)
            if current.status is not PayoutStatus.PENDING or held:
                raise PayoutNotCancelable(_why_not(current, held), ("id",))
            if await payout_rows.open_attempt(conn, payout.id) is not None:
                raise PayoutNotCancelable(
                    f"payout {payout.id} was sent and its PSP has not answered; "
                    "it cannot be called back",
                    ("id",),
                )
            canceled = current.moved_to(PayoutStatus.CANCELED, now)
            event = payout_status_event(canceled, reason="requested")
            await record_payout_change(conn, current, canceled, [event], now)
        return PayoutResult(canceled)


def payout_cursor(payout: Payout) -> str:
    """The same (created_at, id) cursor as intents' pages, over a payout."""
    raw = f"{payout.created_at.isoformat()}|{payout.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _why_not(payout: Payout, held: bool) -> str:
    if payout.status is PayoutStatus.PENDING and held:
        return f"payout {payout.id} is being sent right now; only a PENDING payout can be canceled"
    return f"payout {payout.id} is {payout.status.value}; only a PENDING payout can be canceled"
