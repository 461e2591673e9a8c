"""The `cobro` command: serve, migrate, merchants create, audit verify|export,
export-schema."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from app import logs
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
    audit = commands.add_parser("audit", help="check or export the audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser(
        "verify", help="walk the audit chains; exit status 1 at a broken link"
    )
    verify.add_argument("--merchant", help="this merchant's chain only (default: every one)")
    export_audit = audit_commands.add_parser(
        "export", help="write a merchant's audit events as JSON lines"
    )
    export_audit.add_argument("--merchant", required=True)
    export_audit.add_argument(
        "--from",
        dest="since",
        required=True,
        type=_time_arg("from"),
        help="YYYY-MM-DD (UTC day, included) or an ISO 8601 time with offset",
    )
    export_audit.add_argument(
        "--to",
        dest="until",
        required=True,
        type=_time_arg("to"),
        help="YYYY-MM-DD (UTC day, included) or an ISO 8601 time with offset (excluded)",
    )
    export_audit.add_argument("--output", type=Path, help="write to this file instead of stdout")
    export = commands.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    export.add_argument("--output", type=Path, help="write to this file instead of stdout")
    args = parser.parse_args(argv)

    settings = Settings()
    logs.configure(settings.resolved_log_format, settings.log_level)
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
    if args.command == "audit":
        if args.audit_command == "verify":
            return asyncio.run(_audit_verify(settings, args.merchant))
        if args.since >= args.until:
            parser.error("--from must be before --to")
        return asyncio.run(
            _audit_export(settings, args.merchant, args.since, args.until, args.output)
        )
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

    database = Database(
        settings.database_url,
        fast_path=settings.postgres_fast_path,
        sqlite_prepared=settings.sqlite_prepared,
    )
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
    database = Database(
        settings.database_url,
        fast_path=settings.postgres_fast_path,
        sqlite_prepared=settings.sqlite_prepared,
    )
    try:
        if settings.sandbox_enabled:
            await upgrade(database)
        merchant = await MerchantService(database, Clock()).create(
            name, live=not settings.sandbox_enabled
        )
    finally:
        await database.dispose()
    return merchant.as_dict()


def _time_arg(name: str) -> Any:
    """--from/--to: a UTC day (--to's day is included: it ends at the next midnight)
    or an ISO 8601 time with its offset."""

    def parse(text: str) -> datetime:
        try:
            if len(text) == len("YYYY-MM-DD"):
                day = datetime.combine(date.fromisoformat(text), time(), UTC)
                return day + timedelta(days=1) if name == "to" else day
            value = datetime.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time"
            ) from None
        if value.tzinfo is None:
            raise argparse.ArgumentTypeError(
                f"{text!r} has no offset: write it in UTC with Z or +00:00, or give a date"
            )
        return value.astimezone(UTC)

    return parse


async def _audit_verify(settings: Settings, merchant_id: str | None) -> int:
    from app.db.engine import Database
    from app.domain.errors import NotFound
    from app.services.audit_trail import AuditTrail

    database = Database(settings.database_url)
    try:
        reports = await AuditTrail(database).verify(merchant_id)
    except NotFound as error:
        print(f"cobro: {error.message}", file=sys.stderr)
        return 2
    finally:
        await database.dispose()
    broken = [r for r in reports if r.broken is not None]
    for report in reports:
        print(report.describe(), file=sys.stderr if report.broken else sys.stdout)
    if broken:
        print(
            f"audit chain BROKEN for {len(broken)} of {len(reports)} merchant(s); "
            f"first: {broken[0].describe()}",
            file=sys.stderr,
        )
        return 1
    print(f"audit chains intact: {len(reports)} merchant(s)")
    return 0


async def _audit_export(
    settings: Settings, merchant_id: str, since: datetime, until: datetime, output: Path | None
) -> int:
    from app.db.engine import Database
    from app.domain.codec import json_bytes
    from app.domain.errors import NotFound
    from app.services.audit_trail import AuditTrail

    database = Database(settings.database_url)
    # Written beside the target and moved into place at the end: a failed export
    # leaves no half file (and an existing one as it was).
    partial = output.with_name(output.name + ".partial") if output else None
    count = 0
    try:
        with partial.open("wb") if partial else _stdout_bytes() as out:
            async for line in AuditTrail(database).export(merchant_id, since, until):
                out.write(json_bytes(line, sort_keys=True) + b"\n")
                count += 1
        if partial and output:
            partial.replace(output)
    except NotFound as error:
        print(f"cobro: {error.message}", file=sys.stderr)
        return 2
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)
        await database.dispose()
    print(f"exported {count} audit event(s) of {merchant_id}", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _stdout_bytes() -> Iterator[BinaryIO]:
    yield sys.stdout.buffer
    sys.stdout.buffer.flush()


async def run_worker(settings: Settings) -> None:
    """Run the background jobs until SIGTERM or SIGINT; several may run at once."""
    from app.runtime import build_runtime

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runtime = build_runtime(settings)
    async with runtime.running(worker=True):
        listener = None
        if settings.metrics_port is not None:
            from app.http.metrics import render, serve_metrics

            gauges = runtime.gauges
            listener = await serve_metrics(
                settings.host, settings.metrics_port, lambda: render(gauges)
            )
        logging.getLogger("cobro.worker").info(
            "worker running%s",
            f"; metrics on {settings.host}:{settings.metrics_port}" if listener else "",
        )
        try:
            await stop.wait()
        finally:
            if listener is not None:
                listener.close()
                await listener.wait_closed()


def serve(settings: Settings) -> int:
    import uvicorn

    base = settings.base_url
    if settings.sandbox_enabled and settings.resolved_log_format == "text":
        # For a person at a terminal (`make run`); JSON logs get no keys, ever.
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
        # Logging is app/logs.py's (configured above): uvicorn's loggers propagate to
        # its handler, and the access line is Observe's (app/http/observe.py), with
        # the request id, operation and duration.
        log_config=None,
        access_log=False,
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
        # uvicorn hands this to asyncio.wait_for, which takes a float; it annotates int.
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,  # type: ignore[arg-type]
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
