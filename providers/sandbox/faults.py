"""Fault modes for an emulator: `down`, `slow`, `flaky`, `ok` (contract section 5).

The mode of each provider lives in the sandbox store, so setting it through one
process's /sandbox sets it for every process; `flaky` counts calls there too.
Emulator.mounted_routes applies them: `down` answers 503, `flaky` every other call,
`slow` does the work at once and answers SLOW_SECONDS later.
"""

from __future__ import annotations

import enum

from starlette.responses import JSONResponse, Response

# The "slow" mode answers after this long; adapters must give up sooner.
SLOW_SECONDS = 10.0


class FaultMode(enum.StrEnum):
    OK = "ok"
    DOWN = "down"
    SLOW = "slow"
    FLAKY = "flaky"


def unavailable(provider: str) -> Response:
    return JSONResponse(
        {"error": {"type": "api_error", "message": f"{provider} sandbox is unavailable"}},
        status_code=503,
    )
