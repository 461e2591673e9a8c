"""An intent's new version written behind over a row its transaction read FOR UPDATE
(`intents.save(locked=True)`): the version cannot have moved, and if a caller that
did not lock finds it moved after all, the transaction fails instead of overwriting
another writer's version. Both databases."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy.exc import IntegrityError

from app.db.repositories import intents as intent_rows
from app.services.intents import CreateIntent


async def test_a_locked_save_writes_the_next_version(runtime) -> None:
    services = runtime.services
    me = await services.auth.principal_for("sk_test_dev")
    intent = (await services.intents.create(me, CreateIntent(amount="10.00"))).intent
    async with services.db.transaction() as conn:
        current = await intent_rows.get(conn, intent.id, for_update=True)
        assert current is not None
        after = replace(current, version=current.version + 1, description="locked")
        await intent_rows.save(conn, after, previous_version=current.version, locked=True)
    async with services.db.read() as conn:
        stored = await intent_rows.get(conn, intent.id)
    assert stored is not None
    assert (stored.version, stored.description) == (intent.version + 1, "locked")


async def test_a_locked_save_over_a_moved_version_fails_and_changes_nothing(runtime) -> None:
    services = runtime.services
    me = await services.auth.principal_for("sk_test_dev")
    intent = (await services.intents.create(me, CreateIntent(amount="10.00"))).intent
    moved = replace(intent, version=intent.version + 1, description="moved first")
    async with services.db.transaction() as conn:
        await intent_rows.save(conn, moved, previous_version=intent.version)
    stale = replace(intent, version=intent.version + 1, description="lost update?")
    with pytest.raises(IntegrityError):
        async with services.db.transaction() as conn:  # misused: nothing read FOR UPDATE
            await intent_rows.save(conn, stale, previous_version=intent.version, locked=True)
    async with services.db.read() as conn:
        stored = await intent_rows.get(conn, intent.id)
    assert stored is not None
    assert (stored.version, stored.description) == (moved.version, "moved first")
