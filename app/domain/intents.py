"""The payment intent: its statuses, which transitions are allowed, and the value type.

Final statuses are final: nothing moves an intent out of SUCCEEDED, FAILED,
CANCELED or EXPIRED (tests/domain/test_intents.py walks every pair).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from app.domain.cards import AUTHORIZATION_LIFETIME, CaptureMethod
from app.domain.errors import InvalidState
from app.domain.methods import PaymentMethodType
from app.domain.money import Currency, Money
from app.domain.next_action import NextAction


class PaymentIntentStatus(enum.StrEnum):
    REQUIRES_PAYMENT_METHOD = "REQUIRES_PAYMENT_METHOD"
    REQUIRES_ACTION = "REQUIRES_ACTION"
    REQUIRES_CAPTURE = "REQUIRES_CAPTURE"  # authorized; waits for capturePaymentIntent
    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"


S = PaymentIntentStatus

FINAL_STATUSES = frozenset({S.SUCCEEDED, S.FAILED, S.CANCELED, S.EXPIRED})

ALLOWED_TRANSITIONS: dict[PaymentIntentStatus, frozenset[PaymentIntentStatus]] = {
    S.REQUIRES_PAYMENT_METHOD: frozenset(
        {
            S.REQUIRES_ACTION,
            S.REQUIRES_CAPTURE,
            S.PROCESSING,
            S.SUCCEEDED,
            S.FAILED,
            S.CANCELED,
            S.EXPIRED,
        }
    ),
    S.REQUIRES_ACTION: frozenset(
        {S.REQUIRES_CAPTURE, S.PROCESSING, S.SUCCEEDED, S.FAILED, S.CANCELED, S.EXPIRED}
    ),
    # An authorization is captured (all or part), voided, or lapses (voided: CANCELED).
    S.REQUIRES_CAPTURE: frozenset({S.SUCCEEDED, S.CANCELED}),
    # Money in flight can only land or bounce; Stripe allows no cancel here either.
    S.PROCESSING: frozenset({S.SUCCEEDED, S.FAILED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELED: frozenset(),
    S.EXPIRED: frozenset(),
}

CANCELABLE = frozenset({S.REQUIRES_PAYMENT_METHOD, S.REQUIRES_ACTION, S.REQUIRES_CAPTURE})


def can_transition(current: PaymentIntentStatus, target: PaymentIntentStatus) -> bool:
    return target in ALLOWED_TRANSITIONS[current]


def is_final(status: PaymentIntentStatus) -> bool:
    return status in FINAL_STATUSES


@dataclass(frozen=True, slots=True)
class PaymentError:
    """Why the last attempt failed, as the contract's `PaymentError` shows it."""

    code: str
    message: str
    provider: str | None = None


# The default of `amount_capturable`, made the intent's own zero when it is built.
NOTHING_HELD = Money.zero(Currency.MXN)


@dataclass(frozen=True, slots=True)
class PaymentIntent:
    """One payment the merchant wants to collect, at one version of its life."""

    id: str
    merchant_id: str
    status: PaymentIntentStatus
    version: int
    amount: Money
    amount_received: Money
    amount_refunded: Money
    client_secret: str
    created_at: datetime
    updated_at: datetime
    method: PaymentMethodType | None = None
    provider: str | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None
    allowed_methods: tuple[PaymentMethodType, ...] = ()
    next_action: NextAction | None = None
    last_error: PaymentError | None = None
    expires_at: datetime | None = None
    # Meses sin intereses: the months the card payment is split into (None: one payment).
    installments: int | None = None
    # Capture later (contract section 7): MANUAL authorizes at confirmation and waits in
    # REQUIRES_CAPTURE for capturePaymentIntent until `capture_before`, holding
    # `amount_capturable` (zero otherwise, in the intent's currency: __post_init__).
    capture_method: CaptureMethod = CaptureMethod.AUTOMATIC
    amount_capturable: Money = NOTHING_HELD
    capture_before: datetime | None = None

    def __post_init__(self) -> None:
        held = self.amount_capturable
        if not held.minor and held.currency is not self.amount.currency:
            object.__setattr__(self, "amount_capturable", Money.zero(self.amount.currency))

    @property
    def capture_later(self) -> bool:
        return self.capture_method is CaptureMethod.MANUAL

    def allows(self, method: PaymentMethodType) -> bool:
        return not self.allowed_methods or method in self.allowed_methods

    def changed(self, now: datetime, **changes: Any) -> PaymentIntent:
        """A new version of this intent: every change bumps `version` by one."""
        return replace(self, version=self.version + 1, updated_at=now, **changes)

    def moved_to(self, status: PaymentIntentStatus, now: datetime, **changes: Any) -> PaymentIntent:
        """The intent in `status`, or InvalidState when the machine forbids the move."""
        if not can_transition(self.status, status):
            raise InvalidState(
                f"payment intent {self.id} is {self.status.value} and cannot become {status.value}"
            )
        return self.changed(now, status=status, **changes)


# Fields no API shows: whose intent it is (the caller is that merchant) and the methods
# it accepts (checked on confirmation). Every other field is public: the GraphQL
# `PaymentIntent` has it (tests/domain/test_plain.py) and so does a merchant webhook's
# object (app/services/webhook_events.py).
INTERNAL_FIELDS = ("merchant_id", "allowed_methods")


def authorization(
    intent: PaymentIntent, status: PaymentIntentStatus, now: datetime
) -> dict[str, Any]:
    """The fields an intent takes on when it reaches `status`: an authorization waits
    with all of its amount capturable until the hold lapses; anything else holds none."""
    if status is S.REQUIRES_CAPTURE:
        return {
            "amount_capturable": intent.amount,
            "capture_before": now + AUTHORIZATION_LIFETIME,
        }
    held = intent.amount_capturable.minor
    return {"amount_capturable": Money.zero(intent.amount.currency)} if held else {}
