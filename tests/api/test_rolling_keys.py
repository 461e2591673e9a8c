"""Rolling API keys (contract section 10) over HTTP: the new key is shown once, the
old one keeps working for the overlap and not a moment after, keys stay digests at
rest, and a bad roll changes nothing."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.db.tables import ApiKey
from tests.conftest import (
    DEV_PUBLISHABLE,
    DEV_SECRET,
    create_merchant,
    make_settings,
    start_server,
)
from tests.support.graphql import CREATE, GraphQLClient, create_intent

KEYS = "query { apiKeys { kind key last4 createdAt expiresAt } }"
ROLL = """
mutation($kind: ApiKeyKind!, $hours: Int) {
  rollApiKey(kind: $kind, expireOldInHours: $hours) {
    apiKey { kind key last4 createdAt expiresAt }
    errors { code message field }
  }
}
"""
ROLL_DEFAULT = """
mutation { rollApiKey(kind: SECRET) { apiKey { key expiresAt } errors { code } } }
"""
METHODS = 'query { paymentMethods(amount: "500.00") { type } }'


@pytest.fixture
async def own(database_url) -> AsyncIterator[tuple[GraphQLClient, httpx.AsyncClient, str]]:
    """A server of this test's own: it rolls the dev merchant's keys and moves the clock."""
    thread = start_server(database_url)
    try:
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as http:
            yield GraphQLClient(http, DEV_SECRET), http, thread.settings.database_url
    finally:
        thread.stop()


async def roll(api: GraphQLClient, kind: str, hours: int | None) -> dict:
    payload = (await api.data(ROLL, {"kind": kind, "hours": hours}))["rollApiKey"]
    return payload


async def keys(api: GraphQLClient) -> list[dict]:
    return (await api.data(KEYS))["apiKeys"]


async def works(api: GraphQLClient) -> bool:
    body = await api.post(CREATE, {"input": {"amount": "100.00"}})
    if "errors" in body:
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body
        return False
    return body["data"]["createPaymentIntent"]["errors"] == []


async def advance(http: httpx.AsyncClient, seconds: int) -> None:
    response = await http.post("/sandbox/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_api_keys_show_last4_and_no_key(own):
    api, _, _ = own
    listed = await keys(api)
    assert [(k["kind"], k["key"], k["last4"], k["expiresAt"]) for k in listed] == [
        ("SECRET", None, DEV_SECRET[-4:], None),
        ("PUBLISHABLE", None, DEV_PUBLISHABLE[-4:], None),
    ]


async def test_both_keys_work_during_the_overlap_and_the_old_one_stops_after(own):
    api, http, _ = own
    rolled = await roll(api, "SECRET", 1)
    assert rolled["errors"] == []
    new = rolled["apiKey"]
    assert new["kind"] == "SECRET" and new["key"].startswith("sk_test_")
    assert new["last4"] == new["key"][-4:] and new["expiresAt"] is None
    fresh = api.as_key(new["key"])
    assert await works(api) and await works(fresh)

    listed = await keys(fresh)
    assert [(k["kind"], k["last4"], k["key"]) for k in listed] == [
        ("SECRET", DEV_SECRET[-4:], None),
        ("SECRET", new["last4"], None),
        ("PUBLISHABLE", DEV_PUBLISHABLE[-4:], None),
    ]
    old_expiry = at(listed[0]["expiresAt"]) - at(new["createdAt"])
    assert timedelta(minutes=59) < old_expiry <= timedelta(hours=1)
    assert listed[1]["expiresAt"] is None and listed[2]["expiresAt"] is None

    await advance(http, 3_000)
    assert await works(api)  # 50 minutes on: still in the overlap
    await advance(http, 700)
    body = await api.post(KEYS)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "expired" in body["errors"][0]["message"]
    assert await works(fresh)
    assert [k["last4"] for k in await keys(fresh)] == [new["last4"], DEV_PUBLISHABLE[-4:]]


async def test_the_default_overlap_is_24_hours(own):
    api, http, _ = own
    rolled = (await api.data(ROLL_DEFAULT))["rollApiKey"]
    fresh = api.as_key(rolled["apiKey"]["key"])
    await advance(http, 24 * 3600 - 120)
    assert await works(api) and await works(fresh)
    await advance(http, 240)
    assert not await works(api) and await works(fresh)


async def test_expire_old_in_zero_hours_stops_the_old_key_at_once(own):
    api, _, _ = own
    assert await works(api)  # the old key is in the process's cache now
    rolled = await roll(api, "SECRET", 0)
    assert rolled["errors"] == []
    assert not await works(api)
    assert await works(api.as_key(rolled["apiKey"]["key"]))


async def test_a_publishable_key_rolls_too_and_both_work_meanwhile(own):
    api, _, _ = own
    rolled = (await roll(api, "PUBLISHABLE", 2))["apiKey"]
    assert rolled["key"].startswith("pk_test_")
    for key in (DEV_PUBLISHABLE, rolled["key"]):
        assert (await api.as_key(key).data(METHODS))["paymentMethods"]
    assert await works(api)  # the secret key was not touched


async def test_rolling_again_in_the_overlap_keeps_the_first_keys_expiry(own):
    api, _, _ = own
    first = (await roll(api, "SECRET", 24))["apiKey"]
    second = (await roll(api.as_key(first["key"]), "SECRET", 48))["apiKey"]
    listed = {k["last4"]: k for k in await keys(api.as_key(second["key"])) if k["kind"] == "SECRET"}
    dev, one = at(listed[DEV_SECRET[-4:]]["expiresAt"]), at(listed[first["last4"]]["expiresAt"])
    assert one - dev > timedelta(hours=23)  # 24 h stayed 24 h; the first gets 48
    assert listed[second["last4"]]["expiresAt"] is None


@pytest.mark.parametrize(
    ("variables", "code", "field"),
    [
        ({"kind": "SECRET", "hours": -1}, "INVALID_INPUT", ["expireOldInHours"]),
        ({"kind": "SECRET", "hours": 169}, "INVALID_INPUT", ["expireOldInHours"]),
    ],
)
async def test_a_bad_roll_is_refused_and_changes_nothing(own, variables, code, field):
    api, _, _ = own
    before = await keys(api)
    payload = (await api.data(ROLL, variables))["rollApiKey"]
    assert payload["apiKey"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]
    assert await keys(api) == before
    assert await works(api)


async def test_an_unknown_kind_is_a_validation_error(own):
    api, _, _ = own
    body = await api.post(ROLL, {"kind": "CLIENT_SECRET", "hours": 1})
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert len(await keys(api)) == 2


async def test_at_most_five_keys_of_a_kind_work_at_once(own):
    api, _, _ = own
    for _ in range(4):
        assert (await roll(api, "SECRET", 1))["errors"] == []
    refused = await roll(api, "SECRET", 1)
    assert [e["code"] for e in refused["errors"]] == ["INVALID_STATE"]
    assert "expireOldInHours: 0" in refused["errors"][0]["message"]
    assert len([k for k in await keys(api) if k["kind"] == "SECRET"]) == 5
    at_once = await roll(api, "SECRET", 0)
    assert at_once["errors"] == []
    fresh = api.as_key(at_once["apiKey"]["key"])
    assert [k["kind"] for k in await keys(fresh)] == ["SECRET", "PUBLISHABLE"]


async def test_only_the_secret_key_lists_or_rolls_its_own_keys(own):
    api, http, database_url = own
    intent = await create_intent(api)
    for key, code in [
        (DEV_PUBLISHABLE, "FORBIDDEN"),
        (intent["clientSecret"], "FORBIDDEN"),
        (None, "UNAUTHENTICATED"),
    ]:
        for query, variables in [(KEYS, None), (ROLL, {"kind": "SECRET", "hours": 0})]:
            body = await api.as_key(key).post(query, variables)
            assert body["errors"][0]["extensions"]["code"] == code
    assert await works(api)
    other = await create_merchant(make_settings(database_url), "Other merchant")
    theirs = GraphQLClient(http, other.secret_key)
    rolled = await roll(theirs, "SECRET", 0)
    assert rolled["errors"] == []
    assert not await works(theirs)
    assert await works(api)  # another merchant's roll touched nothing of ours
    assert [k["last4"] for k in await keys(api)] == [DEV_SECRET[-4:], DEV_PUBLISHABLE[-4:]]


async def test_keys_are_stored_as_digests_only(own):
    api, _, database_url = own
    rolled = (await roll(api, "SECRET", 1))["apiKey"]
    database = Database(database_url)
    try:
        async with database.read() as conn:
            rows = (await conn.execute(select(ApiKey.__table__))).mappings().all()
    finally:
        await database.dispose()
    assert len(rows) == 3
    digest = hashlib.sha256(rolled["key"].encode()).hexdigest()
    assert digest in {row["key_hash"] for row in rows}
    assert not any(rolled["key"] in str(value) for row in rows for value in row.values())


async def test_two_rolls_at_once_leave_one_current_key(own):
    """Rolls of one merchant run one after the other: the second expires the first's
    new key too, so exactly one key of the kind is left without an expiry."""
    api, _, _ = own
    first, second = await asyncio.gather(roll(api, "SECRET", 1), roll(api, "SECRET", 1))
    assert first["errors"] == second["errors"] == []
    secrets = [k for k in await keys(api) if k["kind"] == "SECRET"]
    assert len(secrets) == 3
    assert [k["expiresAt"] is None for k in secrets].count(True) == 1
    for rolled in (first, second):
        assert await works(api.as_key(rolled["apiKey"]["key"]))
