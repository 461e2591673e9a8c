from datetime import UTC, datetime

import pytest

from app.domain.errors import InvalidInput
from app.domain.expiry import MEXICO_CITY, OXXO_DEFAULT_DAYS, oxxo_expires_at, oxxo_expiry_days


def test_voucher_expires_at_2359_mexico_city_on_the_last_day():
    # 2026-11-27 03:00 UTC is still the 26th in Mexico City (UTC-6).
    now = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
    expires = oxxo_expires_at(now, 3).astimezone(MEXICO_CITY)
    assert (expires.year, expires.month, expires.day) == (2026, 11, 29)
    assert (expires.hour, expires.minute) == (23, 59)


def test_expiry_days_default_and_limits():
    assert oxxo_expiry_days(None) == OXXO_DEFAULT_DAYS
    assert oxxo_expiry_days(1) == 1 and oxxo_expiry_days(7) == 7
    for bad in (0, 8, -1):
        with pytest.raises(InvalidInput, match="between 1 and 7"):
            oxxo_expiry_days(bad)
