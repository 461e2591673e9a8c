"""Prepared statements (app/db/prepared.py) answer exactly as SQLAlchemy does.

Each statement runs through SQLAlchemy the first time it is seen and as a prepared
plan after that, so each check compares the two on the same data."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Integer,
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
from app.db.prepared import PreparedStatements
from app.db.types import UTCDateTime

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), nullable=False, unique=True),
    Column("seen_at", UTCDateTime()),
    Column("data", JSON),
)
T = things.c
INSERT = insert(things)
BY_NAMES = (
    select(T.id, T.name, T.seen_at, T.data)
    .where(T.name.in_(bindparam("names", expanding=True)))
    .order_by(T.id)
)
RENAME = update(things).where(T.name == bindparam("old")).values(name=bindparam("new"))
AT = datetime(2026, 11, 27, 8, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'prepared.db'}")
    async with database.transaction() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


def plans_of(db: Database) -> dict[int, Any]:
    assert isinstance(db._prepared, PreparedStatements)
    return db._prepared._plans


def prepared(db: Database, statement: Any) -> bool:
    """Whether `statement` has a plan (it has run at least twice, and could be)."""
    entry = plans_of(db).get(id(statement))
    return entry is not None and any(plan is not None for plan in entry[1].values())


def key_of(result: CursorResult[Any]) -> Any:
    key = result.inserted_primary_key
    assert key is not None
    return key[0]


async def through_sqlalchemy(db: Database, statement: Any, parameters: Any) -> list[Any]:
    async with db.read() as conn:
        inline: Any = conn  # SQLite's reader: its synchronous connection is underneath
        return [tuple(row) for row in inline._conn.execute(statement, parameters)]


async def test_reads_convert_every_column_as_sqlalchemy_does(db: Database) -> None:
    async with db.transaction() as conn:
        for name in ("a", "b", "c"):
            await conn.execute(INSERT, {"name": name, "seen_at": AT, "data": {"k": [1, name]}})
    answers = []
    for _ in range(3):
        async with db.read() as conn:
            result = await conn.execute(BY_NAMES, {"names": ["c", "a"]})
            answers.append([tuple(row) for row in result])
    assert prepared(db, BY_NAMES)
    expected = await through_sqlalchemy(db, BY_NAMES, {"names": ["c", "a"]})
    assert answers == [expected] * 3
    assert expected == [(1, "a", AT, {"k": [1, "a"]}), (3, "c", AT, {"k": [1, "c"]})]
    async with db.read() as conn:
        row = (await conn.execute(BY_NAMES, {"names": ["b"]})).mappings().first()
        assert row is not None
        assert dict(row) == {"id": 2, "name": "b", "seen_at": AT, "data": {"k": [1, "b"]}}
        assert row["seen_at"].tzinfo is UTC
        # An empty list is SQLAlchemy's own empty-set expression: no rows, no error.
        assert (await conn.execute(BY_NAMES, {"names": []})).all() == []


async def test_writes_report_keys_and_counts(db: Database) -> None:
    async with db.transaction() as conn:
        keys = [
            key_of(await conn.execute(INSERT, {"name": name, "seen_at": None, "data": None}))
            for name in ("a", "b", "c")
        ]
        given = await conn.execute(INSERT, {"id": 40, "name": "d", "seen_at": AT, "data": None})
        await conn.execute(
            INSERT, [{"name": f"many{n}", "seen_at": AT, "data": {"n": n}} for n in range(3)]
        )
        await conn.execute(
            INSERT, [{"name": f"more{n}", "seen_at": AT, "data": {"n": n}} for n in range(3)]
        )
        renamed = [
            (await conn.execute(RENAME, {"old": old, "new": new})).rowcount
            for old, new in (("a", "x"), ("nobody", "y"), ("b", "z"))
        ]
    assert prepared(db, INSERT) and prepared(db, RENAME)
    assert keys == [1, 2, 3]
    assert key_of(given) == 40
    assert renamed == [1, 0, 1]
    names = await through_sqlalchemy(db, select(T.name).order_by(T.id), None)
    assert [n for (n,) in names] == [
        "x",
        "z",
        "c",
        "d",
        "many0",
        "many1",
        "many2",
        "more0",
        "more1",
        "more2",
    ]


async def test_errors_are_sqlalchemys_and_change_nothing(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute(INSERT, {"name": "a", "seen_at": None, "data": None})
        await conn.execute(INSERT, {"name": "b", "seen_at": None, "data": None})
    naive = datetime(2026, 1, 1)  # no zone: the point of the test
    for _ in range(3):  # through SQLAlchemy the first time, as a plan after that
        with pytest.raises(sa_exc.IntegrityError, match="UNIQUE"):
            async with db.transaction() as conn:
                await conn.execute(INSERT, {"name": "a", "seen_at": None, "data": None})
        with pytest.raises(sa_exc.StatementError, match=r"A value is required .* 'new'"):
            async with db.transaction() as conn:
                await conn.execute(RENAME, {"old": "a", "new": "c"})
                await conn.execute(RENAME, {"old": "b"})
        with pytest.raises(sa_exc.StatementError, match="naive"):
            async with db.transaction() as conn:
                await conn.execute(INSERT, {"name": "n", "seen_at": naive, "data": None})
    assert prepared(db, INSERT) and prepared(db, RENAME)
    names = await through_sqlalchemy(db, select(T.name).order_by(T.id), None)
    assert names == [("a",), ("b",)]


async def test_keys_of_rows_written_many_at_once_are_refused_as_sqlalchemy_refuses(
    db: Database,
) -> None:
    rows: list[dict[str, Any]] = [
        {"name": f"r{n}", "seen_at": None, "data": None} for n in range(2)
    ]
    for _ in range(3):
        async with db.transaction() as conn:
            for row in rows:
                row["name"] += "x"
            result = await conn.execute(INSERT, rows)
            with pytest.raises(sa_exc.InvalidRequestError):
                result.inserted_primary_key  # noqa: B018


async def test_statements_built_per_call_are_never_prepared(db: Database) -> None:
    for name in ("a", "b", "c"):
        async with db.transaction() as conn:
            await conn.execute(insert(things).values(name=name))
    gc.collect()
    # At most the one SQLAlchemy's compiled cache still holds is remembered, unprepared.
    assert len(plans_of(db)) <= 1
    assert all(plans == {} for _, plans in plans_of(db).values())
    async with db.read() as conn:
        assert (await conn.scalar(select(T.name).where(T.id == 2))) == "b"
