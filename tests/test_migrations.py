"""The migrations build exactly the tables the code declares, and go both ways, on
SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.db.engine import Database
from app.db.migrate import alembic_config, upgrade
from app.db.tables import Base


async def test_migrations_match_the_models_and_downgrade_cleanly(databases, tmp_path):
    url = databases.new_url(tmp_path, migrated=False)
    database = Database(url)
    try:
        await upgrade(database)
        async with database.read() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
        assert diff == []
        config = alembic_config(url)
        await database.dispose()
        # The command-line path (`alembic downgrade`) runs its own event loop.
        await asyncio.to_thread(command.downgrade, config, "base")
        await asyncio.to_thread(command.upgrade, config, "head")
    finally:
        await database.dispose()
