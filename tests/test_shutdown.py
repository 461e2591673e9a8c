"""Shutdown in bounded time (app/shutdown.py): a loop that outlives its cancellation
is named and cancelled again; a closer that hangs is named and left behind."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest

from app import shutdown


async def swallows_one_cancellation(stopped: list[str]) -> None:
    """A loop inside a library that catches CancelledError once and goes on."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.Event().wait()
    try:
        await asyncio.Event().wait()
    finally:
        stopped.append("second cancellation")


async def test_a_loop_that_outlives_its_cancellation_is_cancelled_again(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutdown, "RECANCEL_SECONDS", 0.2)
    stopped: list[str] = []
    stubborn = asyncio.create_task(swallows_one_cancellation(stopped), name="stubborn-loop")
    plain = asyncio.create_task(asyncio.sleep(3600), name="plain-loop")
    await asyncio.sleep(0)

    async with asyncio.timeout(5):
        await shutdown.stop([stubborn, plain])

    assert stubborn.cancelled() and plain.cancelled()
    assert stopped == ["second cancellation"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "stubborn-loop kept running" in warnings[0]
    assert "swallows_one_cancellation (" in warnings[0] and "Event.wait" in warnings[0]


async def test_a_loop_that_never_stops_is_left_after_the_last_try(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutdown, "RECANCEL_SECONDS", 0.05)
    monkeypatch.setattr(shutdown, "RECANCELS", 3)

    deaf_until_told = [True]

    async def deaf() -> None:
        while deaf_until_told[0]:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(deaf(), name="deaf-loop")
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await shutdown.stop([task])

    assert not task.done()
    assert "left running at shutdown: deaf-loop" in caplog.text
    deaf_until_told[0] = False  # this test's own clean-up
    task.cancel()
    await task


async def test_a_closer_that_hangs_is_left_behind_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutdown, "CLOSE_SECONDS", 0.2)
    closed: list[str] = []

    async def hangs() -> None:
        await asyncio.Event().wait()

    async def closes() -> None:
        closed.append("pool")

    started = time.monotonic()
    await shutdown.close_all([hangs, closes])

    assert closed == ["pool"]
    assert time.monotonic() - started < 2
    assert "hangs did not finish within" in caplog.text
