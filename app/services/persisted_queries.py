"""Automatic persisted queries (Apollo's `extensions.persistedQuery`).

A client sends a document's SHA-256 instead of its text; a hash the server does not
know is PERSISTED_QUERY_NOT_FOUND, and the client sends hash and text together,
which are checked against each other and stored. The store is the database, so a
hash one API process learnt is known to all of them; each process keeps a bounded
cache of recent documents in front of it. The table is bounded too: past
`MAX_STORED` documents, the oldest go (their clients simply send the text again).
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import persisted_queries as rows
from app.domain.errors import InvalidInput, PersistedQueryMismatch, PersistedQueryNotFound

# Documents kept in the database; checkouts and dashboards send a few dozen.
MAX_STORED = 5_000
# A stored document's longest text (a checkout's biggest query is about 1 KB).
MAX_QUERY_CHARS = 16_384
# Documents each process keeps in memory.
CACHE_SIZE = 512
# Registrations between two trims of the table (a trim is one DELETE).
TRIM_EVERY = 100
SUPPORTED_VERSION = 1
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class PersistedQueries:
    def __init__(self, db: Database, clock: Clock, *, max_stored: int = MAX_STORED) -> None:
        self.db = db
        self.clock = clock
        self.max_stored = max_stored
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._added = 0

    async def resolve(self, persisted: object, query: str | None) -> str:
        """The document to run for a request whose `extensions.persistedQuery` is
        `persisted` and whose `query` is `query` (None when only the hash came)."""
        sha256 = _hash_of(persisted)
        if query is None:
            found = await self._find(sha256)
            if found is None:
                raise PersistedQueryNotFound("PersistedQueryNotFound")
            return found
        if hashlib.sha256(query.encode()).hexdigest() != sha256:
            raise PersistedQueryMismatch("provided sha does not match query")
        if sha256 not in self._cache and len(query) <= MAX_QUERY_CHARS:
            await self._add(sha256, query)
        return query

    async def _find(self, sha256: str) -> str | None:
        found = self._cache.get(sha256)
        if found is not None:
            self._cache.move_to_end(sha256)
            return found
        async with self.db.read() as conn:
            found = await rows.find(conn, sha256)
        if found is not None:
            self._remember(sha256, found)
        return found

    async def _add(self, sha256: str, query: str) -> None:
        async with self.db.transaction() as conn:
            await rows.add(conn, sha256, query, self.clock.now())
            self._added += 1
            if self._added % TRIM_EVERY == 0:
                await rows.keep_newest(conn, self.max_stored)
        self._remember(sha256, query)

    def _remember(self, sha256: str, query: str) -> None:
        self._cache[sha256] = query
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)


def _hash_of(persisted: object) -> str:
    if not isinstance(persisted, dict) or persisted.get("version") != SUPPORTED_VERSION:
        raise InvalidInput("persistedQuery must be {version: 1, sha256Hash: ...}")
    sha256 = persisted.get("sha256Hash")
    if not isinstance(sha256, str) or SHA256_HEX.fullmatch(sha256) is None:
        raise InvalidInput("persistedQuery.sha256Hash must be 64 lowercase hex digits")
    return sha256
