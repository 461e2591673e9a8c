"""The `cobro` command: serve, migrate, merchants create, export-schema."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from app.config import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cobro", description="Cobro payments API")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="migrate (outside production) and serve the API")
    commands.add_parser("migrate", help="bring the database schema up to date")
    commands.add_parser(
        "worker", help="run the background jobs: relay, expiry, merchant webhooks, reconciliation"
    )
    merchants = commands.add_parser("merchants", help="manage merchants")
    merchant_commands = merchants.add_subparsers(dest="merchant_command", required=True)
    create = merchant_commands.add_parser("create", help="add a merchant and print its keys")
    create.add_argument("--name", required=True)
    export = commands.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    export.add_argument("--output", type=Path, help="write to this file instead of stdout")
    args = parser.parse_args(argv)

    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    # Quiet start-up chatter: "Pillow not found" (we draw SVG) and Alembic plugin lists.
    for name in ("pyBarcode", "alembic.runtime.plugins"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if args.command == "serve":
        return serve(settings)
    if args.command == "worker":
        asyncio.run(run_worker(settings))
        return 0
    if args.command == "migrate":
        asyncio.run(_migrate(settings))
        print("database is up to date", file=sys.stderr)
        return 0
    if args.command == "merchants":
        merchant = asyncio.run(_create_merchant(settings, args.name))
        print(json.dumps(merchant))
        return 0
    if args.command == "export-schema":
        from resolvers.schema import schema

        text = schema.as_str() + "\n"
        if args.output:
            args.output.write_text(text)
        else:
            sys.stdout.write(text)
        return 0
    return 2


async def _migrate(settings: Settings) -> None:
    from app.db.engine import Database
    from app.db.migrate import upgrade

    database = Database(settings.database_url, fast_path=settings.postgres_fast_path)
    try:
        await upgrade(database)
    finally:
        await database.dispose()


async def _create_merchant(settings: Settings, name: str) -> dict[str, str]:
    from app.clock import Clock
    from app.db.engine import Database
    from app.db.migrate import upgrade
    from app.services.merchants import MerchantService

    name = name.strip()
    if not name or len(name) > 200:
        raise SystemExit("cobro: --name must be 1 to 200 characters")
    database = Database(settings.database_url, fast_path=settings.postgres_fast_path)
    try:
        if settings.sandbox_enabled:
            await upgrade(database)
        merchant = await MerchantService(database, Clock()).create(
            name, live=not settings.sandbox_enabled
        )
    finally:
        await database.dispose()
    return merchant.as_dict()


async def run_worker(settings: Settings) -> None:
    """Run the background jobs until SIGTERM or SIGINT; several may run at once."""
    from app.runtime import build_runtime

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runtime = build_runtime(settings)
    async with runtime.running(worker=True):
        logging.getLogger("cobro.worker").info("worker running")
        await stop.wait()


def serve(settings: Settings) -> int:
    import uvicorn

    base = settings.base_url
    if settings.sandbox_enabled:
        print(
            f"\n  Cobro ({settings.env.value}) on {base}\n"
            f"  GraphiQL      {base}/graphql\n"
            f"  secret key    {settings.dev_secret_key}\n"
            f"  publishable   {settings.dev_publishable_key}\n"
            f"  sandbox       {base}/sandbox/...\n"
            f"  database      {settings.database_url}\n",
            flush=True,
        )
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Compression costs 40-100 KiB per open WebSocket (stack-notes §3); payloads are
        # small. wsproto holds an idle socket in less memory than websockets does
        # (46 vs 53-60 KiB per subscriber, bench/RESULTS.md).
        ws_per_message_deflate=False,
        ws="wsproto",
        # uvloop serves a saturated process unfairly: with 50 connections, p99 latency
        # went from 30 ms (asyncio) to 280 ms (uvloop) at the same throughput
        # (bench/RESULTS.md). The standard loop keeps the tail short.
        loop="asyncio",
        # Nothing here reads the client's address; the middleware would sit in every
        # WebSocket's call stack for nothing.
        proxy_headers=False,
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
