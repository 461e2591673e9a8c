"""Automatic persisted queries (contract section 9): an unknown hash answers
PERSISTED_QUERY_NOT_FOUND, the client sends hash and text, and the hash alone
works from then on, over POST, GET and subscriptions over SSE. A wrong hash is an
error and stores nothing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import DEV_SECRET
from tests.support.graphql import create_intent
from tests.support.http_streams import COMPLETE, HTTPSubscription
from tests.support.persisted import persisted

AUTH = {"Authorization": f"Bearer {DEV_SECRET}"}


def fresh_query() -> str:
    """A document no test has registered yet (the server is shared)."""
    return f"query Providers_{uuid.uuid4().hex} {{ providers {{ name }} }}"


async def post(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    answer = await http.post("/graphql", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def get(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
    answer = await http.get("/graphql", params=params, headers=AUTH)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def code_of(result: dict[str, Any]) -> str:
    assert result.get("errors"), result
    return str(result["errors"][0]["extensions"]["code"])


@pytest.mark.parametrize("send", [post, get], ids=["post", "get"])
async def test_unknown_hash_then_registration_then_the_hash_alone(http, send):
    query = fresh_query()
    by_hash = {"extensions": persisted(query)}
    unknown = await send(http, by_hash)
    assert code_of(unknown) == "PERSISTED_QUERY_NOT_FOUND"
    assert unknown["errors"][0]["message"] == "PersistedQueryNotFound"  # what Apollo matches
    registered = await send(http, {"query": query, **by_hash})
    assert "errors" not in registered, registered
    again = await send(http, by_hash)
    assert again == registered


async def test_a_wrong_hash_is_an_error_and_stores_nothing(http):
    query = fresh_query()
    wrong = persisted(fresh_query())
    mismatch = await post(http, {"query": query, "extensions": wrong})
    assert code_of(mismatch) == "PERSISTED_QUERY_HASH_MISMATCH"
    assert mismatch.get("data") is None
    assert code_of(await post(http, {"extensions": wrong})) == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize(
    "extension",
    [
        {"version": 2, "sha256Hash": "0" * 64},
        {"version": 1, "sha256Hash": "not a hash"},
        {"version": 1, "sha256Hash": "A" * 64},
        {"version": 1},
        "a string",
    ],
)
async def test_a_malformed_persisted_query_is_invalid_input(http, extension):
    result = await post(http, {"extensions": {"persistedQuery": extension}})
    assert code_of(result) == "INVALID_INPUT"


async def test_a_subscription_over_sse_by_its_hash(api, http):
    intent = await create_intent(api)
    query = (
        f"subscription Watch_{uuid.uuid4().hex}($id: ID!) "
        "{ paymentIntentUpdated(id: $id) { id version } }"
    )
    variables = {"id": intent["id"]}
    ext = persisted(query)
    async with HTTPSubscription(http, None, variables, key=DEV_SECRET, extensions=ext) as sub:
        assert await sub.error_code() == "PERSISTED_QUERY_NOT_FOUND"
        assert await sub.next() == COMPLETE
    async with HTTPSubscription(http, query, variables, key=DEV_SECRET, extensions=ext) as sub:
        assert (await sub.data())["paymentIntentUpdated"]["version"] == 1
    async with HTTPSubscription(
        http, None, variables, key=DEV_SECRET, extensions=ext, method="GET"
    ) as sub:
        assert (await sub.data())["paymentIntentUpdated"]["id"] == intent["id"]


async def test_a_mutation_by_hash_still_needs_its_key(http):
    """The hash stands for the text only: who may run it is decided as ever."""
    query = 'mutation { createPaymentIntent(input: {amount: "1.00"}) { errors { code } } }'
    ext = persisted(query)
    await post(http, {"query": query, "extensions": ext})
    answer = await http.post("/graphql", json={"extensions": ext})
    assert answer.status_code == 200
    assert code_of(answer.json()) == "UNAUTHENTICATED"
