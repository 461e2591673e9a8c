"""Processes of their own for the cluster tests (each test makes its own intents and
payouts, and puts back any sandbox fault it sets)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from providers.registry import ADAPTERS
from tests.conftest import Databases
from tests.support.process import ApiProcess, start_all
from tests.support.redis_server import RedisServer
from tests.support.server import free_port


@pytest.fixture(scope="session")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, databases: Databases, redis_server: RedisServer
) -> Iterator[tuple[ApiProcess, ApiProcess]]:
    """A serves checkouts and hosts the PSP sandbox; the sandbox's webhooks go to B.
    One pair per backend and worker, for test_two_processes.py and
    test_payouts_across_processes.py alike."""
    workdir = tmp_path_factory.mktemp("cluster")
    a_port, b_port = free_port(), free_port()
    common = {
        "COBRO_ENV": "test",
        "COBRO_DATABASE_URL": databases.new_url(workdir),
        "COBRO_REDIS_URL": redis_server.url,
        **{
            f"COBRO_PROVIDERS__{name.upper()}__BASE_URL": f"http://127.0.0.1:{a_port}/sandbox/{name}"
            for name in ADAPTERS
        },
    }
    a = ApiProcess(
        {**common, "COBRO_SANDBOX_WEBHOOK_URL": f"http://127.0.0.1:{b_port}"},
        workdir / "a.log",
        a_port,
    )
    b = ApiProcess(common, workdir / "b.log", b_port)
    start_all(a, b)
    yield a, b
    a.stop()
    b.stop()
