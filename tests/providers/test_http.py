"""PspHttp, the HTTP client every adapter shares."""

from __future__ import annotations

import ssl
from collections.abc import Generator

import httpx
import pytest

from providers.base import ProviderConfig
from providers.http import PspHttp, tls_context


async def test_a_cookie_a_psp_sets_is_never_sent_back() -> None:
    """PSP APIs keep no session; a cookie must not ride along on later calls (which
    may be for another merchant)."""
    seen: list[str | None] = []

    def psp(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, json={"ok": True}, headers={"Set-Cookie": "session=abc; Path=/"})

    http = PspHttp(
        "stripe",
        ProviderConfig(base_url="https://psp.example", api_key="k"),
        transport=httpx.MockTransport(psp),
    )
    for _ in range(2):
        response = await http.request("POST", "/v1/payment_intents")
        assert response.headers["set-cookie"].startswith("session=abc")
    await http.aclose()
    assert seen == [None, None]
    assert not http.client.cookies


@pytest.mark.parametrize(
    "base",
    ["https://api.stripe.com", "https://api.stripe.com/", "http://sandbox.internal/sandbox/stp"],
)
@pytest.mark.parametrize(
    "path",
    ["/v1/payment_intents", "v1/refunds/re_1", "/consulta?t=a b", "", "https://other.example/x"],
)
def test_paths_join_the_base_url_as_httpx_joins_them(base: str, path: str) -> None:
    http = PspHttp("stripe", ProviderConfig(base_url=base, api_key="k"))
    url = http._url(path)
    assert http.client.build_request("GET", url).url == http.client.build_request("GET", path).url


class _Signed(httpx.Auth):
    """An auth flow, as Bitso's adapter brings one: it must still run."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = "Signed by the flow"
        yield request


async def test_a_call_over_its_own_transport_is_sent_as_the_client_would_send_it() -> None:
    """Through a transport given to it (the sandbox's), a call skips the client's
    sending but not what the client puts in a request: its base URL, its default
    headers, the call's own; the answer comes back read, its request attached. A call
    with an auth flow, or credentials in its URL, goes the client's whole way."""
    seen: list[httpx.Request] = []

    def psp(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": "pi_1"})

    http = PspHttp(
        "stripe",
        ProviderConfig(base_url="https://psp.example/api", api_key="k"),
        transport=httpx.MockTransport(psp),
        headers={"Authorization": "Bearer default"},
    )
    plain = await http.request("POST", "/v1/things", idempotency_key="key-1", content=b"a=1")
    flowed = await http.request("GET", "/v1/things/1", auth=_Signed())
    userinfo = await http.request("GET", "https://user:secret@psp.example/api/v1/me")
    await http.aclose()
    assert (plain.status_code, plain.json()) == (201, {"id": "pi_1"})
    assert plain.request is seen[0]
    first = seen[0]
    assert str(first.url) == "https://psp.example/api/v1/things"
    assert (first.headers["authorization"], first.headers["idempotency-key"]) == (
        "Bearer default",
        "key-1",
    )
    assert first.content == b"a=1"
    assert flowed.status_code == 201 and seen[1].headers["authorization"] == "Signed by the flow"
    assert userinfo.status_code == 201 and seen[2].headers["authorization"].startswith("Basic ")


def test_the_one_tls_context_verifies_as_httpx_default_would() -> None:
    shared = tls_context()
    assert shared is tls_context()
    assert (shared.verify_mode, shared.check_hostname) == (ssl.CERT_REQUIRED, True)
    # The same certificate authorities as httpx's own default context.
    assert shared.cert_store_stats() == httpx.create_ssl_context().cert_store_stats()
    assert shared.cert_store_stats()["x509_ca"] > 0
