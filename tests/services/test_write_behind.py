"""Writes written behind (app/db/write_behind.py): on PostgreSQL's short path kept
by the transaction and sent together as one statement, before a statement that
needs them or as the transaction ends; on SQLite run at once. Either way the caller
cannot tell, but for when an error surfaces: what commits, what a later statement
of the transaction sees, the keys handed back, the order of rows and the rollback
are the same."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    cast,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from app.db.engine import Database
from app.db.write_behind import write_behind
from tests.support.postgres import PostgresServer, logging_statements, statements_logged

metadata = MetaData()
parents = Table(
    "wb_parents",
    metadata,
    Column("id", String(10), primary_key=True),
    Column("name", String(20), nullable=False),
)
children = Table(
    "wb_children",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("parent_id", String(10), ForeignKey("wb_parents.id"), nullable=False),
    Column("name", String(20), nullable=False),
    # PostgreSQL only (set below): when the statement that wrote the row began.
    Column("statement_at", DateTime(timezone=True)),
)
notes = Table(
    "wb_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("text", String(20), nullable=False),
)
NEW_PARENT = insert(parents)
RENAME = update(parents).where(parents.c.id == bindparam("b_id"))
NEW_CHILD = insert(children)
NEW_NOTE = insert(notes)
# An update that reads another table: how many notes there are, as a parent's name.
NOTES_AS_NAME = (
    update(parents)
    .where(parents.c.id == bindparam("b_id"))
    .values(name=cast(select(func.count()).select_from(notes).scalar_subquery(), String))
)
CHILDREN = select(children.c.id, children.c.parent_id, children.c.name).order_by(children.c.id)
PARENTS = select(parents.c.id, parents.c.name).order_by(parents.c.id)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.transaction() as conn:
        await conn.run_sync(metadata.create_all)
    if not database.is_sqlite:
        async with database.transaction() as conn:
            await conn.execute(
                text(
                    "ALTER TABLE wb_children ALTER COLUMN statement_at "
                    "SET DEFAULT statement_timestamp()"
                )
            )
    await warm(database)
    yield database
    await database.dispose()


async def warm(database: Database) -> None:
    """Every statement once, so the next runs are kept statements (what the
    repositories' are): statements seen once are never written behind."""
    async with database.transaction() as conn:
        await conn.execute(NEW_PARENT, {"id": "warm", "name": "warm"})
        await conn.execute(RENAME, {"b_id": "warm", "name": "warm"})
        await conn.execute(NOTES_AS_NAME, {"b_id": "warm"})
        await conn.execute(NEW_NOTE, {"text": "warm"})
        await conn.execute(NEW_CHILD, {"parent_id": "warm", "name": "warm"})
        await conn.execute(NEW_CHILD, [{"parent_id": "warm", "name": "warm"}] * 2)
        await conn.execute(CHILDREN)
        await conn.execute(PARENTS)
    async with database.transaction() as conn:
        await conn.execute(text("DELETE FROM wb_children"))
        await conn.execute(text("DELETE FROM wb_notes"))
        await conn.execute(text("DELETE FROM wb_parents"))


async def rows(db: Database, statement: Any = CHILDREN) -> list[tuple[Any, ...]]:
    async with db.read() as conn:
        return [tuple(row) for row in await conn.execute(statement)]


async def test_what_was_written_behind_commits_with_its_keys_in_order(db: Database) -> None:
    keys: list[int] = []
    async with db.transaction() as conn:
        await write_behind(conn, NEW_PARENT, {"id": "p1", "name": "one"})
        await write_behind(conn, NEW_CHILD, {"parent_id": "p1", "name": "a"}, keys.append)
        await write_behind(
            conn, NEW_CHILD, [{"parent_id": "p1", "name": n} for n in ("b", "c", "d")]
        )
        await write_behind(conn, NEW_CHILD, {"parent_id": "p1", "name": "e"}, keys.append)
        await write_behind(conn, RENAME, {"b_id": "p1", "name": "renamed"})
    stored = await rows(db)
    assert [name for _, _, name in stored] == ["a", "b", "c", "d", "e"]
    assert keys == [stored[0][0], stored[4][0]]
    assert await rows(db, PARENTS) == [("p1", "renamed")]


async def test_a_statement_of_the_transaction_sees_what_was_written_behind(
    db: Database,
) -> None:
    async with db.transaction() as conn:
        await write_behind(conn, NEW_PARENT, {"id": "p1", "name": "one"})
        await write_behind(conn, NEW_CHILD, {"parent_id": "p1", "name": "a"})
        seen = [tuple(row) for row in await conn.execute(CHILDREN)]
        assert [(p, n) for _, p, n in seen] == [("p1", "a")]
        # An update of a row written behind in the same transaction lands on it.
        await write_behind(conn, NEW_PARENT, {"id": "p2", "name": "two"})
        await write_behind(conn, RENAME, {"b_id": "p2", "name": "second"})
        assert [tuple(row) for row in await conn.execute(PARENTS)] == [
            ("p1", "one"),
            ("p2", "second"),
        ]


async def test_a_write_behind_sees_the_tables_it_reads_as_they_were_when_it_was_given(
    db: Database,
) -> None:
    """A kept write that reads another table (a subquery) goes before any statement
    that writes that table, kept or not."""
    async with db.transaction() as conn:
        await write_behind(conn, NEW_PARENT, {"id": "p1", "name": "one"})
        await write_behind(conn, NEW_PARENT, {"id": "p2", "name": "two"})
    async with db.transaction() as conn:
        await write_behind(conn, NOTES_AS_NAME, {"b_id": "p1"})  # no note yet
        await conn.execute(NEW_NOTE, {"text": "a"})  # not kept: runs now
        await write_behind(conn, NOTES_AS_NAME, {"b_id": "p2"})  # one note
        await write_behind(conn, NEW_NOTE, {"text": "b"})  # kept, after it
    assert await rows(db, PARENTS) == [("p1", "0"), ("p2", "1")]


async def test_a_write_behind_that_fails_rolls_the_whole_transaction_back(
    db: Database,
) -> None:
    async with db.transaction() as conn:
        await write_behind(conn, NEW_PARENT, {"id": "p1", "name": "one"})
    keys: list[int] = []
    with pytest.raises(IntegrityError):
        async with db.transaction() as conn:
            await conn.execute(NEW_CHILD, {"parent_id": "p1", "name": "kept?"})
            await write_behind(conn, NEW_CHILD, {"parent_id": "p1", "name": "a"}, keys.append)
            await write_behind(conn, NEW_PARENT, {"id": "p1", "name": "again"})  # taken
    assert await rows(db) == []
    assert await rows(db, PARENTS) == [("p1", "one")]
    if not db.is_sqlite:  # at once on SQLite: its key was known before the failure
        assert keys == []


async def test_a_block_that_raises_writes_nothing_it_kept(db: Database) -> None:
    keys: list[int] = []
    with pytest.raises(LookupError):
        async with db.transaction() as conn:
            await write_behind(conn, NEW_PARENT, {"id": "p1", "name": "one"})
            await write_behind(conn, NEW_CHILD, {"parent_id": "p1", "name": "a"}, keys.append)
            raise LookupError("the caller changed its mind")
    assert await rows(db) == [] and await rows(db, PARENTS) == []
    async with db.transaction() as conn:  # the connection is clean for the next one
        await write_behind(conn, NEW_PARENT, {"id": "p2", "name": "two"})
    assert await rows(db, PARENTS) == [("p2", "two")]


@asynccontextmanager
async def logged_statements(
    db: Database, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Database, Path]]:
    """A warm Database on `db` whose sessions PostgreSQL logs statement by statement,
    and the server's log file."""
    postgres: PostgresServer = request.getfixturevalue("postgres")
    assert db.url.database is not None
    with logging_statements(postgres, db.url.database) as log:
        logged = Database(db.url.render_as_string(hide_password=False))  # new sessions
        try:
            await warm(logged)
            yield logged, log
        finally:
            await logged.dispose()


