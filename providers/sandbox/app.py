"""The sandbox as one ASGI app: every emulator under /{psp}, plus the controls
of contract section 5 that play the customer (pay a voucher, finish 3-D Secure)
and the operator (faults, redelivery)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route

from providers.sandbox.common import Emulator
from providers.sandbox.faults import FaultMode
from providers.sandbox.state import SandboxState
from providers.sandbox.stripe import StripeEmulator

# Emulator classes by PSP name; adding a PSP's emulator is one line here.
EMULATORS: dict[str, type[Any]] = {"stripe": StripeEmulator}
MAX_REDELIVER = 100


@dataclass(frozen=True, slots=True)
class EmulatorKeys:
    api_key: str
    webhook_secret: str


class Sandbox:
    def __init__(self, state: SandboxState, keys: dict[str, EmulatorKeys]) -> None:
        self.state = state
        self.emulators: dict[str, Emulator] = {
            name: cls(state, keys[name].api_key, keys[name].webhook_secret)
            for name, cls in EMULATORS.items()
            if name in keys
        }
        routes: list[Any] = [
            Mount(f"/{name}", routes=emulator.routes())  # type: ignore[attr-defined]
            for name, emulator in self.emulators.items()
        ]
        routes += [
            Route("/providers/{name}/faults", self.set_fault, methods=["POST"]),
            Route("/3ds/{intent_id}", self.three_ds_page, methods=["GET"]),
            Route("/3ds/{intent_id}/complete", self.complete_three_ds, methods=["POST"]),
            Route("/oxxo/{reference}/pay", self.pay_oxxo, methods=["POST"]),
            Route("/vouchers/{reference}", self.voucher_page, methods=["GET"]),
            Route("/webhooks/redeliver", self.redeliver, methods=["POST"]),
        ]
        self.app = Starlette(routes=routes)

    async def set_fault(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.emulators:
            return _problem(404, f"no sandbox provider {name!r}; known: {sorted(self.emulators)}")
        body = await _json_object(request)
        if isinstance(body, Response):
            return body
        try:
            mode = FaultMode(str(body.get("mode")))
        except ValueError:
            return _problem(400, 'mode must be one of "down", "slow", "flaky", "ok"')
        self.state.faults.set(name, mode)
        return JSONResponse({"provider": name, "mode": mode.value})

    async def three_ds_page(self, request: Request) -> Response:
        intent_id = html.escape(request.path_params["intent_id"])
        return HTMLResponse(
            f"<!doctype html><title>3-D Secure</title><h1>Sandbox 3-D Secure</h1>"
            f"<form method=post action='/sandbox/3ds/{intent_id}/complete'>"
            f"<button>Complete authentication</button></form>"
        )

    async def complete_three_ds(self, request: Request) -> Response:
        return await self._settle(f"3ds:{request.path_params['intent_id']}", "3-D Secure")

    async def pay_oxxo(self, request: Request) -> Response:
        return await self._settle(f"oxxo:{request.path_params['reference']}", "OXXO voucher")

    async def _settle(self, key: str, what: str) -> Response:
        settle = self.state.settlers.pop(key, None)
        if settle is None:
            return _problem(404, f"no pending {what} {key.split(':', 1)[1]!r}")
        status = await settle()
        return JSONResponse({"settled": key.split(":", 1)[1], "webhook_status": status})

    async def voucher_page(self, request: Request) -> Response:
        reference = html.escape(request.path_params["reference"])
        return HTMLResponse(
            f"<!doctype html><title>OXXO voucher</title><h1>OXXO Pay</h1>"
            f"<p>Reference <strong>{reference}</strong></p>"
        )

    async def redeliver(self, request: Request) -> Response:
        body = await _json_object(request)
        if isinstance(body, Response):
            return body
        count = body.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_REDELIVER:
            return _problem(400, f"count must be an integer from 1 to {MAX_REDELIVER}")
        statuses = await self.state.redeliver(count)
        return JSONResponse({"redelivered": len(statuses), "statuses": statuses})


async def _json_object(request: Request) -> dict[str, Any] | Response:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return _problem(400, "body is not valid JSON")
    if not isinstance(body, dict):
        return _problem(400, "body must be a JSON object")
    return body


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
