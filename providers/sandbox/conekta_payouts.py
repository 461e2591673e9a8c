"""Conekta's payout calls, emulated (providers/conekta_payouts.py is the adapter; the
shape is ours, see there). Mixed into the Conekta emulator.

A payout is in_transit at once and, SETTLE_DELAY_SECONDS later, paid (event
`payout.paid`), or returned with cause 01 for the sandbox's RETURNED_CLABE (event
`payout.returned`); REFUSED_CLABE is refused at once (402, insufficient funds), as
STP refuses it. Calls replay by Idempotency-Key (the adapter sends the tracking key).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.domain.clabe import is_valid_clabe
from providers.sandbox.common import Emulator, JSONResponse, new_ref
from providers.sandbox.conekta_wire import fail, listing, object_id
from providers.sandbox.store import Tx
from providers.sandbox.stp import REFUSED_CLABE, RETURNED_CLABE, SETTLE_DELAY_SECONDS

NO_ACCOUNT = {"code": "01", "message": "account does not exist"}


class ConektaPayoutsEmulator(Emulator):
    def payout_routes(self) -> list[BaseRoute]:
        return [
            Route("/payouts", self.create_payout, methods=["POST"]),
            Route("/payouts", self.list_payouts, methods=["GET"]),
        ]

    async def create_payout(self, request: Request) -> Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        try:
            params = json.loads(await request.body() or b"{}")
        except ValueError:
            params = None
        if not isinstance(params, dict):
            return fail("malformed")
        created: list[str] = []

        async def work(tx: Tx) -> Response:
            response, payout_id = self._create_payout(tx, params)
            if payout_id:
                created.append(payout_id)
            return response

        response = await self.call(
            request.headers.get("idempotency-key"),
            {"operation": "payout", **params},
            work,
            lambda: fail("idempotency", "Idempotency-Key"),
        )
        for payout_id in created:
            self._settle_later(payout_id)
        return response

    def _create_payout(self, tx: Tx, params: dict[str, Any]) -> tuple[Response, str | None]:
        method = params.get("method")
        amount, key = params.get("amount"), params.get("tracking_key")
        if (
            not isinstance(method, dict)
            or method.get("type") != "spei"
            or params.get("currency") != "MXN"
            or isinstance(amount, bool)
            or not isinstance(amount, int)
            or amount <= 0
            or not isinstance(key, str)
            or not key
        ):
            return fail("payout"), None
        clabe = str(method.get("clabe"))
        if not is_valid_clabe(clabe):
            return fail("clabe", "method.clabe"), None
        if clabe == REFUSED_CLABE:
            return fail("funds"), None
        now, payout_id = self.state.clock.timestamp(), new_ref("payout", 17)
        payout: dict[str, Any] = {
            "id": payout_id,
            "object": "payout",
            "livemode": False,
            "status": "in_transit",
            "amount": amount,
            "currency": "MXN",
            "method": {**method, "object": "spei_payout_method"},
            "description": params.get("description"),
            "reference": params.get("reference"),
            "tracking_key": key,
            "return_reason": None,
            "failure_message": None,
            "metadata": params.get("metadata") or {},
            "created_at": now,
            "updated_at": now,
        }
        tx.put("payout", payout_id, payout, ref=key)
        return JSONResponse(payout), payout_id

    async def list_payouts(self, request: Request) -> Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        key = request.query_params.get("tracking_key", "")
        found = [doc.body for _, doc in await self.store.find(self.name, "payout", key)]
        return JSONResponse(listing(found))

    def _settle_later(self, payout_id: str) -> None:
        task = asyncio.ensure_future(self._settle_payout(payout_id))
        self._background.add(task)
        task.add_done_callback(self._done)

    async def _settle_payout(self, payout_id: str) -> None:
        await asyncio.sleep(SETTLE_DELAY_SECONDS)
        await self.run(lambda tx: self._liquidate_payout(tx, payout_id))

    async def _liquidate_payout(self, tx: Tx, payout_id: str) -> None:
        payout = await tx.get("payout", payout_id)
        if payout is None or payout["status"] != "in_transit":
            return
        returned = payout["method"].get("clabe") == RETURNED_CLABE
        payout |= {
            "status": "returned" if returned else "paid",
            "return_reason": NO_ACCOUNT if returned else None,
            "updated_at": self.state.clock.timestamp(),
        }
        tx.put("payout", payout_id, payout, ref=payout["tracking_key"])
        event = {
            "id": object_id(),
            "object": "event",
            "type": f"payout.{payout['status']}",
            "livemode": False,
            "created_at": self.state.clock.timestamp(),
            "data": {"object": payout, "previous_attributes": {"status": "in_transit"}},
        }
        tx.webhook(json.dumps(event).encode())
