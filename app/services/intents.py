"""Create, read, list and cancel payment intents."""

from __future__ import annotations

import base64
import binascii
import builtins
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import attempts, audit
from app.db.repositories import intents as intent_rows
from app.db.repositories.audit import NewAuditEvent
from app.domain.cards import CaptureMethod
from app.domain.errors import (
    AmountOutOfRange,
    Forbidden,
    InvalidInput,
    InvalidState,
    NotFound,
    ProviderUnavailable,
    UnsupportedCurrency,
)
from app.domain.ids import looks_like_id, new_client_secret, new_intent_id
from app.domain.intents import CANCELABLE, PaymentIntent, PaymentIntentStatus, authorization
from app.domain.methods import CURRENCIES, PaymentMethodType
from app.domain.money import Currency, Money, parse_amount
from app.domain.records import AuditRecord
from app.domain.text import check_text
from app.services import idempotency
from app.services.auth import (
    KeyKind,
    Principal,
    can_read,
    require_principal,
    require_secret_key,
)
from app.services.changes import record_change, record_new, status_event
from app.services.results import MutationResult
from app.services.routing import MethodOption, Router
from providers.base import ProviderError

MAX_DESCRIPTION = 1_000
# Stripe's metadata limits: 50 keys, 40-character keys, 500-character values.
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY = 40
MAX_METADATA_VALUE = 500
MAX_PAGE = 100
# Long enough to void a voucher at a PSP whose calls all time out.
CANCEL_LEASE = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class CreateIntent:
    amount: object
    currency: Currency = Currency.MXN
    description: str | None = None
    metadata: Any = None
    allowed_methods: tuple[PaymentMethodType, ...] | None = None
    idempotency_key: str | None = None
    capture_method: CaptureMethod = CaptureMethod.AUTOMATIC


@dataclass(frozen=True, slots=True)
class Page:
    intents: list[PaymentIntent]
    has_next_page: bool

    def cursor(self, intent: PaymentIntent) -> str:
        return encode_cursor(intent)


def encode_cursor(intent: PaymentIntent) -> str:
    raw = f"{intent.created_at.isoformat()}|{intent.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, prefix: str = "pi") -> tuple[datetime, str]:
    invalid = InvalidInput("after is not a cursor this API gave out", ("after",))
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, intent_id = raw.partition("|")
        moment = datetime.fromisoformat(created)
        if moment.tzinfo is None:
            raise invalid
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise invalid from None
    if not looks_like_id(intent_id, prefix):
        raise invalid
    return moment, intent_id


def validate_metadata(metadata: Any) -> dict[str, Any] | None:
    field = ("input", "metadata")
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise InvalidInput("metadata must be a JSON object of keys to values", field)
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidInput(f"metadata takes at most {MAX_METADATA_KEYS} keys", field)
    for key, value in metadata.items():
        if not key or len(key) > MAX_METADATA_KEY:
            raise InvalidInput(f"metadata keys are 1 to {MAX_METADATA_KEY} characters", field)
        if isinstance(value, dict | list):
            raise InvalidInput(
                f"metadata value of {key!r} must be a string, number or boolean", field
            )
        if isinstance(value, str):
            check_text(value, field, MAX_METADATA_VALUE)
    return metadata


def _check_cancelable(intent: PaymentIntent) -> None:
    if intent.status not in CANCELABLE:
        raise InvalidState(
            f"payment intent {intent.id} is {intent.status.value}; only "
            "REQUIRES_PAYMENT_METHOD, REQUIRES_ACTION or REQUIRES_CAPTURE can be canceled",
            ("input", "id"),
        )


