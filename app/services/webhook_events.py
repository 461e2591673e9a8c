"""What a merchant's endpoint receives: Stripe's event shape around our intent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from app.domain.codec import RULES
from app.domain.intents import INTERNAL_FIELDS, PaymentIntent
from app.domain.money import Money
from app.domain.payouts import Payout
from app.domain.plain import Codec, MoneyForm


def event_id(intent_id: str, version: int) -> str:
    """Stable per intent (or payout) version: a relay that publishes twice enqueues once."""
    return f"evt_{intent_id.removeprefix('pi_')}_{version}"


def event_body(
    event: str,
    event_type: str,
    subject: PaymentIntent | Payout | dict[str, Any],
    created: datetime,
) -> str:
    """A refund comes as its JSON already (domain/refunds.py `refund_json`)."""
    data: dict[str, Any]
    if isinstance(subject, PaymentIntent):
        data = intent_json(subject)
    elif isinstance(subject, Payout):
        data = payout_json(subject)
    else:
        data = subject
    return orjson.dumps(
        {
            "id": event,
            "type": event_type,
            "created": int(created.timestamp()),
            "data": {"object": data},
        }
    ).decode()


def payout_json(payout: Payout) -> dict[str, Any]:
    """The payout as the GraphQL API names its fields."""
    returned = payout.return_reason
    return {
        "id": payout.id,
        "object": "payout",
        "status": payout.status.value,
        "version": payout.version,
        "amount": _money(payout.amount),
        "clabe": payout.clabe,
        "bank": payout.bank,
        "beneficiaryName": payout.beneficiary_name,
        "concept": payout.concept,
        "reference": payout.reference,
        "trackingKey": payout.tracking_key if payout.accepted else None,
        "provider": payout.provider,
        "returnReason": {"code": returned.code, "message": returned.message} if returned else None,
        "refund": payout.refund_id,
        "metadata": payout.metadata,
        "createdAt": payout.created_at.isoformat(),
        "updatedAt": payout.updated_at.isoformat(),
    }


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


def _money(money: Money) -> dict[str, str]:
    return {"amount": money.to_decimal_string(), "currency": money.currency.value}
