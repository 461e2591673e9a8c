"""`/healthz`: the process answers. `/readyz`: the database (and broker) answer too."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

log = logging.getLogger("cobro.health")

# A readiness probe that hangs is worse than one that fails.
READY_TIMEOUT_SECONDS = 2.0


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    runtime = request.app.state.runtime
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            async with runtime.services.db.read() as conn:
                await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        log.warning("readiness: database check failed: %s", exc)
        checks["database"] = "unavailable"
    for name, check in runtime.readiness_checks.items():
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECONDS):
                await check()
            checks[name] = "ok"
        except Exception as exc:
            log.warning("readiness: %s check failed: %s", name, exc)
            checks[name] = "unavailable"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