async def test_on_postgresql_they_go_as_one_statement(
    db: Database, request: pytest.FixtureRequest
) -> None:
    """Writes of different tables go as one statement (PostgreSQL's own log of the
    session's statements; every row carries the same statement_timestamp()). A block
    that did nothing else sends it without BEGIN and COMMIT, as its own transaction;
    after a read, BEGIN went first. A second write of the same table sends the first
    ones before it, so rows are numbered in the order they were given."""
    if db.is_sqlite:
        pytest.skip("SQLite runs each write at once: there is no round trip to save")
    async with logged_statements(db, request) as (logged, log):

        async def statements_of(block: Callable[[Any], Awaitable[None]]) -> list[str]:
            start = log.stat().st_size
            async with logged.transaction() as conn:
                await block(conn)
            return [line[:100] for line in statements_logged(log, start)]

        async def alone(conn: Any) -> None:
            await write_behind(conn, NEW_PARENT, {"id": "p1", "name": "one"})
            await write_behind(conn, NEW_CHILD, [{"parent_id": "p1", "name": n} for n in "abc"])

        (one,) = await statements_of(alone)
        assert one.split(": ", 1)[1].startswith("WITH w0 AS (INSERT INTO wb_parents"), one

        async def after_a_read(conn: Any) -> None:
            await conn.execute(PARENTS)
            await write_behind(conn, RENAME, {"b_id": "p1", "name": "renamed"})
            await write_behind(conn, NEW_CHILD, {"parent_id": "p1", "name": "d"})
            await write_behind(conn, NEW_CHILD, {"parent_id": "p1", "name": "e"})

        sent = await statements_of(after_a_read)
        assert [line.split(": ", 1)[1][:24] for line in sent] == [
            "BEGIN;",
            "SELECT wb_parents.id, wb",
            "WITH w0 AS (UPDATE wb_pa",  # the rename and "d", then "e" alone
            "INSERT INTO wb_children ",
            "COMMIT;",
        ], sent
    times = select(children.c.name, children.c.statement_at).order_by(children.c.id)
    async with db.read() as conn:
        stored = [(name, at) for name, at in await conn.execute(times)]
    assert [name for name, _ in stored] == list("abcde")
    at = {name: at for name, at in stored}
    assert at["a"] == at["b"] == at["c"] < at["d"] < at["e"]


