"""A runtime whose statements PostgreSQL logs one by one, for tests that count what
a path sends (tests/support/postgres.statements_logged reads the log)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from app.runtime import Runtime, build_runtime
from tests.conftest import DEV_PUBLISHABLE, DEV_SECRET, make_settings
from tests.support.postgres import PostgresServer


@asynccontextmanager
async def logged_runtime(
    postgres: PostgresServer, database_url: str
) -> AsyncIterator[tuple[Runtime, Path]]:
    """The services on `database_url` with the dev merchant, every statement of their
    sessions in PostgreSQL's log (log_statement = all), and the log's path."""
    name = database_url.rsplit("/", 1)[1]
    postgres.sql(f"ALTER DATABASE {name} SET log_statement = 'all'")  # its new sessions
    runtime = build_runtime(make_settings(database_url))
    try:
        await runtime.services.merchants.ensure_dev_merchant(DEV_SECRET, DEV_PUBLISHABLE)
        yield runtime, postgres.root / "server.log"
    finally:
        for close in runtime.closers:
            await close()
        postgres.sql(f"ALTER DATABASE {name} RESET log_statement")
