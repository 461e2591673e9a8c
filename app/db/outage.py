"""Telling "the database is down" apart from a bug, and saying so once per outage.

While PostgreSQL (or a SQLite file) cannot be reached every request fails the
same way; a traceback per request (hundreds a second) buries the one line an
operator needs. So a connection-level failure becomes `ServiceUnavailable`
(contract section 3: SERVICE_UNAVAILABLE, nothing written, retry later), the
first one is logged with its cause, the rest are counted, and the first success
afterwards logs the recovery with that count. Nothing here retries: the pool's
pre-ping and the next request reconnect on their own once the server is back.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import exc

from app.domain.errors import ServiceUnavailable

log = logging.getLogger("cobro.db")


def is_unreachable(error: BaseException) -> bool:
    """A failure of the connection, not of the statement: the server is gone, refuses
    connections, is starting or shutting down, or the pool has none to give."""
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        original = error.orig
        if isinstance(original, sqlite3.OperationalError):
            return "unable to open" in str(original) or "disk I/O" in str(original)
        return _is_connection_error(original)
    return (
        isinstance(error, exc.TimeoutError | ConnectionError | TimeoutError)
        or (isinstance(error, OSError) and not isinstance(error, FileNotFoundError))
        or _is_connection_error(error)
    )


def _is_connection_error(error: BaseException | None) -> bool:
    """asyncpg's own connection-level exceptions, by name (SQLAlchemy wraps some of
    them and passes others through, depending on where they were raised)."""
    names = {type(e).__name__ for e in _chain(error)}
    return bool(names & _CONNECTION_ERRORS)


_CONNECTION_ERRORS = frozenset(
    {
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "CannotConnectNowError",
        "AdminShutdownError",
        "CrashShutdownError",
        "TooManyConnectionsError",
        "ConnectionRejectionError",
        "ClientCannotConnectError",
        "InterfaceError",
    }
)


def _chain(error: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while error is not None and error not in seen and len(seen) < 8:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


class Outage:
    """The database's state as this process last saw it, for logging once."""

    def __init__(self, name: str = "database") -> None:
        self.name = name
        self.failures = 0

    @property
    def ongoing(self) -> bool:
        return self.failures > 0

    def failed(self, error: BaseException) -> ServiceUnavailable:
        """Count a failure (logged only when it starts an outage); the error to raise."""
        if self.failures == 0:
            log.error("%s unreachable: %s: %s", self.name, type(error).__name__, error)
        self.failures += 1
        return ServiceUnavailable(
            f"the {self.name} is unavailable; retry later, with the same idempotency key"
        )

    def succeeded(self) -> None:
        if self.failures:
            log.warning("%s reachable again after %d failed requests", self.name, self.failures)
            self.failures = 0

    @asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """Around a block that talks to the database: a connection-level failure in it
        becomes ServiceUnavailable (counted), and a success ends an outage."""
        try:
            yield
        except Exception as error:
            if is_unreachable(error):
                raise self.failed(error) from error
            raise
        if self.failures:
            self.succeeded()
