"""A connection of PostgreSQL's short path (app/db/postgres.py) that an error or a
cancellation left in an unknown state is never used again: it is closed on the
spot, the caller's request fails as an outage (nothing written), and the next
transaction or read runs on another connection.

Found by tests/cluster/test_postgres_restart.py: after a crash, asyncpg answered
"cannot switch to state 12; another operation (2) is in progress" (a FATAL message
had arrived on an idle connection before its close did, leaving asyncpg's protocol
waiting for a ReadyForQuery that never comes), the request failed as INTERNAL, and
the connection went back to the idle list for the next request to fail on too."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, func, insert, select
from sqlalchemy.exc import StatementError

from app.db.engine import Database
from app.db.postgres import Connections, FastConnection
from app.db.write_behind import write_behind
from app.domain.errors import ServiceUnavailable
from tests.conftest import BACKENDS
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.skipif("postgresql" not in BACKENDS, reason="PostgreSQL not selected")

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), nullable=False),
)
INSERT = insert(things)
NAMES = select(things.c.name).order_by(things.c.id)
SLEEP = select(func.pg_sleep(bindparam("seconds")))


@pytest.fixture
async def db(postgres: PostgresServer) -> AsyncIterator[Database]:
    name = postgres.new_database(migrated=False)
    database = Database(postgres.url(name))
    async with database.transaction() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()
    postgres.drop_database(name)


def fatal_message(text: str) -> bytes:
    """A FATAL ErrorResponse as PostgreSQL sends it before closing a session."""
    fields = b"".join(
        code + value.encode() + b"\0"
        for code, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", "57P01"), (b"M", text))
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!i", len(body) + 4) + body


def pool(db: Database) -> Connections:
    assert db._pg is not None
    return db._pg


def idle(db: Database) -> list[FastConnection]:
    return list(pool(db)._idle)


async def assert_clean(db: Database) -> None:
    """Every idle connection is open, outside a transaction, with nothing of asyncpg's
    pending, and the pool's count agrees."""
    for fast in idle(db):
        raw: Any = fast._raw
        assert not raw.is_closed()
        assert not raw.is_in_transaction()
        assert not raw._protocol._is_cancelling()
        assert not getattr(fast, "broken", False) and not getattr(fast, "in_use", False)
        assert await raw.fetchval("SELECT 1") == 1
    assert pool(db)._open == len(idle(db))


async def names(db: Database) -> list[str]:
    async with db.read() as conn:
        return [name for (name,) in (await conn.execute(NAMES)).all()]


async def warm(db: Database) -> None:
    """Every statement run once through SQLAlchemy, so the next runs are plans."""
    for _ in range(2):
        async with db.read() as conn:
            await conn.execute(NAMES)
            await conn.execute(SLEEP, {"seconds": 0})


async def test_a_fatal_message_on_an_idle_connection_fails_a_read_as_an_outage(
    db: Database,
) -> None:
    await warm(db)
    (fast,) = idle(db)
    fast._raw._protocol.data_received(fatal_message("terminating connection"))
    assert not fast._raw.is_closed()  # what the restart showed: not closed, yet unusable
    with pytest.raises(ServiceUnavailable):
        async with db.read() as conn:
            await conn.execute(NAMES)
    assert fast._raw.is_closed() and fast not in idle(db)
    assert await names(db) == []
    await assert_clean(db)


async def test_a_fatal_message_on_an_idle_connection_is_found_by_begin(db: Database) -> None:
    """A connection that sat idle (longer than a lazy BEGIN trusts) begins first."""
    await warm(db)
    (fast,) = idle(db)
    fast.idle_since -= pool(db).LAZY_BEGIN_SECONDS + 1
    fast._raw._protocol.data_received(fatal_message("terminating connection"))
    async with db.transaction() as conn:  # BEGIN fails on it, then runs on a new one
        await conn.execute(INSERT, {"name": "after"})
    assert fast._raw.is_closed() and fast not in idle(db)
    assert await names(db) == ["after"]
    await assert_clean(db)


async def test_a_fatal_message_on_a_connection_just_used_is_found_by_its_lazy_begin(
    db: Database,
) -> None:
    """A transaction on a connection used moments ago sends its BEGIN with its first
    statement: a connection PostgreSQL dropped in between is found then, before
    anything of the transaction was sent, and the transaction goes on on another
    connection; the broken one is never used again."""
    await warm(db)
    (fast,) = idle(db)
    raw = fast._raw
    raw._protocol.data_received(fatal_message("terminating connection"))
    async with db.transaction() as conn:
        handed: Any = conn  # the FastConnection itself
        assert handed is fast and fast.lazy
        await conn.execute(INSERT, {"name": "after"})
        assert fast._raw is not raw  # the transaction moved to another connection
    assert raw.is_closed()
    assert await names(db) == ["after"]
    await assert_clean(db)


