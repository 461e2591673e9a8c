"""Apollo's automatic persisted queries for tests: a document's hash extension."""

from __future__ import annotations

import hashlib
from typing import Any


def sha256_of(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def persisted(query: str) -> dict[str, Any]:
    """The `extensions` an Apollo client sends with (or instead of) `query`."""
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256_of(query)}}
