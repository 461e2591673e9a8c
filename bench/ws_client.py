"""The WebSocket load generator: a process of its own (not the code under test)
that opens many subscriptions and times what arrives.

    python bench/ws_client.py push   --api URL --webhooks URL --plan FILE [--ceiling]
    python bench/ws_client.py fanout --api URL --subscribers N [--ceiling]
    python bench/ws_client.py memory --api URL --pid PID --plan FILE --steps 2000,10000

Against Cobro it speaks graphql-transport-ws at /graphql; with --ceiling it talks
to bench/ceiling.py's bare Starlette WebSocket (/ws, /poke, /broadcast). Each run
prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

SECRET = "sk_test_dev"
WATCH = "subscription($id: ID!) { paymentIntentUpdated(id: $id) { id status version } }"
FIREHOSE = "subscription { paymentIntentsUpdated { id status version } }"
CREATE = {
    "query": 'mutation { createPaymentIntent(input: {amount: "100.00"}) { errors { code } } }'
}
OPEN_AT_ONCE = 200  # handshakes in flight together
AUTH = {"Authorization": f"Bearer {SECRET}"}


class Client:
    """How to subscribe and what a message looks like, for Cobro or the ceiling."""

    def __init__(self, api: str, ceiling: bool) -> None:
        self.api = api
        self.ceiling = ceiling
        self.ws_base = api.replace("http://", "ws://")
        self._gate = asyncio.Semaphore(OPEN_AT_ONCE)

    async def open(self, query: str, intent_id: str | None) -> ClientConnection:
        """A live subscription (its first message received when it has one)."""
        async with self._gate:
            if self.ceiling:
                ws = await self._connect(f"{self.ws_base}/ws?id={intent_id or ''}", [])
                await ws.recv()  # "ready"
                return ws
            ws = await self._connect(f"{self.ws_base}/graphql", ["graphql-transport-ws"])
            await ws.send(json.dumps({"type": "connection_init", "payload": AUTH}))
            ack = json.loads(await ws.recv())
            assert ack["type"] == "connection_ack", ack
            variables = {"id": intent_id} if intent_id else {}
            await ws.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": query, "variables": variables},
                    }
                )
            )
            if intent_id:
                await self.next(ws)  # the snapshot: the subscription is live
            return ws

    @staticmethod
    async def _connect(url: str, protocols: list[str]) -> ClientConnection:
        return await connect(
            url,
            subprotocols=protocols or None,
            compression=None,
            max_size=2**20,
            ping_interval=None,
            open_timeout=120,
        )

    async def next(self, ws: ClientConnection) -> dict[str, Any]:
        message = json.loads(await ws.recv())
        if message.get("type") != "next":
            raise RuntimeError(f"unexpected message {message}")
        data: dict[str, Any] = message["payload"]["data"]
        return data


def percentiles(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    if not ordered:
        return {}

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    return {str(q): round(pick(q), 3) for q in (1, 10, 25, 50, 75, 90, 95, 99, 99.9)} | {
        "max": round(ordered[-1], 3)
    }


async def open_all(client: Client, query: str, ids: list[str | None]) -> list[ClientConnection]:
    return list(await asyncio.gather(*(client.open(query, i) for i in ids)))


# -- push: webhook POST -> subscriber sees SUCCEEDED ----------------------------------------


async def push(args: argparse.Namespace) -> dict[str, Any]:
    client = Client(args.api, args.ceiling)
    plan = args.plan_data  # [{"id", "body", "signature"}]
    sockets = await open_all(client, WATCH, [p["id"] for p in plan])
    sent: dict[str, float] = {}
    latencies: dict[str, float] = {}

    async def watch(ws: ClientConnection, intent_id: str) -> None:
        while True:
            data = await client.next(ws)
            status = data.get("paymentIntentUpdated", {}).get("status")
            if status == "SUCCEEDED":
                latencies[intent_id] = (time.perf_counter() - sent[intent_id]) * 1000
                return

    watchers = [
        asyncio.create_task(watch(ws, p["id"])) for ws, p in zip(sockets, plan, strict=True)
    ]
    statuses: list[int] = []
    limits = httpx.Limits(max_connections=20)
    async with httpx.AsyncClient(base_url=args.webhooks, timeout=30, limits=limits) as http:

        async def send(step: dict[str, Any]) -> httpx.Response:
            if client.ceiling:
                return await http.post("/poke", json={"id": step["id"]})
            headers = {"Stripe-Signature": step["signature"], "content-type": "application/json"}
            return await http.post("/webhooks/stripe", content=step["body"], headers=headers)

        async def settle(step: dict[str, Any]) -> None:
            sent[step["id"]] = time.perf_counter()
            statuses.append((await send(step)).status_code)

        started = time.perf_counter()
        posts = []
        for n, step in enumerate(plan):
            delay = started + n / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            posts.append(asyncio.create_task(settle(step)))
        await asyncio.gather(*posts)
        elapsed = time.perf_counter() - started
    _, pending = await asyncio.wait(watchers, timeout=args.wait)
    for task in pending:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {
        "subscribers": len(sockets),
        "settlements": len(plan),
        "rate_per_s": round(len(plan) / elapsed, 1),
        "received": len(latencies),
        "lost": len(plan) - len(latencies),
        "http_statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "latency_ms": percentiles(list(latencies.values())),
        "samples_ms": sorted(round(v, 3) for v in latencies.values()),
    }


# -- fan-out: one change -> every subscriber of the merchant ----------------------------------


async def fanout(args: argparse.Namespace) -> dict[str, Any]:
    client = Client(args.api, args.ceiling)
    sockets = await open_all(client, FIREHOSE, [None] * args.subscribers)
    await asyncio.sleep(args.settle)  # this stream has no snapshot: let SUBSCRIBE land
    rounds = []
    async with httpx.AsyncClient(base_url=args.api, timeout=30) as http:
        for _ in range(args.changes):
            arrivals: list[float] = []

            async def first(ws: ClientConnection, into: list[float] = arrivals) -> None:
                await client.next(ws)
                into.append(time.perf_counter())

            readers = [asyncio.create_task(first(ws)) for ws in sockets]
            await asyncio.sleep(0.3)
            started = time.perf_counter()
            if client.ceiling:
                await http.post("/broadcast")
            else:
                await http.post("/graphql", json=CREATE, headers=AUTH)
            _, pending = await asyncio.wait(readers, timeout=args.wait)
            for task in pending:
                task.cancel()
            offsets = sorted((t - started) * 1000 for t in arrivals)
            rounds.append(
                {
                    "received": len(offsets),
                    "first_ms": round(offsets[0], 3) if offsets else None,
                    "median_ms": round(offsets[len(offsets) // 2], 3) if offsets else None,
                    "last_ms": round(offsets[-1], 3) if offsets else None,
                    "offsets_ms": [round(o, 3) for o in offsets],
                }
            )
            await asyncio.sleep(0.5)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {"subscribers": len(sockets), "rounds": rounds}


# -- memory: idle subscriptions and the server's RSS -----------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def memory(args: argparse.Namespace) -> dict[str, Any]:
    client = Client(args.api, args.ceiling)
    ids: list[str] = args.plan_data
    baseline = rss_kib(args.pid)
    steps = []
    sockets: list[ClientConnection] = []
    errors: list[str] = []
    for target in args.steps:
        wanted = ids[len(sockets) : target]
        opened = await asyncio.gather(
            *(client.open(WATCH, i) for i in wanted), return_exceptions=True
        )
        sockets += [ws for ws in opened if not isinstance(ws, BaseException)]
        errors += [repr(e) for e in opened if isinstance(e, BaseException)]
        await asyncio.sleep(args.idle)  # idle, past the server's connection-init timer
        steps.append({"subscriptions": len(sockets), "rss_kib": rss_kib(args.pid)})
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    first, last = steps[0], steps[-1]
    per_first = (first["rss_kib"] - baseline) / max(first["subscriptions"], 1)
    per_last = (last["rss_kib"] - baseline) / max(last["subscriptions"], 1)
    return {
        "baseline_rss_kib": baseline,
        "steps": steps,
        "open": len(sockets),
        "errors": len(errors),
        "error_samples": errors[:5],
        "kib_per_subscription": round(per_last, 2),
        "kib_per_subscription_first_step": round(per_first, 2),
    }


def main() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    parser = argparse.ArgumentParser()
    parser.add_argument("--ceiling", action="store_true")
    sub = parser.add_subparsers(dest="scenario", required=True)
    p = sub.add_parser("push")
    p.add_argument("--api", required=True)
    p.add_argument("--webhooks", required=True)
    p.add_argument("--plan", required=True)
    p.add_argument("--rate", type=float, default=50)
    p.add_argument("--wait", type=float, default=20)
    f = sub.add_parser("fanout")
    f.add_argument("--api", required=True)
    f.add_argument("--subscribers", type=int, default=1000)
    f.add_argument("--changes", type=int, default=5)
    f.add_argument("--settle", type=float, default=2.0)
    f.add_argument("--wait", type=float, default=10)
    m = sub.add_parser("memory")
    m.add_argument("--api", required=True)
    m.add_argument("--pid", type=int, required=True)
    m.add_argument("--plan", required=True)
    m.add_argument("--steps", type=lambda s: [int(x) for x in s.split(",")], default=[2000, 10000])
    m.add_argument("--idle", type=float, default=12.0)
    args = parser.parse_args(sys.argv[1:])
    plan = getattr(args, "plan", None)
    args.plan_data = json.loads(Path(plan).read_text()) if plan else None
    scenarios = {"push": push, "fanout": fanout, "memory": memory}
    result = asyncio.run(scenarios[args.scenario](args))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
