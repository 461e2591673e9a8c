"""A graphql-transport-ws client for tests, on the `websockets` library."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import websockets
from websockets.typing import Subprotocol

PROTOCOL = "graphql-transport-ws"


class GraphQLWebSocket:
    def __init__(self, url: str, key: str | None = None, protocol: str = PROTOCOL) -> None:
        self.url = url.replace("http://", "ws://") + "/graphql"
        self.key = key
        self.protocol = protocol
        self._ids = itertools.count(1)
        self.ws: Any = None

    async def __aenter__(self) -> GraphQLWebSocket:
        self.ws = await websockets.connect(self.url, subprotocols=[Subprotocol(self.protocol)])
        payload = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        init = "connection_init"
        await self.ws.send(json.dumps({"type": init, "payload": payload}))
        ack = await self.receive()
        assert ack["type"] == "connection_ack", ack
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()

    async def receive(self, timeout: float = 10.0) -> dict[str, Any]:
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            if message["type"] == "ka":
                continue
            return message

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        op_id = str(next(self._ids))
        kind = "subscribe" if self.protocol == PROTOCOL else "start"
        await self.ws.send(
            json.dumps(
                {
                    "id": op_id,
                    "type": kind,
                    "payload": {"query": query, "variables": variables or {}},
                }
            )
        )
        return op_id

    async def next_data(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next `next` payload's data; fails on anything else."""
        message = await self.receive(timeout)
        assert message["type"] in ("next", "data"), message
        assert not message["payload"].get("errors"), message["payload"]["errors"]
        data: dict[str, Any] = message["payload"]["data"]
        return data

    async def error_code(self, op_id: str, timeout: float = 10.0) -> str:
        """The `extensions.code` of the first error sent for operation `op_id`."""
        while True:
            message = await self.receive(timeout)
            if message.get("id") != op_id or message["type"] == "complete":
                continue
            if message["type"] == "error":
                errors = message["payload"]
            else:
                errors = message["payload"].get("errors")
            assert errors, message
            code: str = errors[0]["extensions"]["code"]
            return code

    async def stop(self, op_id: str) -> None:
        kind = "complete" if self.protocol == PROTOCOL else "stop"
        await self.ws.send(json.dumps({"id": op_id, "type": kind}))


INTENT_UPDATED = """
subscription Watch($id: ID!, $after: Int) {
  paymentIntentUpdated(id: $id, afterVersion: $after) {
    id status version amountReceived { amount }
    nextAction { __typename ... on OxxoVoucher { reference } }
  }
}
"""

INTENTS_UPDATED = """
subscription { paymentIntentsUpdated { id status version } }
"""
