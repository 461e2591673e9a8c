"""What news from a PSP does to an intent. Pure: the webhook service applies it.

Rules:
- Nothing moves backwards: news the status machine forbids (a `processing` after a
  `succeeded`) is ignored and recorded as such.
- Deposits (SPEI, crypto) add up: a transfer may fall short (the intent stays
  waiting, partially funded) or overshoot (it succeeds with more received).
- Money that arrives after the intent expired or was canceled is never dropped:
  the intent keeps its final status, `amountReceived` grows, and the change is
  a late payment the merchant is told about, so the money can be returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.domain.intents import (
    FINAL_STATUSES,
    PaymentError,
    PaymentIntent,
    PaymentIntentStatus,
    authorization,
    can_transition,
)
from app.domain.methods import PaymentMethodType
from app.domain.money import Money

S = PaymentIntentStatus

# Methods whose money arrives in deposits that add up, rather than all at once.
ACCUMULATING = frozenset({PaymentMethodType.SPEI, PaymentMethodType.CRYPTO})


@dataclass(frozen=True, slots=True)
class PaymentNews:
    """A PSP's word on a payment: the status it reports, and money paid in, if any."""

    status: PaymentIntentStatus | None
    amount: int | None = None  # minor units this news brings in
    provider: str | None = None
    detail: str | None = None  # the PSP's event name, for errors and the audit trail


@dataclass(frozen=True, slots=True)
class Decision:
    intent: PaymentIntent | None  # the new version; None when nothing changes
    note: str  # the audit event: intent.succeeded, payment.partial, payment.late, ...
    reason: str | None = None


def decide(intent: PaymentIntent, news: PaymentNews, now: datetime) -> Decision:
    if news.status is S.SUCCEEDED:
        return _money_in(intent, news, now)
    if news.status is None:
        return Decision(None, "webhook.ignored", "an event that changes no payment")
    if news.status is intent.status:
        return Decision(None, "webhook.ignored", f"already {intent.status.value}")
    if not can_transition(intent.status, news.status):
        return Decision(
            None,
            "webhook.ignored",
            f"{intent.status.value} cannot become {news.status.value}",
        )
    changes: dict[str, object] = {}
    if news.status in FINAL_STATUSES or news.status is S.REQUIRES_CAPTURE:
        changes["next_action"] = None  # nothing left for the customer to do
    changes |= authorization(intent, news.status, now)
    if news.status is S.FAILED:
        changes["last_error"] = PaymentError(
            "PAYMENT_FAILED", f"{news.provider} reported {news.detail}", news.provider
        )
    after = intent.moved_to(news.status, now, **changes)
    return Decision(after, f"intent.{news.status.value.lower()}")


def _money_in(intent: PaymentIntent, news: PaymentNews, now: datetime) -> Decision:
    currency = intent.amount.currency
    accumulates = intent.method in ACCUMULATING
    if accumulates and not news.amount:
        # A deposit with no figure says nothing we can credit; never assume "all of it".
        return Decision(None, "webhook.ignored", "a deposit without an amount")
    if intent.status in FINAL_STATUSES:
        extra = accumulates or (news.provider is not None and news.provider != intent.provider)
        if not (extra and news.amount):
            return Decision(None, "webhook.ignored", f"already {intent.status.value}")
        # Money on top of a final intent (a second transfer, a voucher paid at the PSP
        # that lost the race): recorded, never dropped; the merchant returns it.
        received = intent.amount_received + Money(news.amount, currency)
        return Decision(
            intent.changed(now, amount_received=received),
            "payment.late",
            f"{Money(news.amount, currency)} arrived after the intent was {intent.status.value}",
        )
    if accumulates:
        received = intent.amount_received + Money(news.amount or 0, currency)
    else:
        received = Money(news.amount if news.amount else intent.amount.minor, currency)
    captured = intent.status is S.REQUIRES_CAPTURE  # a capture may take part of it
    if received.minor < intent.amount.minor and not captured:
        return Decision(
            intent.changed(now, amount_received=received),
            "payment.partial",
            f"{received} of {intent.amount} received",
        )
    after = intent.moved_to(
        S.SUCCEEDED,
        now,
        amount_received=received,
        next_action=None,
        **authorization(intent, S.SUCCEEDED, now),
    )
    return Decision(after, "intent.succeeded")
