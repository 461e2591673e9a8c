"""Moving time in the sandbox, for every process at once.

The offset lives in the database: the process that advances it adopts it at once
and runs the expiry sweep; every other process (API or worker) picks it up within
a second (`refresh`). Production never has an offset.
"""

from __future__ import annotations

from datetime import datetime

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import clock as rows
from app.domain.errors import InvalidInput

# Nobody needs to jump more than a year; a typo should not break the sandbox.
MAX_ADVANCE_SECONDS = 366 * 86_400


class SandboxClock:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def advance(self, seconds: object) -> datetime:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise InvalidInput("seconds must be a number", ("seconds",))
        if not 0 < seconds <= MAX_ADVANCE_SECONDS:
            raise InvalidInput(
                f"seconds must be more than 0 and at most {MAX_ADVANCE_SECONDS}", ("seconds",)
            )
        async with self.db.transaction() as conn:
            offset = await rows.advance(conn, float(seconds))
        self.clock.set_offset(offset)
        return self.clock.now()

    async def refresh(self) -> None:
        async with self.db.read() as conn:
            self.clock.set_offset(await rows.offset(conn))
