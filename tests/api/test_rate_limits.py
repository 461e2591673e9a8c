"""Rate limits per key (contract section 10): over the limit, HTTP 429 with
Retry-After and RATE_LIMITED (a UserError in mutations); counted in Redis when
Redis is configured, so processes share the count; PSP webhooks never limited."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import ValidationError

from app.config import Settings
from tests.conftest import DEV_PUBLISHABLE, DEV_SECRET, create_merchant, start_server
from tests.support.cancellation import stops_at_every_cancellation
from tests.support.graphql import CREATE
from tests.support.ws import GraphQLWebSocket

READ = "{ paymentIntents(first: 1) { edges { node { id } } } }"
TIGHT = {"secret": "3/minute", "publishable": "2/minute", "client_secret": "2/minute"}


def post(http: httpx.AsyncClient, key: str, query: str, variables: dict | None = None):
    return http.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {key}"},
    )


@pytest.fixture
def tight_server(database_url):
    thread = start_server(database_url, rate_limits=TIGHT)
    yield thread
    thread.stop()


async def test_a_query_over_the_limit_is_429_with_retry_after(tight_server):
    async with httpx.AsyncClient(base_url=tight_server.url, timeout=30) as http:
        for _ in range(3):
            ok = await post(http, DEV_SECRET, READ)
            assert ok.status_code == 200 and "errors" not in ok.json(), ok.text
            assert "retry-after" not in ok.headers
        over = await post(http, DEV_SECRET, READ)
        assert over.status_code == 429
        assert 1 <= int(over.headers["retry-after"]) <= 60
        (error,) = over.json()["errors"]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert over.json()["data"] is None


async def test_a_mutation_over_the_limit_is_a_user_error_and_changes_nothing(tight_server):
    async with httpx.AsyncClient(base_url=tight_server.url, timeout=30) as http:
        for _ in range(3):
            assert (await post(http, DEV_SECRET, READ)).status_code == 200
        over = await post(http, DEV_SECRET, CREATE, {"input": {"amount": "100.00"}})
        assert over.status_code == 429 and "retry-after" in over.headers
        payload = over.json()["data"]["createPaymentIntent"]
        assert payload["paymentIntent"] is None
        assert [e["code"] for e in payload["errors"]] == ["RATE_LIMITED"]
    # Nothing was created: a fresh server (new count) lists no intent.
    other = start_server(tight_server.settings.database_url)
    try:
        async with httpx.AsyncClient(base_url=other.url, timeout=30) as http:
            listed = (await post(http, DEV_SECRET, READ)).json()
        assert listed["data"]["paymentIntents"]["edges"] == []
    finally:
        other.stop()


async def test_each_key_kind_and_each_merchant_has_its_own_count(tight_server):
    other = await create_merchant(tight_server.settings, "Other")
    async with httpx.AsyncClient(base_url=tight_server.url, timeout=30) as http:
        created = await post(http, DEV_SECRET, CREATE, {"input": {"amount": "100.00"}})
        secret = created.json()["data"]["createPaymentIntent"]["paymentIntent"]["clientSecret"]
        for _ in range(2):
            assert (await post(http, DEV_SECRET, READ)).status_code == 200
        assert (await post(http, DEV_SECRET, READ)).status_code == 429
        methods = '{ paymentMethods(amount: "100.00") { type } }'
        assert (await post(http, DEV_PUBLISHABLE, methods)).status_code == 200
        intent_id = secret.split("_secret_")[0]
        intent = f'{{ paymentIntent(id: "{intent_id}") {{ status }} }}'
        assert (await post(http, secret, intent)).status_code == 200
        assert (await post(http, other.secret_key, READ)).status_code == 200
        assert (await post(http, secret, intent)).status_code == 200
        assert (await post(http, secret, intent)).status_code == 429


async def test_psp_webhooks_are_not_limited_by_a_merchant_key(tight_server):
    async with httpx.AsyncClient(base_url=tight_server.url, timeout=30) as http:
        for _ in range(3):
            await post(http, DEV_SECRET, READ)
        assert (await post(http, DEV_SECRET, READ)).status_code == 429
        for _ in range(5):
            hook = await http.post(
                "/webhooks/stripe",
                content=b"{}",
                headers={"Authorization": f"Bearer {DEV_SECRET}"},
            )
            assert hook.status_code != 429


async def test_a_subscription_over_the_limit_is_refused_and_the_socket_goes_on(tight_server):
    async with httpx.AsyncClient(base_url=tight_server.url, timeout=30) as http:
        created = await post(http, DEV_SECRET, CREATE, {"input": {"amount": "100.00"}})
        intent_id = created.json()["data"]["createPaymentIntent"]["paymentIntent"]["id"]
    watch = "subscription W($id: ID!) { paymentIntentUpdated(id: $id) { id status } }"
    async with GraphQLWebSocket(tight_server.url, DEV_SECRET) as ws:
        first = await ws.subscribe(watch, {"id": intent_id})  # the key's 2nd of 3
        assert (await ws.next_data())["paymentIntentUpdated"]["id"] == intent_id
        second = await ws.subscribe(watch, {"id": intent_id})
        assert (await ws.next_data())["paymentIntentUpdated"]["id"] == intent_id
        third = await ws.subscribe(watch, {"id": intent_id})
        assert await ws.error_code(third) == "RATE_LIMITED"
        await ws.stop(second)
        await ws.stop(first)  # the connection is still there to hear it
        await ws.ws.ping()


async def test_with_redis_processes_share_one_count(database_url, redis_server):
    limits = {"secret": "5/minute"}
    a = start_server(database_url, rate_limits=limits, redis_url=redis_server.url)
    b = start_server(database_url, rate_limits=limits, redis_url=redis_server.url)
    try:
        async with (
            httpx.AsyncClient(base_url=a.url, timeout=30) as to_a,
            httpx.AsyncClient(base_url=b.url, timeout=30) as to_b,
        ):
            codes = []
            for http in (to_a, to_b, to_a, to_b, to_a, to_b):
                codes.append((await post(http, DEV_SECRET, READ)).status_code)
        assert codes == [200, 200, 200, 200, 200, 429]
    finally:
        a.stop()
        b.stop()


async def test_with_redis_away_requests_are_still_counted_per_process(database_url, tmp_path):
    from tests.support.redis_server import RedisServer

    redis = RedisServer(tmp_path).start()
    thread = start_server(database_url, rate_limits={"secret": "3/minute"}, redis_url=redis.url)
    try:
        redis.stop()
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as http:
            codes = [(await post(http, DEV_SECRET, READ)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
    finally:
        thread.stop()
        redis.stop()


@pytest.mark.parametrize("bad", ["lots", "5/fortnight", "-1/second", "5 per"])
def test_a_bad_limit_is_refused_at_start_naming_it(bad):
    with pytest.raises(ValidationError) as refused:
        Settings(rate_limits={"secret": bad})
    assert "is not a rate limit" in str(refused.value)


def test_an_empty_limit_means_none():
    assert Settings(rate_limits={"secret": ""}).rate_limits.parsed()["secret"] == []


async def test_the_redis_count_costs_a_round_trip_per_slice_not_per_request(redis_server):
    """Measured by counting Redis commands: 1,000 hits of a 5,000/second key take
    slices of 50, so about 20 INCRBYs, not 1,000."""
    import redis.asyncio as aioredis

    from app.services.auth import KeyKind, Principal
    from app.services.rate_limits import RateLimiter

    limiter = RateLimiter(Settings().rate_limits.parsed(), redis_server.url)
    client = aioredis.from_url(redis_server.url)
    try:
        before = await client.info("stats")
        me = Principal("acct_slices", KeyKind.SECRET)
        for _ in range(1_000):
            await limiter.hit(me)
        after = await client.info("stats")
        commands = after["total_commands_processed"] - before["total_commands_processed"]
        # 20 INCRBYs, plus the connection's set-up and limits' scripts loading once.
        assert commands < 60, commands
    finally:
        await client.aclose()
        await limiter.close()
        await asyncio.sleep(0)


async def test_a_burst_of_first_hits_takes_one_slice_at_a_time(redis_server):
    """1,000 hits at once, well under a 2,000/minute key's limit, are all allowed:
    the hits that find no slice wait for the one being taken from Redis instead of
    each taking a slice of 20 of their own (which spent the window's budget on
    slices nobody kept, and refused a burst of subscriptions far below the limit).
    The limit still holds: of 2,000 more in the same minute, only what is left is allowed."""
    from app.services.auth import KeyKind, Principal
    from app.services.rate_limits import RateLimited, RateLimiter

    limits = Settings(rate_limits={"secret": "2000/minute"}).rate_limits.parsed()
    limiter = RateLimiter(limits, redis_server.url)
    me = Principal("acct_burst", KeyKind.SECRET)

    async def hit() -> bool:
        try:
            await limiter.hit(me)
        except RateLimited:
            return False
        return True

    try:
        burst = await asyncio.gather(*(hit() for _ in range(1_000)))
        assert all(burst), f"{burst.count(False)} of 1,000 refused under the limit"
        more = await asyncio.gather(*(hit() for _ in range(2_000)))
        assert 980 <= more.count(True) <= 1_000
    finally:
        await limiter.close()
        await asyncio.sleep(0)


async def test_a_request_checking_its_limit_in_redis_stops_at_its_first_cancellation(
    redis_server,
):
    """A request whose client went away is cancelled. With a socket timeout, redis-py
    bounds each send with asyncio.wait_for, which on Python 3.11 drops a cancellation
    arriving as the send completes, and the request went on. Each hit here takes a
    slice from Redis (a new key each time); cancelled at a random moment, hundreds of
    times, it stops each time."""
    from app.services.auth import KeyKind, Principal
    from app.services.rate_limits import RateLimiter

    limiter = RateLimiter(Settings().rate_limits.parsed(), redis_server.url)

    async def hits_forever(n: int) -> None:
        n *= 1_000_000
        while True:
            n += 1
            await limiter.hit(Principal(f"acct_cancel_{n}", KeyKind.SECRET))

    try:
        await stops_at_every_cancellation(hits_forever, seed=5)
    finally:
        await limiter.close()
        await asyncio.sleep(0)
