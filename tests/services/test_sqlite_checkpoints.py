"""SQLite's WAL is copied back beside the loop and still starts over
(app/db/sqlite_checkpoints.py): the writer never checkpoints in its COMMIT, yet the
WAL stays bounded under writes that never pause."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from app.db import sqlite_checkpoints
from app.db.engine import Database

ROW = "x" * 2_000  # about two rows a page


@pytest.fixture
async def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Database]:
    monkeypatch.setattr(sqlite_checkpoints, "CHECKPOINT_EVERY", 2)
    monkeypatch.setattr(sqlite_checkpoints, "RESET_FRAMES", 64)
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}")
    async with database.transaction() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    yield database
    await database.dispose()


async def write(db: Database, rows: int) -> None:
    async with db.transaction() as conn:
        for _ in range(rows):
            await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": ROW})


def wal_pages(path: Path) -> int:
    return max(0, (path.stat().st_size - 32)) // (4_096 + 24) if path.exists() else 0


async def test_the_writer_leaves_checkpoints_to_the_checkpointer(db: Database) -> None:
    async with db.transaction() as conn:
        limit = (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar()
    assert limit == sqlite_checkpoints.FALLBACK_AUTOCHECKPOINT


ROUNDS = 180


async def test_the_wal_starts_over_under_writes_that_never_pause(
    db: Database, tmp_path: Path
) -> None:
    wal = tmp_path / "wal.db-wal"
    largest = 0
    for _ in range(ROUNDS):  # about 1,800 pages written, in group commits of three
        await asyncio.gather(*(write(db, 4) for _ in range(3)))
        largest = max(largest, wal_pages(wal))
    # Without a reset the WAL would hold every page written; with one it is reused
    # from its beginning once it passes RESET_FRAMES (64). How far past that it gets
    # depends on how soon the checkpoint thread answers (later on a busy machine), not
    # on how much was written: a third of the total leaves room for that, and none for
    # a WAL that never starts over.
    assert largest < 600, largest
    async with db.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == ROUNDS * 3 * 4


async def test_writes_go_on_when_checkpoints_fail(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpointer = db._group_writer._checkpointer
    assert checkpointer is not None

    def broken() -> int:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(checkpointer, "_checkpoint", broken)
    checkpointer.reset_wanted = True  # a reset, too, finds its checkpoint failing
    for _ in range(10):
        await asyncio.gather(*(write(db, 2) for _ in range(3)))
    async with db.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 60


async def test_nothing_is_written_after_dispose(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'gone.db'}")
    async with database.transaction() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    await database.dispose()
    with pytest.raises(RuntimeError, match="disposed"):
        await write(database, 1)
    await database.dispose()  # twice is harmless
