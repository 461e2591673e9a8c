"""Shared fixtures: settings on a fresh database, a runtime for service tests, and a
real uvicorn server for API tests over HTTP.

Every test that asks for a database (`database_url`, `settings`, `runtime`,
`server`, ...) runs twice: on a SQLite file and on a throw-away PostgreSQL cluster
(tests/support/postgres.py). `COBRO_TEST_DATABASES=sqlite` (or `postgresql`) runs
one of them only, for a quick look while working."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
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
from tests.support.postgres import PostgresServer
from tests.support.redis_server import RedisServer
from tests.support.server import ServerThread, free_port

DEV_SECRET = "sk_test_dev"
DEV_PUBLISHABLE = "pk_test_dev"


BACKENDS = [
    name.strip()
    for name in os.environ.get("COBRO_TEST_DATABASES", "sqlite,postgresql").split(",")
    if name.strip()
]


if os.environ.get("COBRO_TEST_BOTH_WAYS") == "1":
    # PostgreSQL's kept statements run through SQLAlchemy too, compared (both_ways.py).
    from tests.support import both_ways

    both_ways.install()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked `slow` first, the rest in the order they had (sorting is stable,
    and pytest's own hook has already grouped them by backend): xdist hands the long
    ones out while every worker is busy, so no worker ends the run on one alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "database_url": database_url,
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


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the run, with a migrated template database."""
    server = PostgresServer().start()
    try:
        server.prepare_template()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A cluster of this test's own, that it may stop, crash and restart."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.destroy()


class Databases:
    """Fresh databases of one backend: a SQLite file, or a PostgreSQL database.

    A migrated one is a copy of a template migrated once (as PostgreSQL's are clones
    of one), so each test does not run every migration again."""

    _files = itertools.count(1)

    def __init__(
        self, backend: str, postgres: PostgresServer | None, workdir: Path | None = None
    ) -> None:
        self.backend = backend
        self.postgres = postgres
        self._made: list[str] = []
        self._sqlite_template: Path | None = None
        if postgres is None and workdir is not None:
            self._sqlite_template = workdir / "template.db"
            asyncio.run(_migrate(f"sqlite+aiosqlite:///{self._sqlite_template}"))
            leftovers = [p.name for p in workdir.iterdir() if p != self._sqlite_template]
            assert leftovers == [], f"the template is not in one file: {leftovers}"

    @property
    def is_postgres(self) -> bool:
        return self.postgres is not None

    def new_url(self, workdir: Path, *, migrated: bool = True) -> str:
        """A new database, migrated (a copy of the template) or empty."""
        if self.postgres is None:
            path = workdir / f"cobro-{next(self._files)}.db"
            if migrated and self._sqlite_template is not None:
                shutil.copyfile(self._sqlite_template, path)
            return f"sqlite+aiosqlite:///{path}"
        name = self.postgres.new_database(migrated=migrated)
        self._made.append(name)
        return self.postgres.url(name)

    def drop(self, url: str) -> None:
        """Drop a database made here, now (a SQLite file goes with its temp dir)."""
        name = url.rsplit("/", 1)[1]
        if self.postgres is not None and name in self._made:
            self._made.remove(name)
            self.postgres.drop_database(name)

    def drop_all(self) -> None:
        while self._made and self.postgres is not None:
            self.postgres.drop_database(self._made.pop())


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _migrate(url: str) -> None:
    database = Database(url)
    try:
        await upgrade(database)
    finally:
        await database.dispose()


@pytest.fixture(scope="session")
def databases(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Databases]:
    if backend == "postgresql":
        made = Databases(backend, request.getfixturevalue("postgres"))
    else:
        made = Databases(backend, None, tmp_path_factory.mktemp("sqlite-template"))
    yield made
    made.drop_all()


@pytest.fixture
def database_url(databases: Databases, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for this test alone, dropped afterwards."""
    url = databases.new_url(tmp_path)
    yield url
    databases.drop(url)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


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


def start_server(database_url: str, **overrides: object) -> ServerThread:
    """A real API server on loopback, reaching its own sandbox over HTTP."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(database_url, **{**over_http(url), **overrides})
    thread = ServerThread(create_app(settings), port).start()
    thread.settings = settings
    return thread


@pytest.fixture(scope="session")
def server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """One real API server per backend for the API tests (each test makes its own
    intents)."""
    thread = start_server(databases.new_url(tmp_path_factory.mktemp("server")))
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
