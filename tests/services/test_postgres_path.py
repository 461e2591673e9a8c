"""PostgreSQL's short path (app/db/postgres.py) answers exactly as SQLAlchemy does, and
finds a connection PostgreSQL dropped without pool_pre_ping.

Each statement runs through SQLAlchemy the first time it is seen and as a plan on
asyncpg after that, so each check compares the two on the same data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import CursorResult

from app.db.engine import Database
from app.db.postgres import Connections
from app.db.types import UTCDateTime
from tests.conftest import BACKENDS
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.skipif("postgresql" not in BACKENDS, reason="PostgreSQL not selected")

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", String(20), nullable=False, unique=True),
    Column("seen_at", UTCDateTime()),
    Column("data", JSON),
)
T = things.c
INSERT = insert(things)
BY_NAMES = (
    select(T.id, T.name, T.seen_at, T.data)
    .where(T.name.in_(bindparam("names", expanding=True)), T.id > bindparam("above"))
    .order_by(T.id)
)
RENAME = update(things).where(T.name == bindparam("old")).values(name=bindparam("new"))
AT = datetime(2026, 11, 27, 8, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
async def db(postgres: PostgresServer) -> AsyncIterator[Database]:
    name = postgres.new_database(migrated=False)
    database = Database(postgres.url(name))
    async with database.transaction() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()
    postgres.drop_database(name)


def pool(db: Database) -> Connections:
    assert db._pg is not None
    return db._pg


def key_of(result: CursorResult[Any]) -> Any:
    key = result.inserted_primary_key
    assert key is not None
    return key[0]


def planned(db: Database, statement: Any) -> bool:
    plans = pool(db).plans
    assert plans is not None
    entry = plans._plans.get(id(statement))
    return entry is not None and any(plan is not None for plan in entry[1].values())


async def through_sqlalchemy(db: Database, statement: Any, parameters: Any) -> list[Any]:
    async with db.read() as conn:
        fast: Any = conn  # a FastConnection: SQLAlchemy's connection is underneath
        return [tuple(row) for row in await fast._conn.execute(statement, parameters)]


async def test_reads_convert_every_column_as_sqlalchemy_does(db: Database) -> None:
    async with db.transaction() as conn:
        for name in ("a", "b", "c"):
            await conn.execute(INSERT, {"name": name, "seen_at": AT, "data": {"k": [1, name]}})
    answers = []
    for _ in range(3):
        async with db.read() as conn:
            result = await conn.execute(BY_NAMES, {"names": ["c", "a"], "above": 0})
            answers.append([tuple(row) for row in result])
    assert planned(db, BY_NAMES)
    expected = await through_sqlalchemy(db, BY_NAMES, {"names": ["c", "a"], "above": 0})
    assert answers == [expected] * 3
    assert expected == [(1, "a", AT, {"k": [1, "a"]}), (3, "c", AT, {"k": [1, "c"]})]
    async with db.read() as conn:
        row = (await conn.execute(BY_NAMES, {"names": ["b"], "above": 1})).mappings().first()
        assert row is not None
        assert dict(row) == {"id": 2, "name": "b", "seen_at": AT, "data": {"k": [1, "b"]}}
        assert row["seen_at"].tzinfo is UTC
        assert (await conn.execute(BY_NAMES, {"names": [], "above": 0})).all() == []


async def test_writes_report_keys_and_counts(db: Database) -> None:
    async with db.transaction() as conn:
        keys = [
            key_of(await conn.execute(INSERT, {"name": name, "seen_at": None, "data": None}))
            for name in ("a", "b", "c")
        ]
        given = await conn.execute(INSERT, {"id": 40, "name": "d", "seen_at": AT, "data": None})
        for prefix in ("many", "more", "one"):
            count = 1 if prefix == "one" else 3
            rows = [{"name": f"{prefix}{n}", "seen_at": AT, "data": {"n": n}} for n in range(count)]
            await conn.execute(INSERT, rows)
        renamed = [
            (await conn.execute(RENAME, {"old": old, "new": new})).rowcount
            for old, new in (("a", "x"), ("nobody", "y"), ("b", "z"))
        ]
    assert planned(db, INSERT) and planned(db, RENAME)
    assert keys == [1, 2, 3]
    assert key_of(given) == 40
    assert renamed == [1, 0, 1]
    names = await through_sqlalchemy(db, select(T.name).order_by(T.name), None)
    assert [n for (n,) in names] == sorted(
        ["x", "z", "c", "d", "many0", "many1", "many2", "more0", "more1", "more2", "one0"]
    )


async def test_errors_are_sqlalchemys_and_change_nothing(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute(INSERT, {"name": "a", "seen_at": None, "data": None})
        await conn.execute(INSERT, {"name": "b", "seen_at": None, "data": None})
    naive = datetime(2026, 1, 1)  # no zone: the point of the test
    for _ in range(3):  # through SQLAlchemy the first time, as a plan after that
        with pytest.raises(sa_exc.IntegrityError, match="unique"):
            async with db.transaction() as conn:
                await conn.execute(INSERT, {"name": "c", "seen_at": None, "data": None})
                await conn.execute(INSERT, {"name": "a", "seen_at": None, "data": None})
        with pytest.raises(sa_exc.StatementError, match=r"A value is required .* 'new'"):
            async with db.transaction() as conn:
                await conn.execute(RENAME, {"old": "a", "new": "c"})
                await conn.execute(RENAME, {"old": "b"})
        with pytest.raises(sa_exc.StatementError, match="naive"):
            async with db.transaction() as conn:
                await conn.execute(INSERT, {"name": "n", "seen_at": naive, "data": None})
    assert planned(db, INSERT) and planned(db, RENAME)
    names = await through_sqlalchemy(db, select(T.name).order_by(T.id), None)
    assert names == [("a",), ("b",)]


async def test_a_connection_postgresql_dropped_is_replaced_at_begin(
    db: Database, postgres: PostgresServer
) -> None:
    """No pool_pre_ping: the BEGIN of the next transaction finds the dead connection,
    which is dropped, and the transaction runs on a fresh one."""
    async with db.transaction() as conn:
        await conn.execute(INSERT, {"name": "before", "seen_at": None, "data": None})
    assert len(pool(db)._idle) == 1
    database = db.url.database
    terminate = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'"
    postgres.sql(terminate % database)
    async with db.transaction() as conn:
        await conn.execute(INSERT, {"name": "after", "seen_at": None, "data": None})
    names = await through_sqlalchemy(db, select(T.name).order_by(T.id), None)
    assert names == [("before",), ("after",)]


async def test_reads_see_each_commit_at_once(db: Database) -> None:
    """Reads hold no transaction (autocommit): a read that started before a commit
    sees it in its next statement."""
    statement = select(T.name).order_by(T.id)
    async with db.read() as reader:
        assert (await reader.execute(statement)).all() == []
        async with db.transaction() as conn:
            await conn.execute(INSERT, {"name": "a", "seen_at": None, "data": None})
        assert [n for (n,) in (await reader.execute(statement)).all()] == ["a"]