async def test_writes_alone_on_a_connection_dropped_since_its_last_use_go_elsewhere(
    db: Database,
) -> None:
    """A block that only wrote behind sends one statement in autocommit; if the
    connection is known closed by then, the statement goes on another."""
    await warm(db)
    async with db.transaction() as conn:
        await write_behind(conn, INSERT, {"name": "warm"})
    (fast,) = idle(db)
    raw = fast._raw
    async with db.transaction() as conn:
        await write_behind(conn, INSERT, {"name": "after"})
        raw.terminate()  # as asyncpg leaves it once PostgreSQL closed the socket
    assert fast._raw is not raw
    assert await names(db) == ["warm", "after"]
    await assert_clean(db)


@pytest.mark.parametrize("runs", [1, 2], ids=["through SQLAlchemy", "as a plan"])
async def test_a_transaction_cancelled_mid_statement_leaves_nothing_behind(
    db: Database, runs: int
) -> None:
    """A request cancelled (a timeout, a client gone) while its statement runs: the
    statement's outcome is unknown, so the connection is closed, which rolls its
    transaction back; no later transaction can land in it."""
    for _ in range(runs - 1):
        await warm(db)

    async def doomed() -> None:
        async with db.transaction() as conn:
            await conn.execute(INSERT, {"name": "lost"})
            await conn.execute(SLEEP, {"seconds": 5})

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(doomed(), 0.3)
    await assert_clean(db)
    for name in ("kept", "also kept"):
        async with db.transaction() as conn:
            await conn.execute(INSERT, {"name": name})
    assert await names(db) == ["kept", "also kept"]
    await assert_clean(db)


@pytest.mark.parametrize("runs", [1, 2], ids=["through SQLAlchemy", "as a plan"])
async def test_a_read_cancelled_mid_statement_is_not_kept(db: Database, runs: int) -> None:
    """As /readyz's timeout does to a read that hangs."""
    for _ in range(runs - 1):
        await warm(db)

    async def slow_read() -> None:
        async with db.read() as conn:
            await conn.execute(SLEEP, {"seconds": 5})

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(slow_read(), 0.3)
    await assert_clean(db)
    assert await names(db) == []
    async with db.transaction() as conn:
        await conn.execute(INSERT, {"name": "a"})
    assert await names(db) == ["a"]
    await assert_clean(db)


async def test_a_broken_connection_never_commits_quietly(db: Database) -> None:
    """A caller that catches the error of a statement that broke the connection and
    ends its block normally gets an error, not a commit that never happened."""
    await warm(db)
    with pytest.raises(ServiceUnavailable):
        async with db.transaction() as conn:
            await conn.execute(INSERT, {"name": "lost"})
            fast: Any = conn  # a FastConnection: asyncpg's connection is underneath
            fast._raw._protocol.data_received(fatal_message("terminating connection"))
            with pytest.raises(Exception, match="cannot switch to state"):
                await conn.execute(NAMES)
    assert await names(db) == []
    await assert_clean(db)


async def test_backends_terminated_under_load(db: Database, postgres: PostgresServer) -> None:
    """PostgreSQL ends every session of the database, again and again, while writers
    and readers run: each either succeeds or fails as an outage, and every write
    that succeeded is there exactly once."""
    done: list[str] = []
    stop = asyncio.Event()

    async def writer(n: int) -> None:
        i = 0
        while not stop.is_set():
            name = f"w{n}-{i}"
            try:
                async with db.transaction() as conn:
                    await conn.execute(INSERT, {"name": name})
                    await conn.execute(NAMES)
            except ServiceUnavailable:
                await asyncio.sleep(0.01)
                continue
            done.append(name)
            i += 1

    async def reader() -> None:
        while not stop.is_set():
            try:
                await names(db)
            except ServiceUnavailable:
                await asyncio.sleep(0.01)

    database = db.url.database
    terminate = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'"
    tasks = [asyncio.create_task(writer(n)) for n in range(6)]
    tasks += [asyncio.create_task(reader()) for _ in range(3)]
    for _ in range(5):
        await asyncio.sleep(0.3)
        await asyncio.to_thread(postgres.sql, terminate % database)
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.gather(*tasks)  # no other error than ServiceUnavailable
    stored = await names(db)
    assert sorted(stored) == sorted(done) and len(set(stored)) == len(stored)
    assert len(done) > 20
    await assert_clean(db)


async def test_a_transaction_sqlalchemy_rolled_back_is_not_carried_on(db: Database) -> None:
    """A statement SQLAlchemy refuses before running it (a parameter missing) makes it
    roll the transaction back; a caller that carries on must not see its later
    statements commit one by one, nor the block pass for committed."""
    await warm(db)
    for _ in range(2):  # INSERT run once through SQLAlchemy, then planned
        with pytest.raises(ZeroDivisionError):
            async with db.transaction() as conn:
                await conn.execute(INSERT, {"name": "undone"})
                1 / 0  # noqa: B018
    with pytest.raises(ServiceUnavailable):
        async with db.transaction() as conn:
            await conn.execute(INSERT, {"name": "first"})
            built_per_call = select(things.c.id).where(things.c.name == bindparam("name"))
            with pytest.raises(StatementError, match="A value is required"):
                await conn.execute(built_per_call, {})
            with contextlib.suppress(Exception):
                await conn.execute(INSERT, {"name": "second"})
    assert await names(db) == []
    await assert_clean(db)
