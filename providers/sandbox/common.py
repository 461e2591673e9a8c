"""Pieces every emulator uses: API-key checks, idempotency replay, random ids."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette import responses
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.domain.codec import json_bytes
from app.domain.ids import random_token
from providers.sandbox.state import SandboxState


class JSONResponse(responses.JSONResponse):
    """Starlette's JSON response, encoded mostly by orjson: the stdlib encoder was 1%
    of a sandbox payment's CPU (bench/NOTES.md)."""

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


def new_ref(prefix: str, length: int = 24) -> str:
    return f"{prefix}_{random_token(length)}"


@dataclass
class IdempotencyCache:
    """Replays the first answer to a key, and refuses the key with other parameters,
    as Stripe does (docs.stripe.com/idempotency)."""

    answers: dict[str, tuple[str, int, bytes]] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)

    async def run(
        self,
        key: str | None,
        params: Any,
        handler: Callable[[], Awaitable[Response]],
        conflict: Callable[[], Response],
    ) -> Response:
        if not key:
            return await handler()
        fingerprint = hashlib.sha256(json_bytes(params, sort_keys=True, default=str)).hexdigest()
        if key in self.answers:
            first_fingerprint, status, body = self.answers[key]
            if first_fingerprint != fingerprint:
                return conflict()
            return Response(
                body,
                status_code=status,
                media_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        if key in self.in_flight:
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
        self.in_flight.add(key)
        try:
            response = await handler()
        finally:
            self.in_flight.discard(key)
        if response.status_code < 500:
            self.answers[key] = (fingerprint, response.status_code, bytes(response.body))
        return response


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
    """Base for one PSP's emulator: its name, its state, its fault handling.

    `ADAPTER_OPTIONS` are the PSP-specific options (ProviderConfig.options) an
    adapter needs to talk to this emulator, such as the sandbox's signing keys.
    """

    name: str = ""
    ADAPTER_OPTIONS: dict[str, str] = {}

    def __init__(self, state: SandboxState, config: EmulatorConfig) -> None:
        self.state = state
        self.config = config
        self.api_key = config.api_key
        self.webhook_secret = config.webhook_secret
        self.idempotency = IdempotencyCache()

    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    async def guard(self, request: Request) -> Response | None:
        """A fault or auth failure answered instead of the real handler, or None."""
        # Read the body first: a slow answer must not find its client gone mid-read.
        await request.body()
        faulted = await self.state.faults.interfere(self.name)
        if faulted is not None:
            return faulted
        return self.check_auth(request)

    def check_auth(self, request: Request) -> Response | None:
        if bearer(request) != self.api_key:
            return JSONResponse(
                {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}},
                status_code=401,
            )
        return None
