"""Shared fixtures: settings on a temporary SQLite file, a runtime for service
tests, and a real uvicorn server for API tests over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from app.clock import Clock
from app.config import Settings
from app.db.engine import Database
from app.db.migrate import upgrade
from app.main import Runtime, build_runtime, create_app
from app.services.merchants import MerchantService, NewMerchant
from providers.registry import ADAPTERS
from tests.support.graphql import GraphQLClient
from tests.support.redis_server import RedisServer
from tests.support.server import ServerThread, free_port

DEV_SECRET = "sk_test_dev"
DEV_PUBLISHABLE = "pk_test_dev"


def make_settings(db_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "database_url": f"sqlite+aiosqlite:///{db_path}",
        "dev_secret_key": DEV_SECRET,
        "dev_publishable_key": DEV_PUBLISHABLE,
        "provider_timeout_seconds": 2.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def over_http(url: str) -> dict[str, object]:
    """Settings that make a test server reach its sandbox, and the sandbox reach its
    webhooks, over real loopback HTTP rather than in-process."""
    return {
        "public_url": url,
        "sandbox_webhook_url": url,
        "providers": {name: {"base_url": f"{url}/sandbox/{name}"} for name in ADAPTERS},
    }


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "cobro.db")


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """The services on a fresh, migrated database with the dev merchant seeded."""
    runtime = build_runtime(settings)
    await upgrade(runtime.services.db)
    await runtime.services.merchants.ensure_dev_merchant(DEV_SECRET, DEV_PUBLISHABLE)
    try:
        yield runtime
    finally:
        for close in runtime.closers:
            await close()


def start_server(workdir: Path, **overrides: object) -> ServerThread:
    """A real API server on loopback, reaching its own sandbox over HTTP."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(workdir / "cobro.db", **{**over_http(url), **overrides})
    thread = ServerThread(create_app(settings), port).start()
    thread.settings = settings
    return thread


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """One real API server for the API tests (each test makes its own intents)."""
    thread = start_server(tmp_path_factory.mktemp("server"))
    yield thread
    thread.stop()


@pytest.fixture(scope="session")
def other_merchant(server: ServerThread) -> NewMerchant:
    """A second merchant on the shared server, to prove neither sees the other."""
    return asyncio.run(create_merchant(server.settings, "Other merchant"))


async def create_merchant(settings: Settings, name: str) -> NewMerchant:
    database = Database(settings.database_url)
    try:
        return await MerchantService(database, Clock()).create(name, live=False)
    finally:
        await database.dispose()


@pytest.fixture
async def http(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def api(http: httpx.AsyncClient) -> GraphQLClient:
    """GraphQL over HTTP as the dev merchant's secret key."""
    return GraphQLClient(http, DEV_SECRET)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server for the whole run (tests that restart it restore it)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()
