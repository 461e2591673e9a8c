"""A sandbox PSP in a fault mode answers as the mode says, and nothing of a refused
call is written; but a call whose writes went through did the work, whatever
happens after (tests/providers/test_contract.py has the modes over real HTTP)."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from app.clock import Clock
from providers.sandbox.common import Emulator, EmulatorConfig, JSONResponse
from providers.sandbox.state import SandboxState
from providers.sandbox.store import Tx


class _Charging(Emulator):
    """One call that charges (commits its object), then the PSP goes down before it
    answers, and the call fails: as a real PSP that charged and then broke."""

    name = "stripe"

    def routes(self) -> list[BaseRoute]:
        return [Route("/charge", self.charge, methods=["POST"])]

    async def charge(self, request: Request) -> Response:
        async def work(tx: Tx) -> Response:
            tx.put("charge", "ch_1", {"amount": 100})
            return JSONResponse({"id": "ch_1"})

        await self.run(work)
        await self.store.set_fault(self.name, "down")
        raise RuntimeError("broke after charging")


async def _post(emulator: Emulator, path: str) -> httpx.Response:
    app = Starlette(routes=[Mount("/psp", routes=emulator.mounted_routes())])
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://psp.test") as client:
        return await client.post(path)


async def test_a_call_that_charged_is_never_answered_as_if_the_psp_was_down() -> None:
    state = SandboxState(Clock(), "http://cobro.test")
    emulator = _Charging(state, EmulatorConfig("k", "s", "w"))
    answer = await _post(emulator, "/psp/charge")
    # A 500 (it may have acted: the caller finds out), never the 503 of a PSP that
    # did nothing, which would send the card to the next PSP.
    assert answer.status_code == 500
    assert await state.store.get("stripe", "charge", "ch_1") is not None


async def test_a_call_refused_by_the_fault_mode_writes_nothing_and_answers_503() -> None:
    state = SandboxState(Clock(), "http://cobro.test")
    emulator = _Charging(state, EmulatorConfig("k", "s", "w"))
    await state.store.set_fault("stripe", "down")
    answer = await _post(emulator, "/psp/charge")
    assert answer.status_code == 503
    assert await state.store.get("stripe", "charge", "ch_1") is None
