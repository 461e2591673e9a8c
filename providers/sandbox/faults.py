"""Fault modes for an emulator: `down`, `slow`, `flaky`, `ok` (contract section 5)."""

from __future__ import annotations

import asyncio
import enum

from starlette.responses import JSONResponse, Response

# The "slow" mode answers after this long; adapters must give up sooner.
SLOW_SECONDS = 10.0


class FaultMode(enum.StrEnum):
    OK = "ok"
    DOWN = "down"
    SLOW = "slow"
    FLAKY = "flaky"


class Faults:
    def __init__(self) -> None:
        self._modes: dict[str, FaultMode] = {}
        self._calls: dict[str, int] = {}

    def set(self, provider: str, mode: FaultMode) -> None:
        self._modes[provider] = mode
        self._calls[provider] = 0

    def mode(self, provider: str) -> FaultMode:
        return self._modes.get(provider, FaultMode.OK)

    async def interfere(self, provider: str) -> Response | None:
        """The response a faulty PSP gives instead of its answer, or None to answer."""
        mode = self.mode(provider)
        if mode is FaultMode.DOWN:
            return _unavailable(provider)
        if mode is FaultMode.SLOW:
            await asyncio.sleep(SLOW_SECONDS)
        if mode is FaultMode.FLAKY:
            self._calls[provider] = self._calls.get(provider, 0) + 1
            if self._calls[provider] % 2 == 1:
                return _unavailable(provider)
        return None


def _unavailable(provider: str) -> Response:
    return JSONResponse(
        {"error": {"type": "api_error", "message": f"{provider} sandbox is unavailable"}},
        status_code=503,
    )
