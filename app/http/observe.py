"""Every HTTP request: a request id, a context for its log lines, a latency
histogram by route (and by GraphQL operation), and one access log line.

Pure ASGI and the outermost layer of the app (CobroApp puts it outside Starlette's
own error middleware), so a request that fails with a 500 is timed, counted and
logged with its id too. What a request costs here: a header lookup, a context
variable, one or two histogram observations; the access line only when INFO is on.
A subscription streamed over HTTP (SSE, multipart) is timed until its response
starts, so that it does not pass for a request minutes slow (cobro_subscriptions_open
counts it while it lasts); its access line has its whole duration. GraphQL
WebSockets never come this way (app/main.py): the view gives them their context
(resolvers/view.py).
"""

from __future__ import annotations

import logging
import time

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import logs
from app.metrics import GRAPHQL_OPERATIONS, HTTP_METHODS, HTTP_REQUESTS, route_of

log = logging.getLogger("cobro.access")

REQUEST_ID_HEADER = b"x-request-id"
# Responses that stream for as long as a subscription lives (GraphQL over SSE,
# multipart subscriptions): timed until they start, not until the client leaves.
STREAMED_TYPES = (b"text/event-stream", b"multipart/mixed")


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                given = value
                break
        context = logs.RequestContext(logs.request_id_from(given))
        token = logs.bind(context)
        header = (REQUEST_ID_HEADER, context.request_id.encode())
        status = 500
        started = time.perf_counter()
        streaming_since: float | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, streaming_since
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
                if _streams(message["headers"]):
                    streaming_since = time.perf_counter()
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            ended = time.perf_counter()
            took = (streaming_since or ended) - started
            method = scope["method"]
            path = scope["path"]
            route = route_of(path)
            _child(
                HTTP_REQUESTS, route, method if method in HTTP_METHODS else "other", status
            ).observe(took)
            if context.root_field is not None:
                _child(GRAPHQL_OPERATIONS, context.operation_type, context.root_field).observe(took)
            elif route == "/graphql" and method == "POST":
                _child(GRAPHQL_OPERATIONS, "unknown", "invalid").observe(took)
            if log.isEnabledFor(logging.INFO):
                # The path, never the query string (a webhook URL may carry a token).
                log.info(
                    "%s %s %d",
                    method,
                    path,
                    status,
                    extra={"status": status, "duration_ms": round((ended - started) * 1000, 3)},
                )
            logs.unbind(token)


# Each metric's labelled children, as `labels()` hands them out (it takes a lock and
# checks the labels on every call: 0.5% of a payment's CPU). Routes, methods,
# statuses and GraphQL root fields are bounded sets, so this stays small.
_children: dict[tuple[Histogram, tuple[object, ...]], Histogram] = {}


def _child(metric: Histogram, *labels: object) -> Histogram:
    child = _children.get((metric, labels))
    if child is None:
        child = _children[(metric, labels)] = metric.labels(*(str(v) for v in labels))
    return child


def _streams(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(
        name.lower() == b"content-type" and value.startswith(STREAMED_TYPES)
        for name, value in headers
    )
