"""Releasing a payment at its PSP (an expired voucher, a lapsed authorization), told
in the audit trail either way: a PSP that cannot be reached does not keep the intent
waiting, since the PSP lets the payment lapse on its own."""

from __future__ import annotations

from app.db.repositories.audit import NewAuditEvent
from app.services.routing import Router
from providers.base import ProviderError


async def cancel_at_provider(
    router: Router, provider: str, ref: str, *, key: str, reason: str
) -> list[NewAuditEvent]:
    """Cancel `ref` at `provider` under idempotency key `key`; the audit event saying
    how it went."""
    try:
        await router.call(provider, lambda p: p.cancel_payment(ref, key))
    except ProviderError as exc:
        return [
            NewAuditEvent(
                "provider.cancel_failed",
                provider=provider,
                data={"provider_ref": ref, "message": exc.message},
            )
        ]
    return [
        NewAuditEvent(
            "provider.canceled", provider=provider, data={"provider_ref": ref, "reason": reason}
        )
    ]
