"""The sandbox as one ASGI app: every emulator under /{psp}, plus the controls
of contract section 5 that play the customer (pay a voucher, send a transfer or a
deposit, finish 3-D Secure) and the operator (faults, redelivery)."""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from app.domain.errors import InvalidAmount
from app.domain.money import Currency, parse_amount
from providers.sandbox.bitso import BitsoEmulator
from providers.sandbox.cards import card_problem, mint
from providers.sandbox.common import Emulator, EmulatorConfig
from providers.sandbox.conekta import ConektaEmulator
from providers.sandbox.faults import FaultMode
from providers.sandbox.state import SandboxState
from providers.sandbox.store import Conflict, Tx
from providers.sandbox.stp import StpEmulator
from providers.sandbox.stripe import StripeEmulator

# Emulator classes by PSP name; adding a PSP's emulator is one line here.
EMULATORS: dict[str, type[Emulator]] = {
    "stripe": StripeEmulator,
    "conekta": ConektaEmulator,
    "stp": StpEmulator,
    "bitso": BitsoEmulator,
}
MAX_REDELIVER = 100


def adapter_options(name: str) -> dict[str, str]:
    """What an adapter needs to talk to this sandbox's emulator of `name`."""
    emulator = EMULATORS.get(name)
    return dict(emulator.ADAPTER_OPTIONS) if emulator else {}


