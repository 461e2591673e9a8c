"""Subscriptions over plain HTTP for tests: GraphQL over SSE (distinct connections)
and Apollo's multipart subscriptions, each read as a stream of GraphQL results."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from typing import Any

import httpx

SSE = "text/event-stream"
MULTIPART = "multipart/mixed;subscriptionSpec=1.0,application/json"
BOUNDARY = "\r\n--graphql"
COMPLETE = {"complete": True}


class HTTPSubscription:
    """One subscription on one HTTP request: `next()` gives each GraphQL result
    (`{"data": ..., "errors": ...}`), then COMPLETE when the server ends the stream.
    Keep-alives (SSE comments, empty multipart parts) are counted, not returned."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        query: str | None,
        variables: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        accept: str = SSE,
        method: str = "POST",
        extensions: dict[str, Any] | None = None,
    ) -> None:
        self.http = http
        self.accept = accept
        headers = {"Accept": accept}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        body: dict[str, Any] = {"query": query, "variables": variables or {}}
        if extensions is not None:
            body["extensions"] = extensions
        if query is None:
            del body["query"]
        if method == "GET":
            params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
            self.request = http.build_request("GET", "/graphql", params=params, headers=headers)
        else:
            self.request = http.build_request("POST", "/graphql", json=body, headers=headers)
        self.response: httpx.Response | None = None
        self.keep_alives = 0
        self._stack = AsyncExitStack()
        self._chunks: Any = None
        self._buffer = ""

    async def __aenter__(self) -> HTTPSubscription:
        self.response = await self._stack.enter_async_context(_streamed(self.http, self.request))
        self._chunks = self.response.aiter_text()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    @property
    def status_code(self) -> int:
        assert self.response is not None
        return self.response.status_code

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        return await asyncio.wait_for(self._next(), timeout)

    async def data(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next result's `data`; it must carry no errors."""
        result = await self.next(timeout)
        assert "errors" not in result, result
        data: dict[str, Any] = result["data"]
        return data

    async def error_code(self, timeout: float = 10.0) -> str:
        result = await self.next(timeout)
        assert result.get("errors"), result
        return str(result["errors"][0]["extensions"]["code"])

    async def _next(self) -> dict[str, Any]:
        while True:
            message = self._take()
            if message is not None:
                return message
            try:
                self._buffer += await self._chunks.__anext__()
            except StopAsyncIteration:
                raise EOFError("the stream ended without completing") from None

    def _take(self) -> dict[str, Any] | None:
        return self._take_sse() if self.accept == SSE else self._take_part()

    def _take_sse(self) -> dict[str, Any] | None:
        while "\r\n\r\n" in self._buffer:
            block, self._buffer = self._buffer.split("\r\n\r\n", 1)
            fields = dict(line.split(": ", 1) for line in block.split("\r\n") if ": " in line)
            if block.startswith(":"):
                self.keep_alives += 1
            elif fields.get("event") == "complete":
                return COMPLETE
            elif fields.get("event") == "next":
                result: dict[str, Any] = json.loads(fields["data"])
                return result
        return None

    def _take_part(self) -> dict[str, Any] | None:
        """Parts end at the boundary; the end of the stream is the boundary + `--`."""
        while True:
            if self._buffer.startswith(BOUNDARY + "--"):
                return COMPLETE
            at = self._buffer.find(BOUNDARY, 1)
            if at < 0:
                return None
            part, self._buffer = self._buffer[:at], self._buffer[at:]
            if "\r\n\r\n" not in part:
                continue  # the opening boundary
            body = json.loads(part.split("\r\n\r\n", 1)[1])
            if "payload" not in body:
                self.keep_alives += 1
                continue
            payload: dict[str, Any] = body["payload"]
            return payload


class _streamed:
    """httpx's `send(stream=True)` as an async context manager."""

    def __init__(self, http: httpx.AsyncClient, request: httpx.Request) -> None:
        self.http = http
        self.request = request
        self.response: httpx.Response | None = None

    async def __aenter__(self) -> httpx.Response:
        self.response = await self.http.send(self.request, stream=True)
        return self.response

    async def __aexit__(self, *exc: object) -> None:
        assert self.response is not None
        await self.response.aclose()
