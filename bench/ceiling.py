"""The ceilings: what a bare Starlette app does on the same machine, same run.

- POST /graphql reads the same intent row through the same engine (app.db.engine,
  the same repository query) and answers the same JSON, with no GraphQL.
- WebSocket /ws?id=X holds a socket per subscriber; POST /poke {"id": X} sends a
  pre-serialized message to that one socket; POST /broadcast sends one to all.

    python bench/ceiling.py --port 8099 --database sqlite+aiosqlite:///…
"""

from __future__ import annotations

import argparse
import json

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.db.engine import Database
from app.db.repositories import intents

MESSAGE = json.dumps(
    {
        "type": "next",
        "id": "1",
        "payload": {"data": {"paymentIntentUpdated": {"status": "SUCCEEDED"}}},
    }
)


def build(database_url: str) -> Starlette:
    db = Database(database_url)
    sockets: dict[str, WebSocket] = {}

    async def read(request: Request) -> Response:
        body = await request.json()
        async with db.read() as conn:
            intent = await intents.get(conn, body["variables"]["id"])
        if intent is None:
            return JSONResponse({"data": {"paymentIntent": None}})
        return JSONResponse(
            {
                "data": {
                    "paymentIntent": {
                        "amount": {
                            "amount": intent.amount.to_decimal_string(),
                            "currency": intent.amount.currency.value,
                        },
                        "status": intent.status.value,
                        "nextAction": None,
                    }
                }
            }
        )

    async def socket(ws: WebSocket) -> None:
        await ws.accept()
        key = ws.query_params.get("id", str(id(ws)))
        sockets[key] = ws
        await ws.send_text('{"type":"ready"}')
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect:
            sockets.pop(key, None)

    async def poke(request: Request) -> Response:
        target = sockets.get((await request.json())["id"])
        if target is not None:
            await target.send_text(MESSAGE)
        return JSONResponse({"ok": target is not None})

    async def broadcast(request: Request) -> Response:
        for ws in list(sockets.values()):
            await ws.send_text(MESSAGE)
        return JSONResponse({"sent": len(sockets)})

    return Starlette(
        routes=[
            Route("/graphql", read, methods=["POST"]),
            WebSocketRoute("/ws", socket),
            Route("/poke", poke, methods=["POST"]),
            Route("/broadcast", broadcast, methods=["POST"]),
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True)
    args = parser.parse_args()
    # The same server settings as `cobro serve` (app/cli.py).
    uvicorn.run(
        build(args.database),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        loop="asyncio",
        ws="wsproto",
        ws_per_message_deflate=False,
        proxy_headers=False,
    )