class Sandbox:
    def __init__(self, state: SandboxState, configs: dict[str, EmulatorConfig]) -> None:
        self.state = state
        # Set by the composition root: moves the shared clock and runs the expiry sweep.
        self.on_clock_advance: Callable[[object], Awaitable[dict[str, Any]]] | None = None
        self.emulators: dict[str, Emulator] = {
            name: cls(state, configs[name]) for name, cls in EMULATORS.items() if name in configs
        }
        # Each emulator under /{name}; the adapters' in-process transport finds its
        # routes here too (providers/sandbox/transport.py).
        self.mounts = [
            Mount(f"/{name}", routes=emulator.mounted_routes())
            for name, emulator in self.emulators.items()
        ]
        routes: list[BaseRoute] = [*self.mounts]
        routes += [
            Route("/providers/{name}/faults", self.set_fault, methods=["POST"]),
            Route("/tokens", self.tokenize, methods=["POST"]),
            Route("/3ds/{intent_id}", self.three_ds_page, methods=["GET"]),
            Route("/3ds/{intent_id}/complete", self.complete_three_ds, methods=["POST"]),
            Route("/oxxo/{reference}/pay", self.pay_oxxo, methods=["POST"]),
            Route("/vouchers/{reference}", self.voucher_page, methods=["GET"]),
            Route("/spei/deposits", self.spei_deposit, methods=["POST"]),
            Route("/spei/payouts/{key}/return", self.return_payout, methods=["POST"]),
            Route("/cep", self.cep, methods=["GET"]),
            Route("/crypto/deposits", self.crypto_deposit, methods=["POST"]),
            Route("/webhooks/redeliver", self.redeliver, methods=["POST"]),
            Route("/clock/advance", self.advance_clock, methods=["POST"]),
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
        await self.state.store.set_fault(name, mode.value)
        return JSONResponse({"provider": name, "mode": mode.value})

    async def tokenize(self, request: Request) -> Response:
        """A card token minted as the PSP's browser library would mint it (contract
        section 7): {"provider", "number", "expMonth", "expYear", "cvc"} -> {"token"}."""
        body = await _json_object(request)
        if isinstance(body, Response):
            return body
        name = body.get("provider")
        emulator = self.emulators.get(name) if isinstance(name, str) else None
        if emulator is None or not emulator.TOKEN_PREFIX:
            card_psps = sorted(n for n, e in self.emulators.items() if e.TOKEN_PREFIX)
            return _problem(400, f"provider must be one of {card_psps}")
        if (problem := card_problem(body, self.state.clock.now().year)) is not None:
            return _problem(400, problem)
        prefix = emulator.TOKEN_PREFIX

        async def minted(tx: Tx) -> dict[str, Any]:
            return mint(tx, prefix, body["number"], body["expMonth"], body["expYear"])

        answer, _ = await emulator.run(minted)
        return JSONResponse(answer)

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

    async def _settle(self, name: str, what: str) -> Response:
        """The customer pays a voucher or passes 3-D Secure: once, through any process."""
        emulator, handle = await self._handle(name)
        if emulator is None:
            return _problem(404, f"no pending {what} {name.split(':', 1)[1]!r}")

        async def settle(tx: Tx) -> None:
            tx.unbind(name)
            await emulator.settle(tx, handle)

        try:
            _, status = await emulator.run(settle)
        except Conflict as exc:
            return _problem(409, str(exc))
        return JSONResponse({"settled": name.split(":", 1)[1], "webhook_status": status})

    async def _handle(self, name: str) -> tuple[Emulator | None, str]:
        """The emulator and object key a customer-facing name leads to."""
        handle = await self.state.store.handle(name)
        if handle is None or handle.provider not in self.emulators:
            return None, ""
        return self.emulators[handle.provider], handle.key

    async def voucher_page(self, request: Request) -> Response:
        reference = html.escape(request.path_params["reference"])
        return HTMLResponse(
            f"<!doctype html><title>OXXO voucher</title><h1>OXXO Pay</h1>"
            f"<p>Reference <strong>{reference}</strong></p>"
        )

    async def spei_deposit(self, request: Request) -> Response:
        """An SPEI transfer of `amount` (MXN) arrives at `clabe`."""
        body = await _json_object(request)
        if isinstance(body, Response):
            return body
        clabe = str(body.get("clabe", ""))
        emulator, key = await self._handle(f"clabe:{clabe}")
        if emulator is None:
            return _problem(404, f"no sandbox account has CLABE {clabe!r}")
        try:
            amount = parse_amount(body.get("amount"), Currency.MXN)
        except InvalidAmount as error:
            return _problem(400, error.message)
        status = await self._receive(emulator, key, amount.minor)
        if isinstance(status, Response):
            return status
        return JSONResponse(
            {"clabe": clabe, "amount": amount.to_decimal_string(), "webhook_status": status}
        )

    async def return_payout(self, request: Request) -> Response:
        """The receiving bank returns a paid payout: `{"reason": "03"}` (default 03)."""
        body = await _json_object(request)
        if isinstance(body, Response):
            return body
        reason = str(body.get("reason", "03"))
        if not (reason.isascii() and reason.isdigit() and 1 <= len(reason) <= 2):
            return _problem(400, 'reason is a SPEI return cause such as "01" or "03"')
        stp = self.emulators.get("stp")
        if not isinstance(stp, StpEmulator):
            return _problem(404, "the sandbox has no STP")
        problem = await stp.return_paid(request.path_params["key"], int(reason))
        if problem is not None:
            return _problem(409, problem)
        return JSONResponse({"returned": request.path_params["key"], "reason": reason.zfill(2)})

    async def cep(self, request: Request) -> Response:
        """The CEP stand-in: what Banxico answers for a paid transfer, as XML."""
        stp = self.emulators.get("stp")
        xml = await stp.cep(dict(request.query_params)) if isinstance(stp, StpEmulator) else None
        if xml is None:
            return _problem(404, "no paid SPEI transfer matches these lookup fields")
        return Response(xml, media_type="application/xml")

    async def crypto_deposit(self, request: Request) -> Response:
        """A crypto deposit of `amount` (in the asset's own units) lands at `address`."""
        body = await _json_object(request)
        if isinstance(body, Response):
            return body
        address = str(body.get("address", ""))
        emulator, key = await self._handle(f"address:{address}")
        if emulator is None:
            return _problem(404, f"no sandbox deposit address {address!r}")
        try:
            amount = Decimal(str(body.get("amount")))
        except InvalidOperation:
            return _problem(400, 'amount must be a decimal string such as "29.4118"')
        if not amount.is_finite() or amount <= 0:
            return _problem(400, "amount must be a positive decimal")
        status = await self._receive(emulator, key, str(amount))
        if isinstance(status, Response):
            return status
        return JSONResponse({"address": address, "amount": str(amount), "webhook_status": status})

    async def _receive(
        self, emulator: Emulator, key: str, amount: int | str
    ) -> int | Response | None:
        try:
            return (await emulator.run(lambda tx: emulator.receive(tx, key, amount)))[1]
        except Conflict as exc:
            return _problem(409, str(exc))

    async def advance_clock(self, request: Request) -> Response:
        """Move time forward for the whole sandbox and expire what is due at once."""
        body = await _json_object(request)
        if isinstance(body, Response):
            return body
        if self.on_clock_advance is None:
            return _problem(503, "this sandbox has no clock to move")
        try:
            result = await self.on_clock_advance(body.get("seconds"))
        except ValueError as error:
            return _problem(400, str(error))
        return JSONResponse(result)

    async def redeliver(self, request: Request) -> Response:
        body = await _json_object(request)
        if isinstance(body, Response):
            return body
        count = body.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_REDELIVER:
            return _problem(400, f"count must be an integer from 1 to {MAX_REDELIVER}")
        statuses = [
            await self.state.post(provider, body, self.emulators[provider].sign)
            for provider, body in await self.state.store.recent_webhooks(count)
            if provider in self.emulators
        ]
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
