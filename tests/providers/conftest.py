from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from providers.base import ProviderConfig
from tests.support.server import ServerThread


@pytest.fixture
def sandbox_url(server: ServerThread) -> str:
    return f"{server.url}/sandbox"


@pytest.fixture
def provider_config(sandbox_url: str, server: ServerThread) -> callable:  # type: ignore[valid-type]
    def build(name: str, timeout: float = 2.0) -> ProviderConfig:
        return ProviderConfig(
            base_url=f"{sandbox_url}/{name}",
            api_key="sandbox",
            api_secret="sandbox",
            webhook_secrets=("sandbox",),
            timeout_seconds=timeout,
            connect_timeout_seconds=1.0,
        )

    return build


@pytest.fixture
async def sandbox(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as client:
        yield client


@pytest.fixture
def faults(server: ServerThread) -> Iterator[list[str]]:
    """Names of providers a test put in a fault mode; all reset to ok afterwards."""
    touched: list[str] = []
    yield touched
    for name in touched:
        httpx.post(f"{server.url}/sandbox/providers/{name}/faults", json={"mode": "ok"})
