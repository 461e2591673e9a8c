"""The migrations build exactly the tables the code declares, and go both ways, on
SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json

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


async def test_events_written_before_0009_are_chained_by_it(databases, tmp_path):
    """Existing audit events get their links in the order they were written, and
    the chain goes on from there."""
    from datetime import UTC, datetime

    from app.db.repositories import audit
    from app.db.repositories.audit import NewAuditEvent
    from app.services.audit_trail import AuditTrail

    url = databases.new_url(tmp_path, migrated=False)
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0008")
    database = Database(url)
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    try:
        async with database.transaction() as conn:
            await conn.execute(
                text(
                    "INSERT INTO merchants (id, name, created_at) "
                    "VALUES ('acct_1', 'Old', '2026-01-01 00:00:00+00:00')"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO payment_intents (id, merchant_id, status, version, currency, "
                    "amount, amount_received, amount_refunded, allowed_methods, client_secret, "
                    "created_at, updated_at) VALUES ('pi_1', 'acct_1', 'SUCCEEDED', 3, 'MXN', "
                    "100, 100, 0, '[]', 'pi_1_secret_x', :at, :at)"
                ),
                {"at": at.replace(tzinfo=None) if database.is_sqlite else at},
            )
            for n in range(3):
                await conn.execute(
                    text(
                        "INSERT INTO audit_events (intent_id, merchant_id, type, status, "
                        "provider, data, at) VALUES ('pi_1', 'acct_1', :type, NULL, NULL, "
                        ":data, :at)"
                    ),
                    {
                        "type": f"old.{n}",
                        "data": json.dumps({"n": n, "ñ": "sí"}),
                        "at": at.replace(tzinfo=None) if database.is_sqlite else at,
                    },
                )
        await database.dispose()
        await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
        database = Database(url)
        async with database.transaction() as conn:
            await audit.append(
                conn,
                intent_id="pi_1",
                merchant_id="acct_1",
                events=[NewAuditEvent("new.0")],
                at=at,
            )
        (report,) = await AuditTrail(database).verify("acct_1")
        assert (report.events, report.broken) == (4, None)
    finally:
        await database.dispose()
