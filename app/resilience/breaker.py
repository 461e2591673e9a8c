"""One pybreaker circuit per PSP, used the way that works with asyncio.

pybreaker has no asyncio support: its decorator on an `async def` only sees the
coroutine object and counts every call a success
(../shared/reference/stack-notes.md §4). `calling()` wraps the awaited call
itself, so a failure inside the block counts. Only errors that say "this PSP is
unwell" count: a declined card or a refused request does not.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pybreaker

from providers.base import ProviderError

T = TypeVar("T")


class CircuitState(enum.StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


class CircuitOpen(ProviderError):
    """The circuit is open: the call was not even tried."""

    def __init__(self, provider: str) -> None:
        super().__init__(provider, "circuit open", retryable=False, code="CIRCUIT_OPEN")


def _not_a_fault(exc: BaseException) -> bool:
    """Exceptions that must not count against a PSP."""
    if isinstance(exc, asyncio.CancelledError):
        return True  # our caller gave up; the PSP did nothing wrong
    return isinstance(exc, ProviderError) and not exc.retryable


class Breakers:
    def __init__(self, names: list[str], *, fail_max: int, reset_seconds: float) -> None:
        self.reset_seconds = reset_seconds
        # Each circuit's state lives in a storage object we hand pybreaker (its public
        # `state_storage` argument), so when it opened is read through the storage's
        # public API rather than the breaker's private attribute.
        self._storages = {
            name: pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED) for name in names
        }
        self._breakers = {
            name: pybreaker.CircuitBreaker(
                fail_max=fail_max,
                reset_timeout=reset_seconds,
                exclude=[_not_a_fault],
                state_storage=self._storages[name],
                name=name,
            )
            for name in names
        }

    def names(self) -> list[str]:
        return list(self._breakers)

    def add_listener(self, listener: pybreaker.CircuitBreakerListener) -> None:
        for breaker in self._breakers.values():
            breaker.add_listener(listener)

    def is_closed(self, name: str) -> bool:
        return self._breakers[name].current_state == pybreaker.STATE_CLOSED

    def open(self, name: str) -> None:
        self._breakers[name].open()

    def state(self, name: str) -> CircuitState:
        breaker = self._breakers[name]
        state = breaker.current_state
        if state == pybreaker.STATE_CLOSED:
            return CircuitState.CLOSED
        if state == pybreaker.STATE_HALF_OPEN:
            return CircuitState.HALF_OPEN
        # pybreaker only leaves OPEN on the next call; once the timeout has passed
        # that call will be let through as a trial, so report what it will be.
        opened_at = self._storages[name].opened_at
        if opened_at and datetime.now(UTC) >= _aware(opened_at) + timedelta(
            seconds=self.reset_seconds
        ):
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def accepts_calls(self, name: str) -> bool:
        return self.state(name) is not CircuitState.OPEN

    async def call(self, name: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run `fn` inside `name`'s circuit; raise CircuitOpen when it refuses."""
        breaker = self._breakers[name]
        try:
            with breaker.calling():
                return await fn()
        except pybreaker.CircuitBreakerError as exc:
            cause = exc.__context__
            if isinstance(cause, ProviderError):
                raise cause from None  # the call that tripped the circuit: keep its reason
            raise CircuitOpen(name) from None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
