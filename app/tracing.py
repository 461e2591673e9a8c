"""Traces with OpenTelemetry: off unless the standard OTEL_* variables turn them on.

On means OTEL_TRACES_EXPORTER names an exporter (anything but "none") and
OTEL_SDK_DISABLED is not "true". Then the SDK does the rest from its own variables:
OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the service is "cobro" unless they
say otherwise), OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*, OTEL_EXPORTER_OTLP_* for
the endpoint, headers and timeout. Exporters are found by their registered names
("otlp" is OTLP over HTTP/protobuf, "console" prints spans).

Off, nothing is installed: no ASGI middleware, no listener on the engines (so the
prepared-statement paths of app/db stay on), no wrapper on a client or a service,
and no span object is made. What the hot path still does is ask one question: the
writer of an outbox row reads the current span's context (a context variable; no
span there, no traceparent), and the relay and the live streams check that they were
given a tracer.

On, the maintained instrumentations do the work (ASGI for HTTP requests, SQLAlchemy
for every statement, httpx for each PSP call and merchant webhook, redis for the
broker's PUBLISH), each installed on Cobro's own objects, never on a library as a
whole; spans of our own are made only where no instrumentation can see: the service
call (`trace_calls`), the GraphQL operation (resolvers/tracing.py), the outbox
publish and the subscriber's push, tied together by the W3C traceparent the outbox
row and the broker's message carry (`traceparent`, `context_of`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

import httpx
from opentelemetry import trace
from opentelemetry.trace import Span, Tracer
from redis.asyncio import Redis
from sqlalchemy import Engine
from starlette.types import ASGIApp, Scope

from app.metrics import route_of

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import SpanExporter

# The SDK and the instrumentations are imported where they are used: with traces off
# (the default) no process pays for importing them (~0.1-0.2 s of every start).

log = logging.getLogger("cobro.tracing")

TRACER_NAME = "cobro"
DEFAULT_SERVICE_NAME = "cobro"
# OTEL_TRACES_EXPORTER=otlp: the entry point of each OTLP protocol (only HTTP is
# installed; gRPC would need opentelemetry-exporter-otlp-proto-grpc).
OTLP_BY_PROTOCOL = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}
EXPORTER_GROUP = "opentelemetry_traces_exporter"


def enabled(environ: Mapping[str, str]) -> bool:
    """Whether the OTEL_* variables ask for traces (module docstring)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    names = _exporter_names(environ)
    return bool(names) and names != ["none"]


