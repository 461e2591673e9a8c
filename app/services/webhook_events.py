"""What a merchant's endpoint receives: Stripe's event shape around our intent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from app.domain.codec import error_to_dict, next_action_to_dict
from app.domain.intents import PaymentIntent
from app.domain.money import Money


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
    return {
        "id": intent.id,
        "object": "payment_intent",
        "status": intent.status.value,
        "version": intent.version,
        "amount": _money(intent.amount),
        "amountReceived": _money(intent.amount_received),
        "amountRefunded": _money(intent.amount_refunded),
        "method": intent.method.value if intent.method else None,
        "provider": intent.provider,
        "description": intent.description,
        "metadata": intent.metadata,
        "nextAction": next_action_to_dict(intent.next_action),
        "lastError": error_to_dict(intent.last_error),
        "createdAt": intent.created_at.isoformat(),
        "updatedAt": intent.updated_at.isoformat(),
        "expiresAt": intent.expires_at.isoformat() if intent.expires_at else None,
        "installments": intent.installments,
        "captureMethod": intent.capture_method.value,
        "amountCapturable": _money(intent.amount_capturable),
        "captureBefore": intent.capture_before.isoformat() if intent.capture_before else None,
    }


def _money(money: Money) -> dict[str, str]:
    return {"amount": money.to_decimal_string(), "currency": money.currency.value}
