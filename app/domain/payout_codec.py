"""Payouts to and from plain JSON (outbox rows, broker messages, stored results).

Pure; `payout_from_dict(payout_to_dict(p)) == p` is tested. The "object" key tells a
payout's outbox row from an intent's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.domain.money import Currency, Money
from app.domain.payouts import Payout, PayoutReturn, PayoutStatus

OBJECT = "payout"


def is_payout_dict(data: dict[str, Any]) -> bool:
    return data.get("object") == OBJECT


def payout_to_dict(payout: Payout) -> dict[str, Any]:
    returned = payout.return_reason
    return {
        "object": OBJECT,
        "id": payout.id,
        "merchant_id": payout.merchant_id,
        "status": payout.status.value,
        "version": payout.version,
        "amount": payout.amount.minor,
        "currency": payout.amount.currency.value,
        "clabe": payout.clabe,
        "bank": payout.bank,
        "beneficiary_name": payout.beneficiary_name,
        "concept": payout.concept,
        "reference": payout.reference,
        "tracking_key": payout.tracking_key,
        "rfc": payout.rfc,
        "provider": payout.provider,
        "provider_ref": payout.provider_ref,
        "return_reason": {"code": returned.code, "message": returned.message} if returned else None,
        "failure_message": payout.failure_message,
        "refund_id": payout.refund_id,
        "metadata": payout.metadata,
        "created_at": payout.created_at.isoformat(),
        "updated_at": payout.updated_at.isoformat(),
        "paid_at": payout.paid_at.isoformat() if payout.paid_at else None,
    }


def payout_from_dict(data: dict[str, Any]) -> Payout:
    returned = data.get("return_reason")
    paid_at = data.get("paid_at")
    return Payout(
        id=data["id"],
        merchant_id=data["merchant_id"],
        status=PayoutStatus(data["status"]),
        version=data["version"],
        amount=Money(data["amount"], Currency(data["currency"])),
        clabe=data["clabe"],
        bank=data["bank"],
        beneficiary_name=data["beneficiary_name"],
        concept=data["concept"],
        reference=data["reference"],
        tracking_key=data["tracking_key"],
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
        rfc=data.get("rfc"),
        provider=data.get("provider"),
        provider_ref=data.get("provider_ref"),
        return_reason=PayoutReturn(returned["code"], returned["message"]) if returned else None,
        failure_message=data.get("failure_message"),
        refund_id=data.get("refund_id"),
        metadata=data.get("metadata"),
        paid_at=datetime.fromisoformat(paid_at) if paid_at else None,
    )
