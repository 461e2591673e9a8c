"""Strawberry's WebSocket protocol handlers, so that no subscription dies in silence.

A subscription's task can end with a CancelledError it did not ask for: a shared
future it awaited was cancelled by someone else. Strawberry's graphql-transport-ws
handler lets that end the task without a word (no `error`, no `complete`, the
operation still registered), and its legacy graphql-ws handler lets an exception
end the task unseen (it answers a cancellation with `complete` itself). Here these
end the operation with an `error` message the client can act on (resubscribe),
logged once. A cancellation of the task itself (the client sent `complete` or went
away) is left alone.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from typing import Any

from graphql import GraphQLFormattedError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage

from app.metrics import SUBSCRIPTIONS_OPEN
from app.services.rate_limits import RateLimited
from resolvers.errors import INTERNAL_CODE

log = logging.getLogger("cobro.graphql")

ENDED = "the subscription's stream ended unexpectedly; subscribe again"
ERROR_PAYLOAD: GraphQLFormattedError = {"message": ENDED, "extensions": {"code": INTERNAL_CODE}}
# Open operations per protocol, counted in the frames each operation already has.
TRANSPORT_OPEN = SUBSCRIPTIONS_OPEN.labels("graphql-transport-ws")
LEGACY_OPEN = SUBSCRIPTIONS_OPEN.labels("graphql-ws")


def _cancelled_by_someone_else() -> bool:
    task = asyncio.current_task()
    return task is not None and not task.cancelling()


async def _over_limit(context: Any) -> GraphQLFormattedError | None:
    """Each operation started on a WebSocket counts once against its key's rate
    limit (contract section 10); over it, the error payload refusing it."""
    principal = getattr(context, "principal", None)
    if principal is None:
        return None
    try:
        await context.services.rate_limiter.hit(principal)
    except RateLimited as error:
        return {
            "message": error.message,
            "extensions": {"code": error.code, "retryAfter": error.retry_after},
        }
    return None


class TransportWSHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    """graphql-transport-ws: a stray cancellation becomes an `error` message, and a
    client gone while a message was on its way is not logged as a server error. A
    `subscribe` over its key's rate limit is refused with an `error` message (the
    connection and its other subscriptions go on)."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and message["id"] not in self.operations:
            refused = await _over_limit(self.context)
            if refused is not None:
                await self.send_message(
                    {"id": message["id"], "type": "error", "payload": [refused]}
                )
                return
        await super().handle_subscribe(message)

    async def handle_task_exception(self, error: Exception) -> None:
        if isinstance(error, WebSocketDisconnected):
            return  # the client left mid-send: nothing to tell anyone
        await super().handle_task_exception(error)

    async def run_operation(self, operation: Operation[Any, Any]) -> None:
        TRANSPORT_OPEN.inc()
        try:
            await super().run_operation(operation)
        except asyncio.CancelledError:
            if not _cancelled_by_someone_else():
                raise
            log.error("subscription %s cancelled from outside; ended with an error", operation.id)
            with suppress(Exception):
                await operation.send_operation_message(
                    {"id": operation.id, "type": "error", "payload": [ERROR_PAYLOAD]}
                )
            self.operations.pop(operation.id, None)
        finally:
            TRANSPORT_OPEN.dec()


class LegacyWSHandler(BaseGraphQLWSHandler[Any, Any]):
    """graphql-ws: an exception (its handler's task has no one to hear it) becomes
    an `error` message; a `start` over its key's rate limit is refused with one."""

    async def handle_start(self, message: StartMessage) -> None:
        if self.connection_acknowledged:
            refused = await _over_limit(self.context)
            if refused is not None:
                await self.send_message({"type": "error", "id": message["id"], "payload": refused})
                return
        await super().handle_start(message)

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        LEGACY_OPEN.inc()
        try:
            await super().handle_async_results(operation_id, query, operation_name, variables)
        except Exception:
            log.exception("subscription %s failed; ended with an error", operation_id)
            with suppress(Exception):
                await self.send_message(
                    {"type": "error", "id": operation_id, "payload": ERROR_PAYLOAD}
                )
        finally:
            LEGACY_OPEN.dec()
