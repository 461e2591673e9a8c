"""Plain-JSON forms of domain values, for database columns and broker messages.

Pure functions both ways; `intent_from_dict(intent_to_dict(i)) == i` is tested.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from app.domain.cards import CaptureMethod
from app.domain.intents import PaymentError, PaymentIntent, PaymentIntentStatus
from app.domain.methods import PaymentMethodType
from app.domain.money import Currency, Money
from app.domain.next_action import (
    CryptoInstructions,
    NextAction,
    OxxoVoucher,
    RedirectToUrl,
    SpeiInstructions,
)


def json_bytes(
    value: object, *, sort_keys: bool = False, default: Callable[[Any], Any] | None = None
) -> bytes:
    """`value` as JSON: by orjson, or by the standard library for what orjson refuses
    (integers beyond 64 bits, lone surrogates), so odd input never becomes a 500."""
    try:
        return orjson.dumps(
            value, option=orjson.OPT_SORT_KEYS if sort_keys else None, default=default
        )
    except TypeError:
        return json.dumps(
            value, sort_keys=sort_keys, default=default, separators=(",", ":")
        ).encode()


_NEXT_ACTION_TYPES: dict[str, type[NextAction]] = {
    "oxxo_voucher": OxxoVoucher,
    "spei_instructions": SpeiInstructions,
    "crypto_instructions": CryptoInstructions,
    "redirect_to_url": RedirectToUrl,
}
_NEXT_ACTION_NAMES = {cls: name for name, cls in _NEXT_ACTION_TYPES.items()}
_TIME_FIELDS = frozenset({"expires_at", "quote_expires_at"})


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def next_action_to_dict(action: NextAction | None) -> dict[str, Any] | None:
    if action is None:
        return None
    out: dict[str, Any] = {"type": _NEXT_ACTION_NAMES[type(action)]}
    for name in action.__slots__:
        value = getattr(action, name)
        out[name] = _time(value) if name in _TIME_FIELDS else value
    return out


def next_action_from_dict(data: dict[str, Any] | None) -> NextAction | None:
    if not data:
        return None
    fields = dict(data)
    cls = _NEXT_ACTION_TYPES[fields.pop("type")]
    for name in _TIME_FIELDS & fields.keys():
        fields[name] = _parse_time(fields[name])
    return cls(**fields)


def error_to_dict(error: PaymentError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"code": error.code, "message": error.message, "provider": error.provider}


def error_from_dict(data: dict[str, Any] | None) -> PaymentError | None:
    return None if not data else PaymentError(data["code"], data["message"], data.get("provider"))


def intent_to_dict(intent: PaymentIntent) -> dict[str, Any]:
    return {
        "id": intent.id,
        "merchant_id": intent.merchant_id,
        "status": intent.status.value,
        "version": intent.version,
        "currency": intent.amount.currency.value,
        "amount": intent.amount.minor,
        "amount_received": intent.amount_received.minor,
        "amount_refunded": intent.amount_refunded.minor,
        "client_secret": intent.client_secret,
        "created_at": _time(intent.created_at),
        "updated_at": _time(intent.updated_at),
        "method": intent.method.value if intent.method else None,
        "provider": intent.provider,
        "description": intent.description,
        "metadata": intent.metadata,
        "allowed_methods": [m.value for m in intent.allowed_methods],
        "next_action": next_action_to_dict(intent.next_action),
        "last_error": error_to_dict(intent.last_error),
        "expires_at": _time(intent.expires_at),
        "installments": intent.installments,
        "capture_method": intent.capture_method.value,
        "amount_capturable": intent.capturable,
        "capture_before": _time(intent.capture_before),
    }


def intent_from_dict(data: dict[str, Any]) -> PaymentIntent:
    currency = Currency(data["currency"])
    return PaymentIntent(
        id=data["id"],
        merchant_id=data["merchant_id"],
        status=PaymentIntentStatus(data["status"]),
        version=data["version"],
        amount=Money(data["amount"], currency),
        amount_received=Money(data["amount_received"], currency),
        amount_refunded=Money(data["amount_refunded"], currency),
        client_secret=data["client_secret"],
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
        method=PaymentMethodType(data["method"]) if data.get("method") else None,
        provider=data.get("provider"),
        description=data.get("description"),
        metadata=data.get("metadata"),
        allowed_methods=tuple(PaymentMethodType(m) for m in data.get("allowed_methods") or ()),
        next_action=next_action_from_dict(data.get("next_action")),
        last_error=error_from_dict(data.get("last_error")),
        expires_at=_parse_time(data.get("expires_at")),
        installments=data.get("installments"),
        capture_method=CaptureMethod(data.get("capture_method") or "AUTOMATIC"),
        capturable=data.get("amount_capturable") or 0,
        capture_before=_parse_time(data.get("capture_before")),
    )
