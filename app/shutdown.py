"""Stopping a process's loops and closing what it holds, in bounded time.

Shutdown cancels the background loops and waits for them, then closes clients and
pools. A cancellation can be lost: Python 3.11's asyncio.wait_for drops one that
arrives in the turn its inner work completes, in our code (banned since: ruff
TID251) and in libraries' (redis-py bounds every send with it when its client has a
socket timeout, which is its default; app/resilience/shared.py says what that did).
The process then waited for good after "Waiting for application shutdown", until an
orchestrator's SIGKILL. So a loop still running a second after its cancellation is
named in the log with where it waits, and cancelled again; a closer that has not
finished in a few seconds is named and left behind. The process exits either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

log = logging.getLogger("cobro.shutdown")

# How long a cancelled loop has before it is cancelled again, and how many times.
RECANCEL_SECONDS = 1.0
RECANCELS = 10
# How long one closer may take.
CLOSE_SECONDS = 5.0


async def stop(tasks: Iterable[asyncio.Task[object]]) -> None:
    """Cancel the tasks and wait until they are done, cancelling again any that
    outlive a cancellation (at most RECANCELS times; then they are left running)."""
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        task.cancel()
    for _ in range(RECANCELS):
        if not pending:
            return
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
        for task in pending:
            log.warning(
                "%s kept running after it was cancelled; cancelling it again. It waits at: %s",
                task.get_name(),
                _where(task),
            )
            task.cancel()
    if pending:
        log.error("left running at shutdown: %s", ", ".join(t.get_name() for t in pending))


async def close_all(closers: Iterable[Callable[[], Awaitable[object]]]) -> None:
    """Each closer in turn, each within CLOSE_SECONDS."""
    for close in closers:
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                await close()
        except TimeoutError:
            log.warning(
                "%s did not finish within %.0f s; shutting down without it",
                getattr(close, "__qualname__", repr(close)),
                CLOSE_SECONDS,
            )


def _where(task: asyncio.Task[object]) -> str:
    """The chain of coroutines the task is suspended in, outermost first
    (`cr_await`, a coroutine's documented attribute, is the one it awaits)."""
    steps = []
    awaited: object = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            break  # a future's iterator: the last coroutine above says what it is
        steps.append(f"{frame.f_code.co_qualname} ({frame.f_code.co_filename}:{frame.f_lineno})")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return " -> ".join(steps)
