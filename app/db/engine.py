"""The engine and the two ways in: `transaction()` to write, `read()` to look.

PostgreSQL (production) goes through asyncpg, one pool for both: transactions and
reads in autocommit, a repository's kept statements straight on asyncpg as prepared
statements (app/db/postgres.py). `fast_path=False` (COBRO_POSTGRES_FAST_PATH=false)
runs plain SQLAlchemy instead: its pool, engine.begin() and engine.connect().

SQLite (the embedded default) goes through the standard sqlite3 driver, called
right on the event loop's thread. A statement on a local file takes tens of
microseconds and never waits on a network; handing each one to a thread (what
aiosqlite does) cost several times the statement in thread hops and GIL
contention: reads went from ~580 to ~1,900 req/s, payments from 65/s to several
hundred (bench/RESULTS.md). SQLite allows one writer at a time, so every write
transaction of a process takes its turn on one connection, whose transactions
begin with BEGIN IMMEDIATE (concurrent writers colliding in SQLite's busy handler
put p99 in the hundreds of ms, ../shared/reference/stack-notes.md §6b) and share
one COMMIT per turn of the event loop (app/db/sqlite_writer.py); reads use their own
connection, with no transaction held, so each sees the latest commit (WAL lets
them run beside the writer). A transaction never waits on anything but the
database inside it (no PSP call, no network), so running it inline blocks the loop
only for as long as the statements take; another process holding the write lock
(several processes on one file, in tests) can make it wait up to the busy timeout.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import StaticPool

from app.db import postgres
from app.db.outage import Outage
from app.db.prepared import PreparedStatements
from app.db.sqlite_checkpoints import FALLBACK_AUTOCHECKPOINT, Checkpointer
from app.db.sqlite_writer import GroupCommitWriter

# Another process may hold SQLite's write lock (two API processes on one file):
# wait this long for it before giving up.
SQLITE_BUSY_TIMEOUT_MS = 10_000
# A PostgreSQL that does not answer is reported unavailable after this long (asyncpg's
# own default is a minute, and every request would wait it out).
CONNECT_TIMEOUT_SECONDS = 3.0
_AFTER_COMMIT = "cobro.after_commit"
_BEFORE_COMMIT = "cobro.before_commit"


class BeforeCommit(Protocol):
    """Work a transaction saves for its end (the audit chain's one link-up)."""

    async def flush(self, conn: AsyncConnection) -> None: ...


_Hook = TypeVar("_Hook", bound=BeforeCommit)


class Database:
    def __init__(
        self, url: str, *, pool_size: int = 10, fast_path: bool = True, sqlite_prepared: bool = True
    ) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self._after_commit: list[Callable[[list[Any]], None]] = []
        self.outage = Outage()
        if self.is_sqlite:
            path = _file_path(self.url)
            if path is not None:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Checkpoints beside the loop, for a database in a file (sqlite_checkpoints.py).
            checkpointer = Checkpointer(path, SQLITE_BUSY_TIMEOUT_MS) if path else None
            self._sqlite_writer = _sqlite_engine(
                self.url, writer=True, own_checkpoints=checkpointer is None
            )
            self._sqlite_reader = _sqlite_engine(self.url, writer=False)
            self._prepared: PreparedStatements | PlainStatements = (
                PreparedStatements() if sqlite_prepared else PlainStatements()
            )
            self._group_writer = GroupCommitWriter(
                self._sqlite_writer, self._inline, _AFTER_COMMIT, checkpointer
            )
            self._group_writer.after_commit = self._after_commit
            self._sqlite_reading: _Inline | None = None
        else:
            # No pool_pre_ping: it cost BEGIN, ";" and ROLLBACK on every checkout; a
            # transaction's own BEGIN finds a dead connection instead (app/db/postgres.py).
            # With the short path off, the first statement on a dead connection fails
            # (an outage for that request) and SQLAlchemy invalidates the pool.
            self._max_overflow = 0
            self.engine = create_async_engine(
                url,
                pool_size=2 * pool_size,
                max_overflow=self._max_overflow,
                connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
                json_serializer=_json_dumps,
                json_deserializer=orjson.loads,
            )
            self._pg: postgres.Connections | None = None
            if fast_path:
                self._pg = postgres.Connections(self.engine, postgres.Plans(), 2 * pool_size)

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @property
    def engines(self) -> list[Engine]:
        """Every engine statements go through (to instrument: app/tracing.py)."""
        if self.is_sqlite:
            return [self._sqlite_writer, self._sqlite_reader]
        return [self.engine.sync_engine]

    @property
    def read_engine(self) -> Engine:
        """The synchronous engine reads go through (for instrumentation and tests)."""
        return self._sqlite_reader if self.is_sqlite else self.engine.sync_engine

    def pool_status(self) -> tuple[int, int]:
        """(connections in use, the most there can be), for /metrics. SQLite: the one
        writing connection, in use while a write transaction holds it."""
        if self.is_sqlite:
            return int(self._group_writer.busy), 1
        pool: Any = self.engine.pool
        if self._pg is not None:  # its connections stay checked out of the pool, idle or not
            return self._pg.in_use, self._pg.size
        return pool.checkedout(), pool.size() + self._max_overflow

    @property
    def unplanned_statements(self) -> int:
        """Statements PostgreSQL's short path has run through SQLAlchemy instead of as
        kept statements (app/db/postgres.py); 0 elsewhere. For tests of hot paths."""
        return self._pg.unplanned if not self.is_sqlite and self._pg is not None else 0

    def add_after_commit(self, callback: Callable[[list[Any]], None]) -> None:
        """Hand `callback` what each committed transaction queued with `after_commit`
        (the outbox relay's doorbell: it publishes rows the moment they are durable)."""
        self._after_commit.append(callback)

    @staticmethod
    def after_commit(conn: AsyncConnection, item: Any) -> None:
        """Queue `item` for the after-commit callbacks; dropped if the transaction fails."""
        conn.info[_AFTER_COMMIT].append(item)

    @staticmethod
    def before_commit(conn: AsyncConnection, key: str, make: Callable[[], _Hook]) -> _Hook:
        """The transaction's hook under `key`, made by `make` the first time it is
        asked for. Each hook's `flush(conn)` runs once, in the order they were made,
        as the last work of the transaction (still inside it: an error rolls it all
        back); dropped unrun if the transaction fails first."""
        hooks: dict[str, Any] = conn.info[_BEFORE_COMMIT]
        hook: _Hook | None = hooks.get(key)
        if hook is None:
            hook = hooks[key] = make()
        return hook

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction: committed when the block ends (and only then does
        this return), rolled back on error."""
        if self.is_sqlite:
            async with self._group_writer.transaction() as conn:
                hooks: dict[str, BeforeCommit] = {}
                conn.info[_BEFORE_COMMIT] = hooks
                try:
                    yield conn
                    for hook in hooks.values():
                        await hook.flush(conn)
                finally:
                    conn.info.pop(_BEFORE_COMMIT, None)
            return
        async with self._hooked(self._begin()) as conn:
            yield conn

    @asynccontextmanager
    async def steps(self) -> AsyncIterator[AsyncConnection]:
        """A block whose statements need not commit together, each one safe alone in
        the order given (a lease taken, then the work it guards). On PostgreSQL each
        statement commits on its own, and what the block writes behind goes as one
        more at its end: no BEGIN and COMMIT, two round trips of five when a
        confirmation takes its lease. SQLite runs it as one transaction of the group
        commit, which costs less there than a commit per statement. Code in such a
        block must be right either way, and after a failure midway (what it did so
        far stays on PostgreSQL)."""
        if self.is_sqlite or self._pg is None:
            async with self.transaction() as conn:
                yield conn
            return
        async with self._hooked(self._pg.steps()) as conn:
            yield conn

    @asynccontextmanager
    async def _hooked(self, connection: Any) -> AsyncIterator[AsyncConnection]:
        """PostgreSQL's `connection` with a transaction's hooks: the before-commit ones
        run as the block's last work, the after-commit ones once it is committed."""
        async with self.outage.watching(), connection as conn:
            committed: list[Any] = []
            conn.info[_AFTER_COMMIT] = committed
            hooks: dict[str, BeforeCommit] = {}
            conn.info[_BEFORE_COMMIT] = hooks
            try:
                yield conn
                for hook in hooks.values():
                    await hook.flush(conn)
            finally:
                # A connection the server dropped refuses even `info` until the
                # rollback that leaving this block does.
                with contextlib.suppress(SQLAlchemyError):
                    del conn.info[_AFTER_COMMIT]
                    del conn.info[_BEFORE_COMMIT]
        if committed:
            for callback in self._after_commit:
                callback(committed)

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection whose statements each commit on their own, for a write that is
        one statement: on PostgreSQL no BEGIN and COMMIT around it (two round trips);
        on SQLite a transaction of the group commit like any other. Nothing queued
        with `after_commit` here is delivered."""
        if self.is_sqlite or self._pg is None:
            async with self.transaction() as conn:
                yield conn
            return
        async with self.outage.watching(), self._pg.autocommit() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection to read with, in no transaction: each statement sees the
        latest commit (SQLite's reading connection; autocommit on PostgreSQL)."""
        if self.is_sqlite:
            # _Inline speaks as much of AsyncConnection as the repositories use.
            yield cast(AsyncConnection, self._reader())
            return
        async with self.outage.watching(), self._connect() as conn:
            yield conn

    def _begin(self) -> Any:
        return self._pg.transaction() if self._pg is not None else self.engine.begin()

    def _connect(self) -> Any:
        return self._pg.autocommit() if self._pg is not None else self.engine.connect()

    def _reader(self) -> _Inline:
        """SQLite's one reading connection, kept open: checking a connection out of a
        pool and back for every read was 6% of a read request. Its statements run to
        completion on the loop's thread and sqlite3 runs in autocommit, so readers
        that interleave across awaits share it safely, as they shared the pool's one
        connection before."""
        reader = self._sqlite_reading
        if reader is None or reader._conn.invalidated or reader._conn.closed:
            reader = self._sqlite_reading = self._inline(self._sqlite_reader.connect())
        return reader

    def _inline(self, conn: Connection) -> _Inline:
        return _Inline(conn, self._prepared)

    async def dispose(self) -> None:
        if self.is_sqlite:
            self._group_writer.close()
            if self._sqlite_reading is not None:
                self._sqlite_reading._conn.close()
                self._sqlite_reading = None
            self._sqlite_writer.dispose()
            self._sqlite_reader.dispose()
        else:
            if self._pg is not None:
                await self._pg.close()
            await self.engine.dispose()


class PlainStatements:
    """Every statement through SQLAlchemy: SQLite's prepared statements switched off
    (COBRO_SQLITE_PREPARED=false), should a SQLAlchemy upgrade break what
    app/db/prepared.py reads of its compilation."""

    def execute(self, conn: Connection, statement: Any, parameters: Any) -> Any:
        return conn.execute(statement, parameters)


class _Inline:
    """The async connection interface over a synchronous connection whose calls
    finish without waiting: `await conn.execute(...)` runs the statement at once,
    as a prepared statement when it is one the process runs repeatedly."""

    def __init__(self, conn: Connection, prepared: PreparedStatements | PlainStatements) -> None:
        self._conn = conn
        self._prepared = prepared
        self.dialect = conn.dialect
        self.info = conn.info

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self._prepared.execute(self._conn, statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return self._prepared.execute(self._conn, statement, parameters).scalar()

    async def run_sync(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(self._conn, *args)


def _json_dumps(value: Any) -> str:
    """JSON columns through orjson: the stdlib encoder was 3-6% of a payment's CPU."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _file_path(url: URL) -> str | None:
    """The SQLite database's file, or None for an in-memory or URI database."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def _sqlite_engine(url: URL, *, writer: bool, own_checkpoints: bool = True) -> Engine:
    """One sqlite3 connection, used from the event loop's thread (and the writer's
    COMMIT from a thread of its own, app/db/sqlite_writer.py). The driver's
    own transaction handling is switched off: the writer says BEGIN IMMEDIATE and
    COMMIT itself; the reader holds no transaction, so each read sees the latest
    commit and never pins an old snapshot."""
    engine = create_engine(
        url.set(drivername="sqlite"),
        poolclass=StaticPool,
        connect_args={"check_same_thread": not writer},
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        if not writer:
            cursor.execute("PRAGMA query_only=ON")
        elif not own_checkpoints:
            cursor.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_AUTOCHECKPOINT}")
        cursor.close()

    return engine