class IntentService:
    def __init__(self, db: Database, clock: Clock, router: Router) -> None:
        self.db = db
        self.clock = clock
        self.router = router

    async def create(self, principal: Principal | None, command: CreateIntent) -> MutationResult:
        merchant_id = require_secret_key(principal).merchant_id
        key = idempotency.check_key(command.idempotency_key)
        amount = parse_amount(command.amount, command.currency, field=("input", "amount"))
        allowed = self.allowed_methods(command.allowed_methods, amount)
        metadata = validate_metadata(command.metadata)
        description = check_text(command.description, ("input", "description"), MAX_DESCRIPTION)
        manual = command.capture_method is CaptureMethod.MANUAL
        if manual and allowed and PaymentMethodType.CARD not in allowed:
            raise InvalidInput(
                "captureMethod MANUAL is for cards, and this intent allows none",
                ("input", "captureMethod"),
            )
        keyed = idempotency.keyed(
            merchant_id,
            "createPaymentIntent",
            key,
            lambda: {
                "amount": amount.minor,
                "currency": amount.currency.value,
                "description": description,
                "metadata": metadata,
                "allowed_methods": [m.value for m in allowed],
                # Only when asked, so keys stored before capture later compare the same.
                **({"capture_method": CaptureMethod.MANUAL.value} if manual else {}),
            },
        )
        now = self.clock.now()
        async with self.db.transaction() as conn:
            replayed = await idempotency.begin(conn, keyed, now)
            if replayed is not None:
                return replayed
            intent_id = new_intent_id()
            intent = PaymentIntent(
                id=intent_id,
                merchant_id=merchant_id,
                status=PaymentIntentStatus.REQUIRES_PAYMENT_METHOD,
                version=1,
                amount=amount,
                amount_received=Money.zero(amount.currency),
                amount_refunded=Money.zero(amount.currency),
                client_secret=new_client_secret(intent_id),
                created_at=now,
                updated_at=now,
                description=description,
                metadata=metadata,
                allowed_methods=allowed,
                capture_method=command.capture_method,
            )
            created = NewAuditEvent(
                "intent.created",
                status=intent.status.value,
                data={"amount": amount.to_decimal_string(), "currency": amount.currency.value},
            )
            await record_new(conn, intent, [created], now)
            result = MutationResult(intent)
            await idempotency.finish(conn, keyed, result, now)
        return result

    def allowed_methods(
        self, methods: tuple[PaymentMethodType, ...] | None, amount: Money
    ) -> tuple[PaymentMethodType, ...]:
        """The methods an intent (or a payment link's intents) may be paid with; the
        amount must fit one of them."""
        requested = tuple(dict.fromkeys(methods or ()))
        candidates = requested or tuple(
            m for m in PaymentMethodType if amount.currency.value in CURRENCIES[m]
        )
        in_currency = [m for m in candidates if amount.currency.value in CURRENCIES[m]]
        if not in_currency:
            raise UnsupportedCurrency(
                f"none of the allowed methods takes {amount.currency.value}",
                ("input", "currency"),
            )
        fitting = []
        for method in in_currency:
            low, high = self.router.amount_range(method, amount.currency)
            if low.minor <= amount.minor <= high.minor:
                fitting.append(method)
        if not fitting:
            ranges = "; ".join(
                "{}: {} to {}".format(
                    m.value,
                    *(x.to_decimal_string() for x in self.router.amount_range(m, amount.currency)),
                )
                for m in in_currency
            )
            raise AmountOutOfRange(
                f"{amount.to_decimal_string()} {amount.currency.value} fits no payment method "
                f"({ranges})",
                ("input", "amount"),
            )
        return requested

    async def payment_options(
        self, principal: Principal | None, amount: Money
    ) -> builtins.list[MethodOption]:
        """The methods a checkout may offer for `amount`. A client secret's checkout
        sees those its intent allows (Cobro's hosted checkout has nothing else)."""
        principal = require_principal(principal)
        options = self.router.options(amount)
        if principal.kind is not KeyKind.CLIENT_SECRET or principal.intent_id is None:
            return options
        intent = await self.get(principal, principal.intent_id)
        if intent is None:
            raise Forbidden("this client secret opens no intent")
        allowed = intent.allowed_methods
        return [o for o in options if not allowed or o.type in allowed]

    async def get(self, principal: Principal | None, intent_id: str) -> PaymentIntent | None:
        """The intent, or None when it does not exist or the caller may not see it."""
        principal = require_principal(principal)
        if not looks_like_id(intent_id, "pi"):
            return None
        async with self.db.read() as conn:
            intent = await intent_rows.get(conn, intent_id)
        return intent if intent is not None and can_read(principal, intent) else None

    async def list(
        self,
        principal: Principal | None,
        *,
        first: int,
        after: str | None,
        status: PaymentIntentStatus | None,
    ) -> Page:
        merchant_id = require_secret_key(principal).merchant_id
        if not 1 <= first <= MAX_PAGE:
            raise InvalidInput(f"first must be between 1 and {MAX_PAGE}", ("first",))
        position = decode_cursor(after) if after else None
        async with self.db.read() as conn:
            found = await intent_rows.page(
                conn, merchant_id, limit=first + 1, after=position, status=status
            )
        return Page(found[:first], has_next_page=len(found) > first)

    async def events(self, intent_ids: builtins.list[str]) -> dict[str, builtins.list[AuditRecord]]:
        async with self.db.read() as conn:
            return await audit.for_intents(conn, intent_ids)

    async def cancel(self, principal: Principal | None, intent_id: str) -> MutationResult:
        principal = require_secret_key(principal)
        intent = await self.get(principal, intent_id)
        if intent is None:
            raise NotFound(f"no payment intent {intent_id}", ("input", "id"))
        _check_cancelable(intent)
        now = self.clock.now()
        until = now + CANCEL_LEASE
        async with self.db.transaction() as conn:
            if not await intent_rows.take_lease(conn, intent.id, intent.version, now, until):
                raise InvalidState(
                    f"payment intent {intent.id} is being confirmed or just changed; "
                    "fetch it and retry",
                    ("input", "id"),
                )
        try:
            events = await self._cancel_at_provider(intent)
        except BaseException:
            async with self.db.transaction() as conn:
                await intent_rows.release_lease(conn, intent.id, until)
            raise
        now = self.clock.now()
        async with self.db.transaction() as conn:
            current = await intent_rows.get(conn, intent.id, for_update=True)
            assert current is not None
            if current.status not in CANCELABLE:
                await intent_rows.release_lease(conn, intent.id, until)
                _check_cancelable(current)
            canceled = current.moved_to(
                PaymentIntentStatus.CANCELED,
                now,
                next_action=None,
                expires_at=None,
                **authorization(current, PaymentIntentStatus.CANCELED, now),
            )
            await record_change(
                conn, current, canceled, [*events, status_event(canceled, reason="requested")], now
            )
        return MutationResult(canceled)

    async def _cancel_at_provider(self, intent: PaymentIntent) -> builtins.list[NewAuditEvent]:
        """Tell the PSP holding a voucher, a transfer reference or a card authorization
        to void it first."""
        held = (PaymentIntentStatus.REQUIRES_ACTION, PaymentIntentStatus.REQUIRES_CAPTURE)
        if intent.status not in held or not intent.provider:
            return []
        async with self.db.read() as conn:
            attempt = await attempts.latest_with_ref(conn, intent.id, intent.provider)
        if attempt is None or intent.provider not in self.router.providers:
            return []
        ref = attempt.provider_ref
        assert ref is not None
        try:
            await self.router.call(
                intent.provider,
                lambda p: p.cancel_payment(ref, f"cancel-{attempt.id}"),
            )
        except ProviderError as exc:
            raise ProviderUnavailable(
                f"{intent.provider} could not void the payment: {exc.message}; nothing changed"
            ) from exc
        return [
            NewAuditEvent("provider.canceled", provider=intent.provider, data={"provider_ref": ref})
        ]
