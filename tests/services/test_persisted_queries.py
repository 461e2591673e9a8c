"""The persisted-query store stays bounded and answers from the database, whichever
process registered a document."""

from __future__ import annotations

import pytest

from app.domain.errors import PersistedQueryMismatch, PersistedQueryNotFound
from app.services.persisted_queries import TRIM_EVERY, PersistedQueries
from tests.support.persisted import persisted

KEPT = 10


def document(n: int) -> str:
    return f"query Q{n} {{ providers {{ name }} }}"


async def test_the_store_keeps_the_newest_documents_only(runtime):
    services = runtime.services
    store = PersistedQueries(services.db, services.clock, max_stored=KEPT)
    for n in range(TRIM_EVERY):
        query = document(n)
        assert await store.resolve(persisted(query)["persistedQuery"], query) == query
    # Another process (a store with an empty cache) reads the database.
    other = PersistedQueries(services.db, services.clock, max_stored=KEPT)
    newest = document(TRIM_EVERY - 1)
    assert await other.resolve(persisted(newest)["persistedQuery"], None) == newest
    oldest = persisted(document(0))["persistedQuery"]
    with pytest.raises(PersistedQueryNotFound):
        await other.resolve(oldest, None)


async def test_a_mismatch_stores_nothing(runtime):
    services = runtime.services
    store = PersistedQueries(services.db, services.clock)
    claimed = persisted(document(1))["persistedQuery"]
    with pytest.raises(PersistedQueryMismatch):
        await store.resolve(claimed, document(2))
    with pytest.raises(PersistedQueryNotFound):
        await PersistedQueries(services.db, services.clock).resolve(claimed, None)
