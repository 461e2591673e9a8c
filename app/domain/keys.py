"""API keys and webhook secrets over time: what a key shows, and how a roll overlaps.

Rolling works as Stripe's does: a new key or secret is made at once, and the old
ones keep working for the overlap the caller chose (0 = stop now), so a merchant can
deploy the new one without a moment in which nothing works.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.domain.errors import InvalidInput, InvalidState
from app.domain.ids import random_token

DEFAULT_OVERLAP_HOURS = 24  # contract section 10's default for expireOldInHours
MAX_OVERLAP_HOURS = 7 * 24  # Stripe lets an old key live up to 7 days
# Keys of one kind (or secrets of one endpoint) working at once, rolls included: each
# live webhook secret adds a signature to every delivery.
MAX_LIVE = 5
OVERLAP_FIELD = ("expireOldInHours",)


class ApiKeyKind(enum.StrEnum):
    SECRET = "secret"
    PUBLISHABLE = "publishable"

    @property
    def prefix(self) -> str:
        return "sk" if self is ApiKeyKind.SECRET else "pk"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as it may be shown: the key itself only in the answer that makes it."""

    kind: ApiKeyKind
    last4: str
    created_at: datetime
    expires_at: datetime | None = None
    key: str | None = None


def new_key(kind: ApiKeyKind, *, live: bool) -> str:
    return f"{kind.prefix}_{'live' if live else 'test'}_{random_token(32)}"


def is_live_key(key_or_prefix: str) -> bool:
    return key_or_prefix[3:8] == "live_"


def overlap(expire_old_in_hours: int | None) -> timedelta:
    """How long the old key or secret keeps working; null means the default."""
    hours = DEFAULT_OVERLAP_HOURS if expire_old_in_hours is None else expire_old_in_hours
    if not 0 <= hours <= MAX_OVERLAP_HOURS:
        raise InvalidInput(
            f"expireOldInHours must be between 0 (at once) and {MAX_OVERLAP_HOURS}",
            OVERLAP_FIELD,
        )
    return timedelta(hours=hours)


def check_live_after_roll(still_live: int, what: str) -> None:
    """Refuse a roll that would leave more than MAX_LIVE working at once."""
    if still_live + 1 > MAX_LIVE:
        raise InvalidState(
            f"{still_live} {what} still work; wait until one expires, or roll with "
            "expireOldInHours: 0 to stop the old ones at once",
            OVERLAP_FIELD,
        )
