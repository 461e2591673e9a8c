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

    @property
    def version(self) -> int:
        return self.intent.version

    @classmethod
    def from_entry(cls, entry: OutboxEntry) -> Change:
        return cls(intent_from_dict(entry.payload), entry.event_type)


def encode(change: Change) -> bytes:
    return orjson.dumps({"intent": intent_to_dict(change.intent), "event_type": change.event_type})


def decode(data: bytes | str) -> Change:
    message = orjson.loads(data)
    return Change(intent_from_dict(message["intent"]), message["event_type"])
