"""The engine and the two ways in: `transaction()` to write, `read()` to look.

SQLite (the embedded default) allows one writer at a time. Rather than let
concurrent writers collide and back off in the busy handler (p99 jumps to hundreds
of ms, ../shared/reference/stack-notes.md §6b), all writes in a process go through
one connection that starts each transaction with BEGIN IMMEDIATE, while reads use
a separate pool (WAL lets them run alongside the writer). PostgreSQL gets one
ordinary pool for both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

# Another process may hold SQLite's write lock (two API processes on one file):
# wait this long for it before giving up.
SQLITE_BUSY_TIMEOUT_MS = 10_000
_AFTER_COMMIT = "cobro.after_commit"


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self._after_commit: list[Callable[[list[Any]], None]] = []
        self._sync_reader: Engine | None = None
        if self.is_sqlite:
            _ensure_parent_dir(self.url.database)
            self.writer = _sqlite_engine(url, pool_size=1, begin="BEGIN IMMEDIATE")
            self.reader = _sqlite_engine(url, pool_size=pool_size, begin="BEGIN")
            self._sync_reader = _sqlite_sync_reader(self.url)
            self._write_lock: asyncio.Lock | None = asyncio.Lock()
        else:
            self.writer = self.reader = create_async_engine(
                url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )
            self._write_lock = None

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @property
    def read_engine(self) -> Engine:
        """The synchronous engine reads go through (for instrumentation and tests)."""
        return self._sync_reader or self.reader.sync_engine

    def add_after_commit(self, callback: Callable[[list[Any]], None]) -> None:
        """Hand `callback` what each committed transaction queued with `after_commit`
        (the outbox relay's doorbell: it publishes rows the moment they are durable)."""
        self._after_commit.append(callback)

    @staticmethod
    def after_commit(conn: AsyncConnection, item: Any) -> None:
        """Queue `item` for the after-commit callbacks; dropped if the transaction fails."""
        conn.info[_AFTER_COMMIT].append(item)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction: commits when the block ends, rolls back on error."""
        async with self._writer_turn(), self.writer.begin() as conn:
            conn.info[_AFTER_COMMIT] = []
            try:
                yield conn
            finally:
                committed = conn.info.pop(_AFTER_COMMIT)
        if committed:
            for callback in self._after_commit:
                callback(committed)

    def _writer_turn(self) -> asyncio.Lock | nullcontext[None]:
        return self._write_lock if self._write_lock is not None else nullcontext()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection to read with. On SQLite, reads run right here on the event
        loop's thread: a primary-key lookup in WAL mode takes tens of microseconds and
        never waits for a writer, while handing it to aiosqlite's thread costs a thread
        hop and GIL contention several times that (benchmarks: bench/RESULTS.md)."""
        if self._sync_reader is not None:
            with self._sync_reader.connect() as conn:
                yield _InlineReads(conn)  # type: ignore[misc]
        else:
            async with self.reader.connect() as conn:
                yield conn

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()
        if self._sync_reader is not None:
            self._sync_reader.dispose()


class _InlineReads:
    """The async connection interface over a synchronous one, for reads that finish
    without waiting: `await conn.execute(...)` runs the statement at once."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.dialect = conn.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self._conn.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return self._conn.scalar(statement, parameters)

    async def run_sync(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(self._conn, *args)


def _ensure_parent_dir(database: str | None) -> None:
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_sync_reader(url: URL) -> Engine:
    """One plain sqlite3 connection, used only from the event loop's thread, with no
    transaction of its own: every SELECT reads the latest committed state."""
    engine = create_engine(url.set(drivername="sqlite"), poolclass=StaticPool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # autocommit: no BEGIN, no snapshot held
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    return engine


def _sqlite_engine(url: str, *, pool_size: int, begin: str) -> AsyncEngine:
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=60)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver, so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine
