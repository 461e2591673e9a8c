"""PspHttp, the HTTP client every adapter shares."""

from __future__ import annotations

import httpx

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
