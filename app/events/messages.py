"""What travels on the broker: one committed intent or payout version, encoded once."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from app.db.repositories.outbox import OutboxEntry
from app.domain.codec import intent_from_dict, intent_to_dict
from app.domain.intents import PaymentIntent
from app.domain.payout_codec import is_payout_dict, payout_from_dict, payout_to_dict
from app.domain.payouts import Payout


def intent_channel(intent_id: str) -> str:
    return f"intent:{intent_id}"


def payout_channel(payout_id: str) -> str:
    return f"payout:{payout_id}"


def merchant_channel(merchant_id: str) -> str:
    return f"merchant:{merchant_id}"


@dataclass(frozen=True, slots=True)
class Change:
    intent: PaymentIntent
    event_type: str
    # The publisher's span, which each subscriber's push continues (app/trace_context.py).
    traceparent: str | None = None

    @property
    def version(self) -> int:
        return self.intent.version

    @classmethod
    def from_entry(cls, entry: OutboxEntry, traceparent: str | None = None) -> Change:
        return cls(intent_from_dict(entry.payload), entry.event_type, traceparent)


@dataclass(frozen=True, slots=True)
class PayoutChange:
    payout: Payout
    event_type: str
    traceparent: str | None = None

    @property
    def version(self) -> int:
        return self.payout.version


Message = Change | PayoutChange


def message_of(entry: OutboxEntry, traceparent: str | None = None) -> Message:
    """An outbox row as the broker carries it: a payout's row says so in its payload."""
    if is_payout_dict(entry.payload):
        return PayoutChange(payout_from_dict(entry.payload), entry.event_type, traceparent)
    return Change.from_entry(entry, traceparent)


def channels_of(entry: OutboxEntry) -> list[str]:
    """Payouts have a channel of their own; the merchant channel carries intents only
    (paymentIntentsUpdated)."""
    if is_payout_dict(entry.payload):
        return [payout_channel(entry.intent_id)]
    return [intent_channel(entry.intent_id), merchant_channel(entry.merchant_id)]


def encode(change: Message) -> bytes:
    message: dict[str, object] = (
        {"payout": payout_to_dict(change.payout)}
        if isinstance(change, PayoutChange)
        else {"intent": intent_to_dict(change.intent)}
    )
    message["event_type"] = change.event_type
    if change.traceparent is not None:
        message["traceparent"] = change.traceparent
    return orjson.dumps(message)


def decode(data: bytes | str) -> Message:
    message = orjson.loads(data)
    traceparent = message.get("traceparent")
    if not isinstance(traceparent, str):
        traceparent = None
    if "payout" in message:
        return PayoutChange(payout_from_dict(message["payout"]), message["event_type"], traceparent)
    return Change(intent_from_dict(message["intent"]), message["event_type"], traceparent)
