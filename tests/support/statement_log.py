"""Services whose statements PostgreSQL logs one by one, for tests that count what a
path sends (tests/support/postgres.statements_logged reads the log)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from app.runtime import build_runtime
from app.services.auth import Principal
from app.services.container import Services
from tests.conftest import DEV_PUBLISHABLE, DEV_SECRET, Databases, make_settings
from tests.support.postgres import PostgresServer, logging_statements


@asynccontextmanager
async def logged_services(
    request: pytest.FixtureRequest, databases: Databases, database_url: str
) -> AsyncIterator[tuple[Services, Principal, Path]]:
    """The services on `database_url`, the dev merchant, and the path of PostgreSQL's
    log, which holds every statement of their sessions (log_statement = all). A test
    on SQLite is skipped: it has no round trips to count."""
    if not databases.is_postgres:
        pytest.skip("SQLite has no round trips to count")
    postgres: PostgresServer = request.getfixturevalue("postgres")
    with logging_statements(postgres, database_url.rsplit("/", 1)[1]) as log:
        runtime = build_runtime(make_settings(database_url))
        try:
            services = runtime.services
            await services.merchants.ensure_dev_merchant(DEV_SECRET, DEV_PUBLISHABLE)
            yield services, await services.auth.principal_for(DEV_SECRET), log
        finally:
            for close in runtime.closers:
                await close()
