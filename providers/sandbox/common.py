"""Pieces every emulator uses: calls on the shared store, idempotency replay, fault
modes, API-key checks, random ids."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette import responses
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.domain.codec import json_bytes
from app.domain.ids import random_token
from providers.sandbox import faults
from providers.sandbox.faults import FaultMode, unavailable
from providers.sandbox.state import SandboxState
from providers.sandbox.store import Answer, Conflict, Faulty, Tx

T = TypeVar("T")
log = logging.getLogger("cobro.sandbox")
# How often a call runs again when another writer got there first.
MAX_TRIES = 5


class JSONResponse(responses.JSONResponse):
    """Starlette's JSON response, encoded mostly by orjson: the stdlib encoder was 1%
    of a sandbox payment's CPU (bench/NOTES.md)."""

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


def new_ref(prefix: str, length: int = 24) -> str:
    return f"{prefix}_{random_token(length)}"


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    return header[7:] if header.lower().startswith("bearer ") else ""


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """The credentials an emulator expects, matching what its adapter is given."""

    api_key: str
    api_secret: str
    webhook_secret: str


class Emulator:
    """Base for one PSP's emulator: its name, its calls on the shared store, its faults.

    `ADAPTER_OPTIONS` are the PSP-specific options (ProviderConfig.options) an
    adapter needs to talk to this emulator, such as the sandbox's signing keys.
    Everything the PSP knows lives in `state.store` (providers/sandbox/store.py),
    so any process's emulator can serve any call; only work in flight is local.
    """

    name: str = ""
    ADAPTER_OPTIONS: dict[str, str] = {}
    # How the card tokens this PSP mints begin ("" for a PSP that takes no cards).
    TOKEN_PREFIX: str = ""

    def __init__(self, state: SandboxState, config: EmulatorConfig) -> None:
        self.state = state
        self.store = state.store
        self.config = config
        self.api_key = config.api_key
        self.webhook_secret = config.webhook_secret
        self._in_flight: set[str] = set()  # idempotency keys this process is answering
        self._background: set[asyncio.Future[Any]] = set()

    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def mounted_routes(self) -> list[BaseRoute]:
        """`routes()`, each answering through the provider's fault mode."""
        return [
            Route(route.path, self._with_faults(route.endpoint), methods=route.methods)
            if isinstance(route, Route)
            else route
            for route in self.routes()
        ]

    def sign(self, body: bytes, timestamp: int) -> dict[str, str]:
        """The headers this PSP signs a webhook `body` with, sent at `timestamp`."""
        raise NotImplementedError

    async def settle(self, tx: Tx, key: str) -> None:
        """The customer paid the voucher, or passed 3-D Secure, of object `key`."""
        raise NotImplementedError

    async def receive(self, tx: Tx, key: str, amount: Any) -> None:
        """Money arrived where object `key` receives it (a CLABE, a deposit address)."""
        raise NotImplementedError

    # -- running a call --------------------------------------------------------------

    async def run(self, work: Callable[[Tx], Awaitable[T]]) -> tuple[T, int | None]:
        """Run `work` on a fresh Tx until its writes commit without a Conflict, then
        send the webhooks it staged: (what `work` returned, Cobro's status for the
        last webhook, or None)."""
        for _ in range(MAX_TRIES):
            tx = Tx(self.store, self.name)
            result = await work(tx)
            checking = _FAULT_CHECK.get()
            if checking is not None and checking.task is not asyncio.current_task():
                checking = None  # work the call handed to a task of its own (a settle later)
            tx.writes.only_if_healthy = checking is not None
            try:
                await tx.commit()
            except Conflict:
                continue
            if checking is not None and tx.writes:
                checking.checked = True
            status = None
            for body in tx.writes.webhooks:
                status = await self.state.post(self.name, body, self.sign)
            return result, status
        raise Conflict(f"{self.name}: still contended after {MAX_TRIES} tries")

    async def call(
        self,
        key: str | None,
        params: Any,
        work: Callable[[Tx], Awaitable[Response]],
        conflict: Callable[[], Response],
    ) -> Response:
        """An API call under an Idempotency-Key, as Stripe treats one
        (docs.stripe.com/idempotency): the first answer below 500 is stored with
        the call's writes, in the same transaction, and replayed to every retry,
        from any process; the key with other parameters gets `conflict()`.

        A key is not looked up first: a new key (nearly every call) costs no read. A
        key answered already makes the commit a Conflict, and the next try, which
        looks, replays the answer; the work it did is rolled back unseen."""
        if not key:
            return (await self.run(work))[0]
        fingerprint = hashlib.sha256(json_bytes(params, sort_keys=True, default=str)).hexdigest()
        tries = 0

        async def answered(tx: Tx) -> Response:
            nonlocal tries
            tries += 1
            stored = await self.store.answer(self.name, key) if tries > 1 else None
            if stored is not None:
                return _replay(stored, fingerprint, conflict)
            response = await work(tx)
            if response.status_code < 500:
                body = bytes(response.body)
                tx.writes.answer = (key, Answer(fingerprint, response.status_code, body))
            return response

        if key in self._in_flight:
            # Stripe answers a retry that overtakes its first request with 409.
            return JSONResponse(
                {
                    "error": {
                        "type": "idempotency_error",
                        "message": "A request with this Idempotency-Key is in progress.",
                    }
                },
                status_code=409,
            )
        self._in_flight.add(key)
        try:
            return (await self.run(answered))[0]
        finally:
            self._in_flight.discard(key)

    def _with_faults(self, endpoint: Callable[[Request], Awaitable[Response]]) -> Any:
        async def answer(request: Request) -> Response:
            # Read the body first: a slow answer must not find its client gone mid-read.
            await request.body()
            try:
                healthy = await self._if_healthy(endpoint, request)
                if healthy is not None:
                    return healthy
                mode = FaultMode(await self.store.fault(self.name))
                if mode is FaultMode.DOWN:
                    return unavailable(self.name)
                if mode is FaultMode.FLAKY and await self.store.count_call(self.name) % 2 == 1:
                    return unavailable(self.name)
                if mode is not FaultMode.SLOW:
                    return await endpoint(request)
                # A slow PSP does the work at once and answers late, and a caller that
                # gives up meanwhile (its timeout cancels this request) does not undo
                # it: the work runs in a task of its own.
                work = asyncio.ensure_future(endpoint(request))
                self._background.add(work)
                work.add_done_callback(self._done)
                response = await asyncio.shield(work)
                await asyncio.sleep(faults.SLOW_SECONDS)  # read now: a test may shorten it
                return response
            except Conflict:
                return JSONResponse(
                    {"error": {"type": "api_error", "message": "Object in use; retry."}},
                    status_code=409,
                )

        return answer

    async def _if_healthy(
        self, endpoint: Callable[[Request], Awaitable[Response]], request: Request
    ) -> Response | None:
        """The endpoint's answer if the PSP is healthy (its fault mode `ok`), else None
        with nothing of the call written. Nearly every call finds it healthy, and
        learns so in the statement that commits its writes (`only_if_healthy`); a call
        that wrote nothing asks after it is done."""
        checking = _FaultCheck(asyncio.current_task())
        token = _FAULT_CHECK.set(checking)
        try:
            response = await endpoint(request)
        except Faulty:
            if checking.checked:  # an earlier commit of the call went through
                raise
            return None
        except Exception:
            # A PSP in a fault mode answers as the mode says, whatever its call ran into
            # (a Conflict its refused commit left, say), unless the call's writes went
            # through: then it did the work, and a 503 would say it did not.
            if not checking.checked and await self.store.fault(self.name) != FaultMode.OK:
                return None
            raise
        finally:
            _FAULT_CHECK.reset(token)
        if checking.checked or await self.store.fault(self.name) == FaultMode.OK:
            return response
        return None

    def _done(self, work: asyncio.Future[Any]) -> None:
        """Forget finished background work; what failed is logged, not lost silently."""
        self._background.discard(work)
        if not work.cancelled() and work.exception() is not None:
            log.error("sandbox %s: background work failed", self.name, exc_info=work.exception())

    async def guard(self, request: Request) -> Response | None:
        """An auth failure answered instead of the real handler, or None. A request let
        through is not checked again if its call runs a second time (a fault mode
        found as it committed: `_if_healthy`), so a nonce it spent stays its own."""
        if getattr(request.state, "sandbox_authenticated", False):
            return None
        await request.body()
        refused = await self.authenticate(request)
        if refused is None:
            request.state.sandbox_authenticated = True
        return refused

    async def authenticate(self, request: Request) -> Response | None:
        return self.check_auth(request)

    def check_auth(self, request: Request) -> Response | None:
        if bearer(request) != self.api_key:
            return JSONResponse(
                {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}},
                status_code=401,
            )
        return None


class _FaultCheck:
    """Set while a call runs in `Emulator._if_healthy`: the commits of the call's own
    task are refused in a fault mode, and `checked` says one of them wrote (so the
    PSP was healthy). Tasks the call starts (a settlement 0.2 s later) inherit the
    variable but are not its task: their commits are not checked, as before."""

    __slots__ = ("checked", "task")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self.checked = False
        self.task = task


_FAULT_CHECK: ContextVar[_FaultCheck | None] = ContextVar("sandbox_fault_check", default=None)


def _replay(stored: Answer, fingerprint: str, conflict: Callable[[], Response]) -> Response:
    if stored.fingerprint != fingerprint:
        return conflict()
    return Response(
        stored.body,
        status_code=stored.status,
        media_type="application/json",
        headers={"Idempotent-Replayed": "true"},
    )
