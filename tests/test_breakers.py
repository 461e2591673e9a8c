"""The circuits' states as Cobro reports them, read through pybreaker's public API."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.resilience.breaker import Breakers, CircuitOpen, CircuitState
from app.resilience.shared import SharedCircuits
from providers.base import ProviderError
from tests.support.cancellation import silent_redis, stops_at_every_cancellation


async def fail() -> None:
    raise ProviderError("stripe", "answered HTTP 500", retryable=True, outcome_unknown=True)


async def test_failures_open_the_circuit_and_it_reports_half_open_after_the_timeout() -> None:
    # given
    breakers = Breakers(["stripe"], fail_max=2, reset_seconds=0.2)
    # when
    for _ in range(2):
        with pytest.raises(ProviderError):
            await breakers.call("stripe", fail)
    # then
    assert breakers.state("stripe") is CircuitState.OPEN
    assert not breakers.accepts_calls("stripe")
    with pytest.raises(CircuitOpen):
        await breakers.call("stripe", fail)
    await asyncio.sleep(0.25)
    # pybreaker itself still says "open": the next call would be let through as a trial.
    assert breakers.state("stripe") is CircuitState.HALF_OPEN
    assert breakers.accepts_calls("stripe")


async def test_a_refusal_does_not_count_and_open_is_open_at_once() -> None:
    breakers = Breakers(["conekta"], fail_max=1, reset_seconds=60)

    async def refused() -> None:
        raise ProviderError("conekta", "declined", retryable=False)

    with pytest.raises(ProviderError):
        await breakers.call("conekta", refused)
    assert breakers.state("conekta") is CircuitState.CLOSED
    breakers.open("conekta")
    assert breakers.state("conekta") is CircuitState.OPEN


async def test_the_shared_circuits_loop_stops_at_its_first_cancellation(redis_server) -> None:
    """redis-py bounds a command's send with asyncio.wait_for when the client has a
    socket timeout, and Python 3.11's wait_for drops a cancellation that arrives as
    the send completes: the loop went on, and a worker's shutdown waited for it
    (seen in tests/cluster/test_crash.py). Cancelled at a random moment of its
    rounds, hundreds of times, it stops each time."""
    breakers = Breakers(["stripe", "conekta"], fail_max=3, reset_seconds=30)
    shared = SharedCircuits(redis_server.url, breakers)
    try:
        await stops_at_every_cancellation(lambda n: shared.run(), seed=7)
    finally:
        await shared.aclose()


async def test_a_redis_that_never_answers_holds_a_round_up_for_a_second_only(caplog) -> None:
    """Without redis-py's socket timeout, each round is bounded by the loop itself: a
    Redis that accepts the connection and then says nothing costs a round a second."""
    caplog.set_level(logging.DEBUG, "cobro.circuits")
    breakers = Breakers(["stripe"], fail_max=3, reset_seconds=30)
    async with silent_redis() as url:
        shared = SharedCircuits(url, breakers)
        task = asyncio.create_task(shared.run())
        try:
            await asyncio.sleep(2.6)
            skipped = [
                r for r in caplog.records if r.getMessage().startswith("circuit sync skipped")
            ]
            assert len(skipped) >= 1
            assert not task.done()
        finally:
            task.cancel()
            await asyncio.wait([task], timeout=2)
            await shared.aclose()
