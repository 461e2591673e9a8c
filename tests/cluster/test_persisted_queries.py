"""A persisted query registered through one API process is known to another."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import DEV_SECRET
from tests.support.persisted import persisted
from tests.support.process import ApiProcess, start_all
from tests.support.server import free_port

pytestmark = pytest.mark.slow  # started first, so no worker ends on it alone

AUTH = {"Authorization": f"Bearer {DEV_SECRET}"}


@pytest.fixture
def two_processes(tmp_path, databases) -> Iterator[tuple[ApiProcess, ApiProcess]]:
    env = {"COBRO_ENV": "test", "COBRO_DATABASE_URL": databases.new_url(tmp_path)}
    a = ApiProcess(env, tmp_path / "a.log", free_port())
    b = ApiProcess(env, tmp_path / "b.log", free_port())
    start_all(a, b)
    try:
        yield a, b
    finally:
        b.stop()
        a.stop()


async def test_a_hash_registered_on_one_process_works_on_another(two_processes):
    a, b = two_processes
    query = f"query Shared_{uuid.uuid4().hex} {{ providers {{ name }} }}"
    by_hash = {"extensions": persisted(query)}
    async with httpx.AsyncClient(timeout=30, headers=AUTH) as http:
        unknown = (await http.post(f"{b.url}/graphql", json=by_hash)).json()
        assert unknown["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        registered = await http.post(f"{a.url}/graphql", json={"query": query, **by_hash})
        assert "errors" not in registered.json(), registered.text
        answered = (await http.post(f"{b.url}/graphql", json=by_hash)).json()
    assert answered == registered.json()
