"""The adapters' way to the sandbox in the same process: an httpx transport that
hands each request to the emulator route it matches, as the mounted sandbox app
would, without the ASGI round.

Through httpx's ASGI transport a PSP call went through the whole Starlette app
(its error and exception middleware, the router, the mount, the request-response
wrapper) and back through ASGI messages and a response stream: about 4% of a card
payment's CPU before the emulator did anything. Here the route is found with
Starlette's own matching (`Mount.matches`, `Route.matches`), the endpoint gets the
Request the mounted app would build (same scope: path, root path, path
parameters, headers, query string, body), and its Response becomes httpx's. A
request no emulator route takes in full (an unknown path, a wrong method) goes
through the app as before, so it is answered exactly as over HTTP.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Mount, Route
from starlette.types import ASGIApp, Message

log = logging.getLogger("cobro.sandbox")


class InProcess(httpx.AsyncBaseTransport):
    def __init__(self, app: ASGIApp, mounts: list[Mount]) -> None:
        self.mounts = mounts
        self._app = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        url = request.url
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "server": (url.host, url.port),
            "client": ("127.0.0.1", 123),
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
        }
        route = _matching(self.mounts, scope)
        if route is None:
            return await self._app.handle_async_request(request)
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            response = await route.endpoint(Request(scope, receive))
            if response.background is not None:
                await response.background()
        except Exception:
            log.exception("sandbox: %s %s failed", request.method, url.path)
            response = Response("Internal Server Error", status_code=500)
        return httpx.Response(
            response.status_code,
            headers=response.raw_headers,
            content=bytes(response.body),
            request=request,
        )


def _matching(mounts: list[Mount], scope: dict[str, Any]) -> Route | None:
    """The emulator route that takes this request in full (path and method), with
    `scope` brought to what the mounted app hands it; None for any other request."""
    for mount in mounts:
        match, child = mount.matches(scope)
        if match is not Match.FULL:
            continue
        inner = {**scope, **child}
        for route in mount.routes:
            if not isinstance(route, Route):
                continue
            match, leaf = route.matches(inner)
            if match is Match.FULL:
                scope.update(inner)
                scope.update(leaf)
                return route
            if match is Match.PARTIAL:
                return None  # the path is known, the method is not: the app answers 405
        return None
    return None
