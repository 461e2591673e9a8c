"""PspHttp, the HTTP client every adapter shares."""

from __future__ import annotations

import httpx
import pytest

from providers.base import ProviderConfig
from providers.http import PspHttp


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
