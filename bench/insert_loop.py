"""The write ceiling: a plain async SQLAlchemy insert + commit loop (aiosqlite, or
asyncpg), on the same database, for a number of seconds. Prints commits per second.

    python bench/insert_loop.py sqlite+aiosqlite:///… 10
    python bench/insert_loop.py postgresql+asyncpg://… 10
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy.ext.asyncio import create_async_engine

metadata = MetaData()
rows = Table(
    "bench_ceiling",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("payload", String(64)),
)


async def main(url: str, seconds: float) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            await conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
        await conn.run_sync(metadata.create_all)
    commits = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        async with engine.begin() as conn:
            await conn.execute(insert(rows).values(payload="x" * 32))
        commits += 1
    elapsed = time.perf_counter() - started
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
    await engine.dispose()
    print(
        json.dumps(
            {
                "commits": commits,
                "seconds": round(elapsed, 3),
                "commits_per_s": round(commits / elapsed, 1),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
