"""The Strawberry ASGI view: builds each request's Context from its Authorization.

Subscriptions run over WebSocket and, over plain HTTP, as GraphQL over SSE (the
"distinct connections" mode: one subscription per request, `Accept:
text/event-stream`) and Apollo's multipart subscriptions (`Accept:
multipart/mixed;subscriptionSpec=1.0`), both Strawberry's own, opt-in. An HTTP
stream is a request like any other: it passes the app's middleware, authenticates
and counts against its key's rate limit in `get_context`, and a key that is no good
ends it with one message whose error has `extensions.code` (UNAUTHENTICATED,
FORBIDDEN, ...), then the protocol's completion. Strawberry sends the keep-alives
(an SSE comment every 15 s, an empty multipart part every 5 s).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import aclosing
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.http.base import BaseRequestProtocol
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)
from strawberry.types import ExecutionResult
from strawberry.types.execution import SubscriptionExecutionResult
from strawberry.types.unset import UnsetType

from app import logs
from app.domain.codec import json_bytes
from app.domain.errors import CobroError
from app.metrics import SUBSCRIPTIONS_OPEN, count_error
from app.services.container import Services
from app.services.persisted_queries import PersistedQueries
from app.services.rate_limits import RateLimited
from resolvers.context import Context
from resolvers.errors import to_graphql_error
from resolvers.ws_handlers import LegacyWSHandler, TransportWSHandler

# WebSocket (graphql-transport-ws, legacy graphql-ws), GraphQL over SSE (distinct
# connections) and Apollo's multipart subscriptions (contract sections 1 and 9).
SUBSCRIPTION_PROTOCOLS = (
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    GRAPHQL_SSE_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)


class CobroGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(
        self, services: Services, persisted_queries: PersistedQueries, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.services = services
        self.persisted_queries = persisted_queries

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # A GET with a persisted query's hash and no text is an operation, not a browser.
        return "extensions" not in request.query_params and super().should_render_graphql_ide(
            request
        )

    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        """Automatic persisted queries (app/services/persisted_queries.py): the
        document a hash stands for, or a coded error in the form the request's
        transport speaks (a JSON answer, or one streamed message)."""
        single = request_data if isinstance(request_data, GraphQLRequestData) else None
        extensions = single.extensions if single is not None else None
        if single is not None and extensions and "persistedQuery" in extensions:
            try:
                single.query = await self.persisted_queries.resolve(
                    extensions["persistedQuery"], single.query
                )
            except CobroError as error:
                refused = ExecutionResult(
                    data=None,
                    errors=[GraphQLError(error.message, extensions={"code": error.code})],
                )
                count_error("graphql", error.code)
                return refused if single.protocol == "http" else _OneResult(refused)
        return await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        if isinstance(response, WebSocket):
            # WebSockets skip the app's middleware (app/main.py): their log context
            # starts here, in the connection's task, and its operations' tasks inherit it.
            logs.bind(
                logs.RequestContext(
                    logs.request_id_from(request.headers.get("x-request-id")), websocket=True
                )
            )
        context = Context(self.services, principal=None, request=request, response=response)
        try:
            context.principal = await self.services.auth.authenticate(
                request.headers.get("authorization")
            )
            _note_principal(context)
            if context.principal is not None and isinstance(response, Response):
                await self.services.rate_limiter.hit(context.principal)
        except RateLimited as error:
            # Contract section 10: 429 and Retry-After. Whatever needs the caller
            # raises it: an extensions.code in queries, a UserError in mutations.
            context.auth_error = error
            assert isinstance(response, Response)  # only HTTP requests are counted here
            response.status_code = 429
            response.headers["Retry-After"] = str(error.retry_after)
        except CobroError as error:
            context.auth_error = error
        return context

    async def create_streaming_response(
        self,
        request: Request | WebSocket,
        stream: Callable[[], AsyncIterator[str]],
        sub_response: Response,
        headers: Mapping[str, str],
    ) -> Response:
        """A subscription over SSE or multipart HTTP, counted while open. A client
        that leaves is noticed by Starlette (http.disconnect), which stops the
        stream; closing it cancels Strawberry's keep-alive and execution tasks and
        leaves the broker (tests/api/test_http_subscription_drops.py)."""
        content_type = headers.get("Content-Type", "")
        gauge = SSE_OPEN if content_type.startswith("text/event-stream") else MULTIPART_OPEN
        return await super().create_streaming_response(
            request, lambda: _counted(stream, gauge), sub_response, headers
        )

    def decode_json(self, data: str | bytes) -> object:
        # orjson: fast, and it refuses nesting deeper than 1,024 with a JSONDecodeError
        # (a 400), where the standard library would hit a RecursionError (a 500).
        value = orjson.loads(data)
        # Subscribers send the same few documents; one copy of each text is kept for
        # as long as a subscription holds it, not one per subscriber (~200 B each).
        payload = value.get("payload") if type(value) is dict else None
        if type(payload) is dict and type(query := payload.get("query")) is str:
            payload["query"] = sys.intern(query)
        return value

    def parse_json(self, data: str | bytes) -> object:
        """JSON of an HTTP request (its body; a GET's `variables` and `extensions`).

        Strawberry reads keys from whatever this returns, so `null`, `5`, `"x"` or
        `true` would be an AttributeError, a 500: anything but an object (or a list,
        which Strawberry answers as a batch) is the client's mistake, a 400."""
        value = super().parse_json(data)
        if not isinstance(value, dict | list):
            raise HTTPException(400, "The request's JSON must be an object")
        return value

    def encode_json(self, data: object) -> str:
        return json_bytes(data).decode()  # copes with an integer beyond 64 bits in metadata

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Authenticate from `connection_init` ({"Authorization": "Bearer <key>"});
        the header on the upgrade request works too. A bad key closes with 4403."""
        params = context.connection_params or {}
        header = params.get("Authorization", params.get("authorization"))
        if header is not None:
            if not isinstance(header, str):
                raise ConnectionRejectionError({"message": "Authorization must be a string"})
            try:
                context.principal = await self.services.auth.authenticate(header)
            except CobroError as error:
                raise ConnectionRejectionError({"message": error.message}) from None
            context.auth_error = None
            _note_principal(context)
        elif context.auth_error is not None:
            raise ConnectionRejectionError({"message": context.auth_error.message})
        return UnsetType()  # UNSET itself, a singleton, which Strawberry types as Any

    async def process_result(
        self, request: Request | WebSocket, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        # Syntax errors are raised before extensions run; give them a code too.
        if result.errors:
            result.errors = [
                e if e.extensions and "code" in e.extensions else to_graphql_error(e)
                for e in result.errors
            ]
        return process_result(result)


# Open subscriptions over HTTP, by protocol (WebSockets count theirs in ws_handlers).
SSE_OPEN = SUBSCRIPTIONS_OPEN.labels("graphql-sse")
MULTIPART_OPEN = SUBSCRIPTIONS_OPEN.labels("multipart-subscription")


async def _counted(
    stream: Callable[[], AsyncIterator[str]], gauge: Any
) -> AsyncGenerator[str, None]:
    gauge.inc()
    try:
        async with aclosing(stream()) as chunks:  # type: ignore[type-var]
            async for chunk in chunks:
                yield chunk
    finally:
        gauge.dec()


class _OneResult:
    """A stream of one result, for an error a streaming transport must carry."""

    def __init__(self, result: ExecutionResult) -> None:
        self._result: ExecutionResult | None = result

    def __aiter__(self) -> _OneResult:
        return self

    async def __anext__(self) -> ExecutionResult:
        result, self._result = self._result, None
        if result is None:
            raise StopAsyncIteration
        return result


def _note_principal(context: Context) -> None:
    principal = context.principal
    if principal is not None:
        logs.note(merchant_id=principal.merchant_id, intent_id=principal.intent_id)
