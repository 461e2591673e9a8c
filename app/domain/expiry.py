"""How long slow payments live: OXXO vouchers, SPEI references, crypto quotes.

Figures from ../shared/reference/mexico-payments.md: Stripe's OXXO vouchers last
1-7 days (expires_after_days) and expire at 23:59 America/Mexico_City on the last
day; SPEI references and crypto quotes are ours to choose.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.domain.errors import InvalidInput

OXXO_MIN_DAYS = 1
OXXO_MAX_DAYS = 7
OXXO_DEFAULT_DAYS = 5
MEXICO_CITY = ZoneInfo("America/Mexico_City")


def oxxo_expiry_days(requested: int | None) -> int:
    if requested is None:
        return OXXO_DEFAULT_DAYS
    if not OXXO_MIN_DAYS <= requested <= OXXO_MAX_DAYS:
        raise InvalidInput(
            f"expiresInDays must be between {OXXO_MIN_DAYS} and {OXXO_MAX_DAYS}; got {requested}",
            ("input", "oxxo", "expiresInDays"),
        )
    return requested


def oxxo_expires_at(now: datetime, days: int) -> datetime:
    """23:59:59 Mexico City time, `days` days after today there."""
    local_day = now.astimezone(MEXICO_CITY).date() + timedelta(days=days)
    return datetime.combine(local_day, time(23, 59, 59), MEXICO_CITY)
