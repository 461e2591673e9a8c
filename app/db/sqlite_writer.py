"""SQLite's single writer, with group commit.

A COMMIT costs more than all of a payment's statements together (the WAL append
and its index: about 10% of a sandbox payment's CPU, bench/RESULTS.md), and a
payment takes three transactions. So transactions that run in the same turn of the
event loop share one: each runs inside its own SAVEPOINT (an error rolls back that
one alone), and one COMMIT at the start of the next turn makes them all durable
together. Nobody is told before that: `transaction()` returns only after
the COMMIT and the after-commit callbacks (the outbox relay's doorbell) run after it
too. If the COMMIT fails, every transaction in the group fails with it.

The COMMIT runs on the loop: in WAL mode with synchronous=NORMAL it appends to the
WAL and does not fsync (checkpoints, which do, have a thread of their own:
app/db/sqlite_checkpoints.py). Running it on a thread of its own was measured
again (bench/NOTES.md, interleaved A/B): within the noise, so it went.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Connection, Engine

from app.db.sqlite_checkpoints import Checkpointer

log = logging.getLogger(__name__)


class _Group:
    """Transactions sharing one COMMIT, and what they queued for after it."""

    __slots__ = ("done", "queued")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.done: asyncio.Future[None] = loop.create_future()
        self.queued: list[Any] = []


class GroupCommitWriter:
    def __init__(
        self,
        engine: Engine,
        wrap: Callable[[Connection], Any],
        after_commit_key: str,
        checkpointer: Checkpointer | None = None,
    ) -> None:
        self._engine = engine
        self._checkpointer = checkpointer
        self._wrap = wrap
        self._key = after_commit_key
        self._lock = asyncio.Lock()
        self._conn: Connection | None = None
        self._inline: Any = None
        self._group: _Group | None = None
        self._closed = False
        self.after_commit: list[Callable[[list[Any]], None]] = []

    @property
    def busy(self) -> bool:
        """A transaction (or a COMMIT) holds the connection now."""
        return self._lock.locked()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self._lock:
            conn, raw = self._connection()
            group = self._group
            if group is None:
                group = self._begin(conn, raw)
            raw.execute("SAVEPOINT tx")
            conn.info[self._key] = []
            try:
                yield self._inline
            except BaseException as exc:
                conn.info.pop(self._key)
                if raw.in_transaction:
                    raw.execute("ROLLBACK TO tx")
                    raw.execute("RELEASE tx")
                else:  # SQLite rolled the whole group back (I/O error, disk full)
                    self._fail(group, exc)
                raise
            raw.execute("RELEASE tx")
            group.queued += conn.info.pop(self._key)
        await asyncio.shield(group.done)

    def _connection(self) -> tuple[Connection, Any]:
        if self._closed:
            raise RuntimeError("the database was disposed of")
        if self._conn is None:
            self._conn = self._engine.connect()
            self._inline = self._wrap(self._conn)
        raw = self._conn.connection.driver_connection
        assert raw is not None
        return self._conn, raw

    def _begin(self, conn: Connection, raw: Any) -> _Group:
        loop = asyncio.get_running_loop()
        raw.execute("BEGIN IMMEDIATE")
        # SQLAlchemy's bookkeeping only (pysqlite's do_begin sends nothing): nested
        # users such as Alembic see a transaction and leave the COMMIT to us.
        conn.begin()
        group = self._group = _Group(loop)
        # Scheduled a turn later than a plain create_task would run it, so the group
        # also takes the transactions the current turn wakes up: measured, ~10% more
        # payments per second than committing one turn sooner (make bench, write).
        loop.call_soon(lambda: loop.create_task(self._commit(group)))
        return group

    async def _commit(self, group: _Group) -> None:
        async with self._lock:
            if group is not self._group:
                return  # already failed and settled
            self._group = None
            assert self._conn is not None
            try:
                self._conn.commit()
            except Exception as error:
                self._rollback()
                group.done.set_exception(error)
                group.done.exception()  # retrieved: each member re-raises it itself
                return
            group.done.set_result(None)
            self._committed(group)
            if self._checkpointer is not None and self._checkpointer.reset_wanted:
                # Still holding the lock: no transaction of ours starts until the
                # WAL is all copied back, so the next one starts it afresh.
                await self._checkpointer.reset()

    def _committed(self, group: _Group) -> None:
        """Tell those who act on durable changes: the relay's doorbell, the checkpointer."""
        if group.queued:
            for callback in self.after_commit:
                try:
                    callback(group.queued)
                except Exception:  # committed all the same: the relay's sweep catches up
                    log.exception("after-commit callback failed")
        if self._checkpointer is not None:
            self._checkpointer.committed()

    def _fail(self, group: _Group, exc: BaseException) -> None:
        self._group = None
        self._rollback()
        group.done.set_exception(RuntimeError(f"the transaction group was rolled back: {exc}"))
        group.done.exception()

    def _rollback(self) -> None:
        if self._conn is None:
            return
        raw = self._conn.connection.driver_connection
        if raw is not None and raw.in_transaction:
            raw.execute("ROLLBACK")
        self._conn.rollback()  # SQLAlchemy's bookkeeping, also after a failed commit()

    def close(self) -> None:
        self._closed = True
        if self._checkpointer is not None:
            self._checkpointer.close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
