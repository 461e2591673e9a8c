"""Processes starting together on a fresh database all seed the dev merchant: one
creates it, the others find it (a cluster's first start must not crash)."""

from __future__ import annotations

import asyncio

from app.clock import Clock
from app.db.engine import Database
from app.db.migrate import upgrade
from app.services.merchants import MerchantService


async def test_concurrent_seeding_yields_one_dev_merchant(database_url):
    database = Database(database_url)
    try:
        await upgrade(database)
        merchants = MerchantService(database, Clock())
        seeded = await asyncio.gather(
            *(merchants.ensure_dev_merchant("sk_test_race", "pk_test_race") for _ in range(4))
        )
    finally:
        await database.dispose()
    assert len(set(seeded)) == 1
