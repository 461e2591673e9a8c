"""SQLite's group commit (app/db/sqlite_writer.py): transactions of one loop turn
share a COMMIT, yet each is still all-or-nothing and nobody hears of it early."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event, text

from app.db.engine import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'group.db'}")
    async with database.transaction() as conn:
        await conn.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        await conn.execute(
            text("CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent)")
        )
        await conn.execute(text("CREATE TABLE t (v TEXT UNIQUE)"))
    yield database
    await database.dispose()


async def rows(db: Database) -> list[str]:
    async with db.read() as conn:
        return [r[0] for r in (await conn.execute(text("SELECT v FROM t ORDER BY v"))).all()]


async def insert(db: Database, value: str, *, fail: bool = False) -> None:
    async with db.transaction() as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": value})
        if fail:
            raise ValueError("the caller changed its mind")


async def test_transactions_of_one_turn_share_a_commit_and_fail_alone(db: Database) -> None:
    commits = []

    @event.listens_for(db._group_writer._engine, "commit")  # the writer's own engine
    def _count(_conn: object) -> None:
        commits.append(1)

    results = await asyncio.gather(
        insert(db, "a"),
        insert(db, "b", fail=True),
        insert(db, "c"),
        insert(db, "a"),  # unique violation: this one alone fails
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ValueError)
    assert "UNIQUE" in str(results[3])
    assert await rows(db) == ["a", "c"]
    assert len(commits) == 1


async def test_nothing_is_visible_or_announced_before_the_commit(db: Database) -> None:
    announced: list[list[str]] = []
    db.add_after_commit(announced.append)
    seen_inside: list[list[str]] = []

    async def write() -> None:
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO t (v) VALUES ('x')"))
            db.after_commit(conn, "x committed")
        seen_inside.append(await rows(db))  # transaction() has returned: committed

    async def peek() -> list[str]:
        # Runs in the same loop turn, after write()'s body and before the COMMIT.
        return await rows(db)

    task = asyncio.create_task(write())
    await asyncio.sleep(0)
    assert await peek() == []
    assert announced == []
    await task
    assert seen_inside == [["x"]]
    assert announced == [["x committed"]]


async def test_a_failed_commit_fails_every_transaction_in_the_group(db: Database) -> None:
    announced: list[list[str]] = []
    db.add_after_commit(announced.append)

    async def orphan() -> None:
        async with db.transaction() as conn:
            # Checked at COMMIT: the whole group's COMMIT fails.
            await conn.execute(text("PRAGMA defer_foreign_keys=ON"))
            await conn.execute(text("INSERT INTO child (id, parent) VALUES (1, 99)"))
            db.after_commit(conn, "orphan")

    async def innocent() -> None:
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO t (v) VALUES ('innocent')"))
            db.after_commit(conn, "innocent")

    results = await asyncio.gather(orphan(), innocent(), return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results), results
    assert "FOREIGN KEY" in str(results[0])
    assert await rows(db) == []
    assert announced == []
    await insert(db, "after")  # the writer recovers for the next group
    assert await rows(db) == ["after"]


async def test_a_transaction_returns_only_once_its_commit_is_done(db: Database) -> None:
    commits = []

    @event.listens_for(db._group_writer._engine, "commit")
    def _seen(_conn: object) -> None:
        commits.append(threading.current_thread())

    await insert(db, "a")
    assert commits == [threading.current_thread()]  # on the loop: no thread to wait for
    assert await rows(db) == ["a"]
