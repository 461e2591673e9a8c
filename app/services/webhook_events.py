"""What a merchant's endpoint receives: Stripe's event shape around our intent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from app.domain.codec import RULES
from app.domain.intents import INTERNAL_FIELDS, PaymentIntent
from app.domain.plain import Codec, MoneyForm


def event_id(intent_id: str, version: int) -> str:
    """Stable per intent version: a relay that publishes twice enqueues once."""
    return f"evt_{intent_id.removeprefix('pi_')}_{version}"


def event_body(event: str, event_type: str, intent: PaymentIntent, created: datetime) -> str:
    return orjson.dumps(
        {
            "id": event,
            "type": event_type,
            "created": int(created.timestamp()),
            "data": {"object": intent_json(intent)},
        }
    ).decode()


def intent_json(intent: PaymentIntent) -> dict[str, Any]:
    """The intent as the GraphQL API names its fields (camelCase, decimal strings)."""
    return {"id": intent.id, "object": "payment_intent", **_PUBLIC_JSON.to_plain(intent)}


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)


# Every public field but the client secret, which only the API shows its owner.
_PUBLIC_JSON: Codec[PaymentIntent] = Codec(
    PaymentIntent,
    money=MoneyForm.DECIMAL,
    rules=RULES,
    exclude=(*INTERNAL_FIELDS, "client_secret"),
    key=_camel,
)
