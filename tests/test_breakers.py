"""The circuits' states as Cobro reports them, read through pybreaker's public API."""

from __future__ import annotations

import asyncio

import pytest

from app.resilience.breaker import Breakers, CircuitOpen, CircuitState
from providers.base import ProviderError


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
