"""Plain-JSON forms of domain values, for database columns and broker messages.

Pure functions both ways; `intent_from_dict(intent_to_dict(i)) == i` is tested. The
intent's forms are derived from its dataclass (app/domain/plain.py), so a new field
is declared there once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from app.domain.intents import PaymentError, PaymentIntent
from app.domain.next_action import (
    CryptoInstructions,
    NextAction,
    OxxoVoucher,
    RedirectToUrl,
    SpeiInstructions,
)
from app.domain.plain import Codec, Rule


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


# How a NextAction, a tagged union, is written inside any record that holds one.
NEXT_ACTION = Rule(next_action_to_dict, next_action_from_dict)
RULES: dict[object, Rule] = {NextAction: NEXT_ACTION}

# The intent as plain JSON (outbox rows, broker messages, stored mutation results);
# every field of the dataclass, by app/domain/plain.py's rules.
INTENT_JSON: Codec[PaymentIntent] = Codec(PaymentIntent, rules=RULES)
_ERROR_JSON: Codec[PaymentError] = Codec(PaymentError)


def error_to_dict(error: PaymentError | None) -> dict[str, Any] | None:
    return None if error is None else _ERROR_JSON.to_plain(error)


def error_from_dict(data: dict[str, Any] | None) -> PaymentError | None:
    return None if not data else _ERROR_JSON.from_plain(data)


def intent_to_dict(intent: PaymentIntent) -> dict[str, Any]:
    return INTENT_JSON.to_plain(intent)


def intent_from_dict(data: dict[str, Any]) -> PaymentIntent:
    return INTENT_JSON.from_plain(data)
