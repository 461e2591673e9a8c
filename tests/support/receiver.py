"""A merchant's webhook endpoint for tests: a real HTTP server that records what it
gets and answers as told (fail the first N, hang, or acknowledge)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.server import ServerThread, free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    received: list[Received] = field(default_factory=list)
    fail_first: dict[str, int] = field(default_factory=dict)  # path -> failures left
    hang: set[str] = field(default_factory=set)  # paths that never answer in time

    async def handle(self, request: Request) -> Response:
        path = request.url.path
        if path in self.hang:
            await asyncio.sleep(60)
        body = await request.body()
        if self.fail_first.get(path, 0) > 0:
            self.fail_first[path] -= 1
            return JSONResponse({"error": "try later"}, status_code=500)
        self.received.append(Received(path, dict(request.headers), body))
        return JSONResponse({"ok": True})

    def events(self, path: str) -> list[dict[str, Any]]:
        return [r.event for r in self.received if r.path == path]

    def start(self) -> tuple[ServerThread, Receiver]:
        app = Starlette(routes=[Route("/{path:path}", self.handle, methods=["POST"])])
        return ServerThread(app, free_port()).start(), self
