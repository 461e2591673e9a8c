"""The Strawberry ASGI view: builds each request's Context from its Authorization."""

from __future__ import annotations

import sys
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from app.domain.codec import json_bytes
from app.domain.errors import CobroError
from app.services.container import Services
from resolvers.context import Context
from resolvers.errors import to_graphql_error
from resolvers.ws_handlers import LegacyWSHandler, TransportWSHandler


class CobroGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, services: Services, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        context = Context(self.services, principal=None, request=request, response=response)
        try:
            context.principal = await self.services.auth.authenticate(
                request.headers.get("authorization")
            )
        except CobroError as error:
            context.auth_error = error
        return context

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
        elif context.auth_error is not None:
            raise ConnectionRejectionError({"message": context.auth_error.message})
        return UNSET

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
