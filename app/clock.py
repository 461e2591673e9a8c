"""The one clock of the app: every "now" comes from here, so time can be moved.

Production uses wall-clock time. The sandbox moves it forward
(`POST /sandbox/clock/advance`) so that people and tests can watch a voucher
expire without waiting days.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self, offset_seconds: float = 0.0) -> None:
        self._offset = timedelta(seconds=offset_seconds)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def timestamp(self) -> int:
        """Unix seconds, as PSPs put them in signatures and payloads."""
        return int(self.now().timestamp())

    @property
    def offset_seconds(self) -> float:
        return self._offset.total_seconds()

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._offset += timedelta(seconds=seconds)
        return self.now()

    def set_offset(self, seconds: float) -> None:
        """Adopt an offset another process chose (the sandbox clock is shared)."""
        if seconds > self.offset_seconds:
            self._offset = timedelta(seconds=seconds)
