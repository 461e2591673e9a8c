"""The Redis broker against a real redis-server: fan-out, and surviving a restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from app.domain.intents import PaymentIntent, PaymentIntentStatus
from app.domain.money import Currency, Money
from app.events import redis_broker
from app.events.broker import QUEUE_SIZE
from app.events.messages import Change, intent_channel
from app.events.redis_broker import RedisBroker
from tests.support.cancellation import silent_redis, stops_at_every_cancellation

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def change(version: int, intent_id: str = "pi_1") -> Change:
    zero = Money(0, Currency.MXN)
    intent = PaymentIntent(
        id=intent_id,
        merchant_id="acct_1",
        status=PaymentIntentStatus.REQUIRES_ACTION,
        version=version,
        amount=Money(100, Currency.MXN),
        amount_received=zero,
        amount_refunded=zero,
        client_secret="s",
        created_at=NOW,
        updated_at=NOW,
    )
    return Change(intent, "payment_intent.requires_action")


@pytest.fixture
async def broker(redis_server):
    broker = RedisBroker(redis_server.url)
    await broker.start()
    yield broker
    await broker.close()


async def test_one_connection_fans_out_to_every_local_subscriber(broker):
    subscribers = [await broker.subscribe([intent_channel("pi_1")]) for _ in range(3)]
    await broker.publish([intent_channel("pi_1")], change(2))
    for subscription in subscribers:
        received = await asyncio.wait_for(subscription.next(), 2)
        assert received is not None and received.version == 2
    assert broker.fanout.channels == [intent_channel("pi_1")]
    for subscription in subscribers:
        subscription.close()
    assert broker.fanout.channels == []


async def test_two_processes_worth_of_brokers_see_each_others_changes(redis_server, broker):
    other = RedisBroker(redis_server.url)
    await other.start()
    try:
        subscription = await broker.subscribe([intent_channel("pi_x")])
        await other.publish([intent_channel("pi_x")], change(5, "pi_x"))
        received = await asyncio.wait_for(subscription.next(), 2)
        assert received is not None and (received.intent.id, received.version) == ("pi_x", 5)
    finally:
        await other.close()


async def test_a_restart_tells_subscribers_to_catch_up_and_the_link_comes_back(
    redis_server, broker
):
    subscription = await broker.subscribe([intent_channel("pi_r")])
    await asyncio.to_thread(redis_server.restart, 0.3)
    # The reader noticed the drop: the subscriber is told to resync from the database.
    assert await asyncio.wait_for(subscription.next(), 10) is None
    # And once reconnected and subscribed again, publishes reach the same subscription
    # (publishing before the reader re-subscribed is lost, as pub/sub is: keep trying).
    received = None
    for _ in range(50):
        try:
            await broker.publish([intent_channel("pi_r")], change(9, "pi_r"))
            received = await asyncio.wait_for(_next_change(subscription), 0.2)
            break
        except Exception:
            await asyncio.sleep(0.1)
    assert received is not None and received.version == 9


async def test_a_slow_subscriber_does_not_hold_up_the_others(broker):
    slow = await broker.subscribe([intent_channel("pi_s")])
    fast = await broker.subscribe([intent_channel("pi_s")])
    for version in range(1, QUEUE_SIZE + 20):
        await broker.publish([intent_channel("pi_s")], change(version, "pi_s"))
        received = await asyncio.wait_for(fast.next(), 2)
        assert received is not None and received.version == version
    # The slow one never read: it holds one marker, not QUEUE_SIZE + 19 changes, and it
    # is told to resync from the database.
    assert slow.pending == 1
    assert await slow.next() is None
    assert slow.pending == 0


async def _next_change(subscription) -> Change:
    while True:
        item = await subscription.next()
        if item is not None:
            return item


async def test_a_publishing_loop_stops_at_its_first_cancellation(broker):
    """With a socket timeout, redis-py bounds each send with asyncio.wait_for, which
    on Python 3.11 drops a cancellation arriving as the send completes: a loop that
    publishes (the outbox relay) went on after it was cancelled. Cancelled at a
    random moment, hundreds of times, it stops each time."""
    message = change(1)

    async def publish_forever(n: int) -> None:
        while True:
            await broker.publish([intent_channel("pi_loop")], message)

    await stops_at_every_cancellation(publish_forever, seed=11)


async def test_a_redis_that_never_answers_fails_a_publish_in_bounded_time(monkeypatch):
    """Without redis-py's socket timeout the broker bounds its own calls: a Redis
    that accepts the connection and says nothing fails a publish (the relay keeps
    the rows and retries) instead of holding it for good."""
    monkeypatch.setattr(redis_broker, "CALL_TIMEOUT", 0.5)
    async with silent_redis() as url:
        broker = RedisBroker(url)
        try:
            async with asyncio.timeout(4):
                with pytest.raises(OSError):  # TimeoutError, which the relay takes as an outage
                    await broker.publish([intent_channel("pi_1")], change(1))
                with pytest.raises(OSError):
                    await broker.ping()
        finally:
            await broker.close()
