"""App middleware sees GraphQL over HTTP (an operator's logging, tracing or limits
must not miss the API's main door), and the body limit is applied once."""

from __future__ import annotations

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from app.http.limits import BodySizeLimit
from app.main import create_app
from tests.conftest import DEV_SECRET, make_settings, over_http
from tests.support.server import ServerThread, free_port


class SeenPaths:
    """A plain ASGI middleware that writes down every request it is handed."""

    seen: list[tuple[str, str]] = []

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            self.seen.append((scope["type"], scope["path"]))
        await self.app(scope, receive, send)


async def test_app_middleware_sees_graphql_over_http(database_url):
    port = free_port()
    app = create_app(make_settings(database_url, **over_http(f"http://127.0.0.1:{port}")))
    app.add_middleware(SeenPaths)
    assert sum(m.cls is BodySizeLimit for m in app.user_middleware) == 1
    thread = ServerThread(app, port).start()
    SeenPaths.seen.clear()
    try:
        async with httpx.AsyncClient(base_url=thread.url, timeout=10) as http:
            answer = await http.post(
                "/graphql",
                json={"query": "{ providers { name } }"},
                headers={"Authorization": f"Bearer {DEV_SECRET}"},
            )
            assert answer.status_code == 200, answer.text
            too_big = await http.post("/graphql", content=b"x" * (65 * 1024))
            assert too_big.status_code == 413
    finally:
        thread.stop()
    assert SeenPaths.seen.count(("http", "/graphql")) == 2