class Tracing:
    """A tracer provider and the instrumentation of one running Cobro.

    Built from the environment by `from_environ` (None when traces are off), or from a
    provider a test hands over (with an in-memory exporter). `shutdown` removes what
    was installed and flushes the spans still queued."""

    def __init__(self, provider: trace.TracerProvider, *, owns_provider: bool = False) -> None:
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer(TRACER_NAME)
        self._owns_provider = owns_provider
        self._engines_instrumented = False
        self._redis: list[Redis] = []
        self._http: list[httpx.AsyncClient] = []

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Tracing | None:
        if not enabled(environ):
            return None
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=_resource())
        for exporter in _exporters(environ):
            provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls(provider, owns_provider=True)

    def asgi(self, app: ASGIApp) -> ASGIApp:
        """The app inside OpenTelemetry's ASGI middleware: one server span per request
        (the trace's root, or a child of the caller's traceparent), named by route
        template. OTEL_PYTHON_STARLETTE_EXCLUDED_URLS (or OTEL_PYTHON_EXCLUDED_URLS)
        leaves paths such as /healthz and /metrics untraced."""
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.util.http import get_excluded_urls

        return OpenTelemetryMiddleware(
            app,
            excluded_urls=get_excluded_urls("STARLETTE"),
            default_span_details=_span_details,
            server_request_hook=_without_query,
            tracer_provider=self.provider,
            # A span per ASGI message says nothing an operator needs, and costs.
            exclude_spans=["receive", "send"],
        )

    def engines(self, engines: list[Engine]) -> None:
        """A span per SQL statement. With listeners on an engine, app/db's prepared
        statements go through SQLAlchemy, where the listeners see them."""
        # The instrumentation declares SQLAlchemy below 2.1; its event listeners work
        # on 2.1 (tests/api/test_tracing.py sees the statements' spans).
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        tracers = SQLAlchemyInstrumentor().instrument(
            engines=engines, tracer_provider=self.provider, skip_dep_check=True
        )
        self._engines_instrumented = tracers is not None
        if tracers is None:
            log.warning("SQLAlchemy was already instrumented in this process; SQL goes untraced")

    def redis(self, client: Redis) -> None:
        """A span per command (PUBLISH) and per pipeline, arguments masked."""
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor.instrument_client(client, tracer_provider=self.provider)
        self._redis.append(client)

    def http(self, client: httpx.AsyncClient, peer: str) -> None:
        """A client span per request, which carries the traceparent to the server;
        `peer` (a PSP's name, "merchant-webhooks") is set on each span."""
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        async def name_peer(span: Span, _request: object) -> None:
            if span.is_recording():
                span.set_attribute("cobro.peer", peer)

        HTTPXClientInstrumentor.instrument_client(
            client, tracer_provider=self.provider, request_hook=name_peer
        )
        self._http.append(client)

    async def shutdown(self) -> None:
        if self._http:
            from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

            for client in self._http:
                HTTPXClientInstrumentor.uninstrument_client(client)
        if self._redis:
            from opentelemetry.instrumentation.redis import RedisInstrumentor

            for redis_client in self._redis:
                RedisInstrumentor.uninstrument_client(redis_client)
        if self._engines_instrumented:
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            SQLAlchemyInstrumentor().uninstrument()
            self._engines_instrumented = False
        self._http.clear()
        self._redis.clear()
        if self._owns_provider:
            from opentelemetry.sdk.trace import TracerProvider

            if isinstance(self.provider, TracerProvider):
                self.provider.shutdown()


def _span_details(scope: Scope) -> tuple[str, dict[str, str]]:
    """Names the span by route template ("POST /webhooks/{provider}"), never by an id."""
    route = route_of(scope.get("path", ""))
    method = scope.get("method", "WEBSOCKET" if scope.get("type") == "websocket" else "")
    return f"{method} {route}", {"http.route": route}


def _without_query(span: Span, scope: Scope) -> None:
    """The URL without its query string: a PSP's webhook URL may carry its token
    (app/http/webhooks.py), which must reach no span, as it reaches no log line."""
    if span.is_recording() and scope.get("query_string"):
        path = scope.get("path", "")
        host = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1")
        span.set_attribute("http.url", f"{scope.get('scheme', 'http')}://{host}{path}")
        span.set_attribute("url.query", "[redacted]")


def _resource() -> Resource:
    """OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES as the SDK reads them; "cobro"
    rather than the SDK's "unknown_service" when neither names the service."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def _exporter_names(environ: Mapping[str, str]) -> list[str]:
    raw = environ.get("OTEL_TRACES_EXPORTER", "")
    return [name.strip().lower() for name in raw.split(",") if name.strip()]


def _otlp_exporter(environ: Mapping[str, str]) -> str:
    """OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL; HTTP by default."""
    protocol = environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    return OTLP_BY_PROTOCOL.get(protocol.strip() or "http/protobuf", protocol)


def _exporters(environ: Mapping[str, str]) -> list[SpanExporter]:
    """The exporters OTEL_TRACES_EXPORTER names, by the entry points the SDK and the
    exporter packages register; an unknown name stops the start with a clear error."""
    found = []
    for name in _exporter_names(environ):
        if name == "none":
            continue
        registered = _otlp_exporter(environ) if name == "otlp" else name
        matches = entry_points(group=EXPORTER_GROUP, name=registered)
        if not matches:
            known = sorted({e.name for e in entry_points(group=EXPORTER_GROUP)} | {"otlp"})
            wanted = name if registered == name else f"{name} ({registered})"
            raise ValueError(f"OTEL_TRACES_EXPORTER names {wanted!r}; this install has {known}")
        exporter_class = next(iter(matches)).load()
        found.append(exporter_class())
    return found
