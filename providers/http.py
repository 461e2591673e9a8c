"""Shared HTTP plumbing for adapters: timeouts, idempotency keys, error mapping.

Every adapter talks to its PSP through `PspHttp`, so a timeout, a refused
connection, a 5xx or a 429 becomes the same retryable `ProviderError` everywhere.
The total time of a call is bounded with asyncio as well as httpx, because an
in-process transport (the embedded sandbox) does not honour httpx's socket timeouts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from providers.base import ProviderConfig, ProviderError

# 408, 409 (Stripe's "concurrent request with this key"), 425 and 429 are worth
# retrying; so is every 5xx.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


class PspHttp:
    def __init__(
        self,
        provider: str,
        config: ProviderConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.provider = provider
        self.timeout = config.timeout_seconds
        self.client = httpx.AsyncClient(
            base_url=config.base_url,
            transport=transport,
            headers=dict(headers or {}),
            timeout=httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds),
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request; 2xx and 4xx come back, anything unusable raises ProviderError."""
        all_headers = dict(headers or {})
        if idempotency_key:
            all_headers["Idempotency-Key"] = idempotency_key
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.client.request(method, path, headers=all_headers, **kwargs)
        except (TimeoutError, httpx.TimeoutException):
            raise ProviderError(
                self.provider, f"no answer within {self.timeout:g} s", retryable=True
            ) from None
        except httpx.HTTPError as exc:
            raise ProviderError(
                self.provider, f"connection failed: {type(exc).__name__}", retryable=True
            ) from exc
        if response.status_code >= 500 or response.status_code in RETRYABLE_STATUS:
            raise ProviderError(
                self.provider, f"answered HTTP {response.status_code}", retryable=True
            )
        return response

    async def aclose(self) -> None:
        await self.client.aclose()


def json_body(provider: str, response: httpx.Response) -> dict[str, Any]:
    """The JSON object a PSP answered, or a non-retryable ProviderError if it is not one."""
    try:
        body = response.json()
    except ValueError:
        raise ProviderError(
            provider,
            f"answered HTTP {response.status_code} with a body that is not JSON",
            retryable=True,
        ) from None
    if not isinstance(body, dict):
        raise ProviderError(provider, "answered JSON that is not an object", retryable=True)
    return body
