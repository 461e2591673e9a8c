"""Shared HTTP plumbing for adapters: timeouts, idempotency keys, error mapping.

Every adapter talks to its PSP through `PspHttp`, so a timeout, a refused
connection, a 5xx or a 429 becomes the same retryable `ProviderError` everywhere.
The total time of a call is bounded with asyncio as well as httpx, because an
in-process transport (the embedded sandbox) does not honour httpx's socket timeouts.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from functools import cache
from http.cookiejar import CookieJar
from typing import Any

import httpx

from providers.base import ProviderConfig, ProviderError, WireRequest

# 408, 409 (Stripe's "concurrent request with this key"), 425 and 429 are worth
# retrying; so is every 5xx.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
# Answers that say the request was turned away before anything was done: 503 (the
# PSP sheds load or is down) and 429 (rate limited). Any other 5xx may come after
# the PSP acted, so its outcome is unknown.
NOT_CARRIED_OUT = frozenset({429, 503})
# Full URLs kept parsed, by path: httpx parses a relative path and merges it with the
# base URL on every request (2.6% of a payment's CPU). Paths with ids in them come
# and go, so the cache starts over when it fills.
URL_CACHE_SIZE = 256


@cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context of every outgoing client in the process (PSPs, merchant
    webhooks), as httpx makes its default (SSL_CERT_FILE, else certifi's bundle):
    each client made its own, loading the whole CA bundle again (~27 ms apiece)."""
    return httpx.create_ssl_context()


class _NoCookies(CookieJar):
    """PSP APIs authenticate every call with its key and keep no session: a cookie
    one sets is neither kept nor sent back (keeping them was 1-2% of a payment's CPU)."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: Any) -> None:
        return None


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
            cookies=_NoCookies(),
            timeout=httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds),
            verify=tls_context(),
        )
        self._base = str(self.client.base_url).rstrip("/") + "/"
        self._urls: dict[str, httpx.URL] = {}
        # A transport given here (the sandbox's, in-process; a test's) takes requests
        # straight from `_exchange`; without one the client routes them (its proxies).
        self._direct = transport

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
        return await self._send(method, path, all_headers, kwargs)

    async def send(self, wire: WireRequest, **kwargs: Any) -> httpx.Response:
        """Send a stored request byte for byte (its headers over the client's defaults;
        `kwargs` may add per-call credentials such as an httpx `auth`)."""
        return await self._send(
            wire.method, wire.path, dict(wire.headers), {"content": wire.body, **kwargs}
        )

    async def _send(
        self, method: str, path: str, headers: dict[str, str], kwargs: dict[str, Any]
    ) -> httpx.Response:
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._exchange(method, self._url(path), headers, kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # Never reached the PSP: nothing can have happened there.
            raise ProviderError(
                self.provider, f"could not connect: {type(exc).__name__}", retryable=True
            ) from exc
        except (TimeoutError, httpx.TimeoutException):
            raise ProviderError(
                self.provider,
                f"no answer within {self.timeout:g} s",
                retryable=True,
                outcome_unknown=True,
            ) from None
        except httpx.HTTPError as exc:
            raise ProviderError(
                self.provider,
                f"connection failed: {type(exc).__name__}",
                retryable=True,
                outcome_unknown=True,
            ) from exc
        status = response.status_code
        if status >= 500 or status in RETRYABLE_STATUS:
            raise ProviderError(
                self.provider,
                f"answered HTTP {status}",
                retryable=True,
                outcome_unknown=status not in NOT_CARRIED_OUT,
            )
        return response

    async def _exchange(
        self, method: str, url: httpx.URL | str, headers: dict[str, str], kwargs: dict[str, Any]
    ) -> httpx.Response:
        """One request and its whole answer. To a transport of our own the request goes
        as the client would send it (built by the client: base URL, default headers,
        timeouts) but past the client's sending, whose cookie handling alone built two
        urllib requests a call (2% of a sandbox payment's CPU): PSPs set no cookies
        (`_NoCookies`), redirects are not followed anyway, and a call that brings an
        auth flow, or credentials in its URL, takes the client's whole way."""
        direct = self._direct
        if direct is None or "auth" in kwargs:
            return await self.client.request(method, url, headers=headers, **kwargs)
        request = self.client.build_request(method, url, headers=headers, **kwargs)
        if request.url.userinfo:
            return await self.client.send(request)
        response = await direct.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    def _url(self, path: str) -> httpx.URL | str:
        """`path` under the base URL, as httpx itself would join them."""
        if "://" in path or path.startswith("//"):
            return path  # not a path under the base: httpx decides
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) >= URL_CACHE_SIZE:
                self._urls.clear()
            url = self._urls[path] = httpx.URL(self._base + path.lstrip("/"))
        return url

    async def aclose(self) -> None:
        await self.client.aclose()


def json_body(provider: str, response: httpx.Response) -> dict[str, Any]:
    """The JSON object a PSP answered, or a retryable ProviderError if it is not one.

    A success answered with something else may still mean the PSP acted (a proxy
    mangled the answer to a charge it made): its outcome is unknown, so the attempt
    stays with this PSP until it says what it did (tests/providers/test_contract.py)."""
    try:
        body = response.json()
    except ValueError:
        raise ProviderError(
            provider,
            f"answered HTTP {response.status_code} with a body that is not JSON",
            retryable=True,
            outcome_unknown=response.is_success,
        ) from None
    if not isinstance(body, dict):
        raise ProviderError(
            provider,
            "answered JSON that is not an object",
            retryable=True,
            outcome_unknown=response.is_success,
        )
    return body
