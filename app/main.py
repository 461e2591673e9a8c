"""The API app: one Starlette app with /graphql (HTTP and WebSocket), /webhooks,
/healthz, /readyz, /metrics, the hosted pages (/checkout, /pay: app/web) and, outside
production, /sandbox, on a Runtime built
from the settings (app/runtime.py)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.clock import Clock
from app.config import Settings
from app.http.health import healthz, readyz
from app.http.limits import BodySizeLimit
from app.http.metrics import metrics
from app.http.observe import Observe
from app.http.webhooks import receive_webhook
from app.runtime import Runtime, build_runtime
from app.services.persisted_queries import PersistedQueries
from app.tracing import Tracing
from app.web.pages import CheckoutPages
from providers.http import tls_context
from resolvers.schema import build_schema
from resolvers.view import SUBSCRIPTION_PROTOCOLS, CobroGraphQL

__all__ = ["Runtime", "build_runtime", "create_app"]

GRAPHQL_PATH = "/graphql"
GRAPHQL_METHODS = ("GET", "POST")
CONNECTION_INIT_TIMEOUT = timedelta(seconds=10)
# Allocations between young-generation collections (Python's default is 700).
GC_YOUNG_THRESHOLD = 10_000


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, tracing: Tracing | None = None
) -> Starlette:
    """`tracing`: how to trace (a test's in-memory exporter); by default what the OTEL_*
    variables say, which is nothing unless they turn traces on (app/tracing.py)."""
    settings = settings or Settings()
    tracing = tracing or Tracing.from_environ()
    runtime = build_runtime(settings, clock, tracing)
    schema = build_schema(
        max_depth=settings.max_query_depth,
        max_tokens=settings.max_query_tokens,
        max_aliases=settings.max_query_aliases,
        tracer=tracing.tracer if tracing is not None else None,
    )
    graphql = CobroGraphQL(
        runtime.services,
        PersistedQueries(runtime.services.db, runtime.services.clock),
        schema=schema,
        graphql_ide="graphiql" if settings.sandbox_enabled else None,
        # Clients send connection_init at once; until then each socket keeps a timer
        # task alive (a minute by default), kilobytes per subscriber at scale.
        connection_init_wait_timeout=CONNECTION_INIT_TIMEOUT,
        subscription_protocols=SUBSCRIPTION_PROTOCOLS,
    )
    routes: list[BaseRoute] = [
        Route(GRAPHQL_PATH, graphql, methods=list(GRAPHQL_METHODS)),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/webhooks/{provider}", receive_webhook, methods=["POST"]),
    ]
    routes += CheckoutPages(runtime.services, sandbox=settings.sandbox_enabled).routes()
    if runtime.sandbox is not None:
        routes.append(Mount("/sandbox", app=runtime.sandbox.app))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if runtime.sandbox is not None and runtime.sandbox.state.webhook_client is None:
            runtime.sandbox.state.webhook_client = _sandbox_webhook_client(settings, app)
            runtime.closers.insert(0, runtime.sandbox.state.webhook_client.aclose)
        async with runtime.running(worker=settings.embedded_worker):
            _settle_garbage_collector()
            yield

    app = CobroApp(
        graphql,
        tracing=tracing,
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)],
    )
    app.state.runtime = runtime
    return app


class CobroApp(Starlette):
    """Starlette, with GraphQL WebSockets handed straight to the GraphQL view.

    A WebSocket lives for hours; on the way through the middleware stack and the
    router it keeps a suspended frame in each of them for as long as it is open, a
    few kilobytes per subscriber that do nothing for it (no body to limit, no HTTP
    error page to render). So a WebSocket to /graphql skips them (the view sets its
    log context, resolvers/view.py). Every HTTP request,
    /graphql included, goes the usual way, through the app's middleware (the body
    limit, and whatever an operator adds: tests/api/test_middleware.py fails if
    /graphql stops passing through it).
    """

    def __init__(self, graphql: ASGIApp, *, tracing: Tracing | None, **kwargs: Any) -> None:
        self._tracing = tracing  # read by build_middleware_stack, which init may call
        super().__init__(**kwargs)
        self._graphql = graphql

    def build_middleware_stack(self) -> ASGIApp:
        """The app's stack inside `Observe` (request id, log context, latency, access
        line), so that even Starlette's error middleware runs within the request's
        context and a 500 it answers is timed and logged like any other answer. When
        traces are on, OpenTelemetry's ASGI middleware is outside it all, so the
        request's span covers everything, error pages included."""
        stack: ASGIApp = Observe(super().build_middleware_stack())
        if self._tracing is not None:
            stack = self._tracing.asgi(stack)
        return stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == GRAPHQL_PATH:
            scope["app"] = self
            await self._graphql(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def _settle_garbage_collector() -> None:
    """Start-up leaves a couple of hundred thousand objects that live as long as the
    process (the schema, SQLAlchemy's caches, ...). Frozen, a full collection no
    longer walks them all (a 50 ms pause under load, every few seconds); and the
    young generation is collected less often (requests make plenty of garbage)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _sandbox_webhook_client(settings: Settings, app: Starlette) -> httpx.AsyncClient:
    """How the sandbox's PSPs reach /webhooks: this app in-process, or a URL."""
    if settings.sandbox_webhook_url:
        return httpx.AsyncClient(
            base_url=settings.sandbox_webhook_url, timeout=10, verify=tls_context()
        )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=settings.base_url)
