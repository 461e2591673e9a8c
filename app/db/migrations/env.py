"""Alembic environment: runs on a connection handed over by app.db.migrate, or,
from the `alembic` command line, on an engine built from COBRO_DATABASE_URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from app.db.tables import Base

target_metadata = Base.metadata

# Any constant will do: it only has to be the same in every process that migrates.
_PG_MIGRATION_LOCK = 0x636F62726F


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Two processes starting at once must not both create the tables.
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_command_line() -> None:
    from app.config import Settings
    from app.db.engine import Database

    url = context.config.get_main_option("sqlalchemy.url") or Settings().database_url
    database = Database(url)
    try:
        async with database.transaction() as conn:
            await conn.run_sync(_run)
    finally:
        await database.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_from_command_line())
