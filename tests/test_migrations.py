"""The migrations build exactly the tables the code declares, and go both ways, on
SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

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


async def test_keys_made_before_0008_keep_working_and_show_what_is_known_of_them(
    databases, tmp_path
):
    """Only digests were stored, so a key's last four characters are known only when
    the key is shorter than the prefix kept (the dev keys); the rest show ""."""
    url = databases.new_url(tmp_path, migrated=False)
    config = alembic_config(url)
    await asyncio.to_thread(command.upgrade, config, "0005")
    database = Database(url)
    try:
        async with database.transaction() as conn:
            await conn.execute(
                text(
                    "INSERT INTO merchants (id, name, created_at) "
                    "VALUES ('acct_1', 'Old', '2026-01-01 00:00:00+00:00')"
                )
            )
            for key_id, prefix in (("key_1", "sk_test_dev"), ("key_2", "sk_test_abcd")):
                await conn.execute(
                    text(
                        "INSERT INTO api_keys (id, merchant_id, kind, key_hash, key_prefix, "
                        "created_at) VALUES (:id, 'acct_1', 'secret', :hash, :prefix, "
                        "'2026-01-01 00:00:00+00:00')"
                    ),
                    {"id": key_id, "hash": key_id * 8, "prefix": prefix},
                )
        await database.dispose()
        await asyncio.to_thread(command.upgrade, config, "head")
        async with database.read() as conn:
            rows = (
                await conn.execute(text("SELECT id, last4, expires_at FROM api_keys ORDER BY id"))
            ).all()
        assert [tuple(row) for row in rows] == [("key_1", "_dev", None), ("key_2", "", None)]
    finally:
        await database.dispose()
