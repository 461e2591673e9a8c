"""What travels on the broker: one committed intent version, encoded once."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from app.db.repositories.outbox import OutboxEntry
from app.domain.codec import intent_from_dict, intent_to_dict
from app.domain.intents import PaymentIntent


def intent_channel(intent_id: str) -> str:
    return f"intent:{intent_id}"


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


def encode(change: Change) -> bytes:
    message: dict[str, object] = {
        "intent": intent_to_dict(change.intent),
        "event_type": change.event_type,
    }
    if change.traceparent is not None:
        message["traceparent"] = change.traceparent
    return orjson.dumps(message)


def decode(data: bytes | str) -> Change:
    message = orjson.loads(data)
    traceparent = message.get("traceparent")
    return Change(
        intent_from_dict(message["intent"]),
        message["event_type"],
        traceparent if isinstance(traceparent, str) else None,
    )
