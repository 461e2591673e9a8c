"""What a PSP says about a payout, applied in the caller's transaction.

One path for every source of news (the answer to the send, a callback, a
reconciliation query), so they agree: each move goes through the status machine
(RETURNED may follow PAID; nothing leaves a final status), news that moves nothing
is noted in the trail and changes nothing else, and news that skips a step
(LIQUIDACION for a payout still PENDING) takes the steps in between, one version
each, so subscribers see every status in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.repositories import payouts as payout_rows
from app.db.repositories.audit import NewAuditEvent
from app.domain.payouts import PAYOUT_TRANSITIONS, Payout, PayoutStatus, return_reason
from app.services.payout_changes import (
    payout_status_event,
    record_payout_change,
    record_payout_events,
)
from providers.base import PayoutState

P = PayoutStatus
_TARGET = {
    PayoutState.IN_TRANSIT: P.IN_TRANSIT,
    PayoutState.PAID: P.PAID,
    PayoutState.RETURNED: P.RETURNED,
    PayoutState.FAILED: P.FAILED,
}


@dataclass(frozen=True, slots=True)
class PayoutNews:
    state: PayoutState
    provider: str
    provider_ref: str | None = None
    return_code: str | None = None
    message: str | None = None
    source: str = "provider"  # provider (the send's answer) | webhook | reconciliation
    detail: str | None = None  # the PSP's own event name or estado, for the trail


def _path(current: PayoutStatus, target: PayoutStatus) -> list[PayoutStatus]:
    """The statuses from `current` to `target`, at most one step in between."""
    if target in PAYOUT_TRANSITIONS[current]:
        return [target]
    if current is P.PENDING and target in PAYOUT_TRANSITIONS[P.IN_TRANSIT]:
        return [P.IN_TRANSIT, target]
    return []


async def apply_payout_news(
    conn: AsyncConnection, payout_id: str, news: PayoutNews, now: datetime
) -> tuple[Payout, bool]:
    """Apply `news` to the payout (locked here); the payout after it, and whether it moved."""
    current = await payout_rows.get(conn, payout_id, for_update=True)
    assert current is not None
    heard = NewAuditEvent(
        f"{news.source}.payout",
        provider=news.provider,
        data={"state": news.state.value, "detail": news.detail, "provider_ref": news.provider_ref},
    )
    steps = _path(current.status, _TARGET[news.state])
    if not steps:
        ignored = NewAuditEvent(
            "payout.news_ignored",
            provider=news.provider,
            data={"reason": f"payout is {current.status.value}", "state": news.state.value},
        )
        await record_payout_events(conn, current, [heard, ignored], now)
        return current, False
    events = [heard]
    for status in steps:
        after = current.moved_to(status, now, **_fields(current, status, news, now))
        await record_payout_change(conn, current, after, [*events, payout_status_event(after)], now)
        current, events = after, []
    return current, True


def _fields(
    current: Payout, status: PayoutStatus, news: PayoutNews, now: datetime
) -> dict[str, object]:
    fields: dict[str, object] = {}
    if current.provider is None:
        fields |= {"provider": news.provider, "provider_ref": news.provider_ref}
    elif news.provider_ref and current.provider_ref is None:
        fields["provider_ref"] = news.provider_ref
    if status is P.PAID:
        fields["paid_at"] = now
    if status is P.RETURNED:
        # "00": the PSP named no cause; the message then says only that it came back.
        fields["return_reason"] = return_reason(news.return_code or "00")
    if status is P.FAILED:
        fields["failure_message"] = news.message or news.detail or "refused by the PSP"
    return fields