async def test_steps_commit_each_statement_on_postgresql_and_together_on_sqlite(
    db: Database,
) -> None:
    """`Database.steps()`: on PostgreSQL every statement commits on its own (what went
    before a failure stays) and what was written behind goes at the end; on SQLite the
    block is one transaction. Either way what the block wrote and read is the same."""
    keys: list[int] = []
    async with db.steps() as conn:
        await conn.execute(NEW_PARENT, {"id": "p1", "name": "one"})
        await write_behind(conn, NEW_CHILD, {"parent_id": "p1", "name": "a"}, keys.append)
        seen = [tuple(row) for row in await conn.execute(CHILDREN)]  # sends it first
        await write_behind(conn, NEW_CHILD, {"parent_id": "p1", "name": "b"}, keys.append)
    assert [(p, n) for _, p, n in seen] == [("p1", "a")]
    stored = await rows(db)
    assert [name for _, _, name in stored] == ["a", "b"]
    assert keys == [stored[0][0], stored[1][0]]
    with pytest.raises(IntegrityError):
        async with db.steps() as conn:
            await conn.execute(NEW_PARENT, {"id": "p2", "name": "two"})
            await write_behind(conn, NEW_PARENT, {"id": "p1", "name": "again"})  # taken
    parents_now = await rows(db, PARENTS)
    assert parents_now == ([("p1", "one")] if db.is_sqlite else [("p1", "one"), ("p2", "two")])


async def test_on_postgresql_steps_send_no_begin_or_commit(
    db: Database, request: pytest.FixtureRequest
) -> None:
    """A block in steps is its statements alone: a read, an update, and what it wrote
    behind as one more at its end (PostgreSQL's own log)."""
    if db.is_sqlite:
        pytest.skip("SQLite runs a block in steps as one transaction")
    async with logged_statements(db, request) as (logged, log):
        async with logged.transaction() as conn:
            await conn.execute(NEW_PARENT, {"id": "p1", "name": "one"})
        start = log.stat().st_size
        async with logged.steps() as conn:
            await conn.execute(PARENTS)
            await conn.execute(RENAME, {"b_id": "p1", "name": "renamed"})
            await write_behind(conn, NEW_CHILD, {"parent_id": "p1", "name": "a"})
            await write_behind(conn, NEW_NOTE, {"text": "n"})
        sent = statements_logged(log, start)
        assert [line.split(": ", 1)[1][:24] for line in sent] == [
            "SELECT wb_parents.id, wb",
            "UPDATE wb_parents SET na",
            "WITH w0 AS (INSERT INTO ",
        ], sent
    assert await rows(db, PARENTS) == [("p1", "renamed")]
    assert [name for _, _, name in await rows(db)] == ["a"]


async def test_a_write_of_a_table_a_kept_write_only_reads_goes_with_it(
    db: Database, request: pytest.FixtureRequest
) -> None:
    """A kept write that reads a table (a subquery) and a later write of that table go
    as one statement on PostgreSQL: the read came first, and the parts of one
    statement see the table as it was before it, as running them in turn would."""
    if db.is_sqlite:
        pytest.skip("SQLite runs each write at once: there is no round trip to save")
    async with logged_statements(db, request) as (logged, log):
        async with logged.transaction() as conn:
            await write_behind(conn, NEW_PARENT, {"id": "p1", "name": "one"})
            await write_behind(conn, NEW_NOTE, {"text": "a"})
        start = log.stat().st_size
        async with logged.transaction() as conn:
            await write_behind(conn, NOTES_AS_NAME, {"b_id": "p1"})  # one note so far
            await write_behind(conn, NEW_NOTE, {"text": "b"})
        sent = statements_logged(log, start)
        assert [line.split(": ", 1)[1][:24] for line in sent] == ["WITH w0 AS (UPDATE wb_pa"]
    assert await rows(db, PARENTS) == [("p1", "1")]
    assert len(await rows(db, select(notes.c.id))) == 2
