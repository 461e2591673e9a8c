"""A real browser for the hosted pages: Debian's chromium (`make system-deps`) driven
by Playwright, never a browser Playwright downloads. A failing test leaves a
screenshot of its page in var/test-screenshots/.

One browser per pytest worker, driven through Playwright's async API on the
worker's session event loop: the tests here run on that loop
(`pytest.mark.asyncio(loop_scope="session")` in each module), and the other async
tests of the worker keep their own loops. Playwright's sync API could not be kept
open across tests: it holds an event loop running in the thread, which the async
tests sharing the worker need gone, so each test paid for a new driver and a new
Chromium (about 1 s of its setup)."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, ViewportSize, async_playwright

from tests.conftest import DEV_SECRET

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "test-screenshots"
PHONE: ViewportSize = {"width": 360, "height": 740}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """The worker's browser, launched when its first browser test needs it."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make system-deps` installs Debian's chromium")
    async with async_playwright() as playwright:
        # --no-sandbox: the tests run as root in CI, where Chromium's sandbox refuses.
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A phone-sized page in a context of its own (no cookies, storage or routes
    shared with another test); its screenshot is kept when the test fails."""
    context = await browser.new_context(viewport=PHONE, locale="es-MX")
    opened = await context.new_page()
    opened.set_default_timeout(15_000)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        await opened.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    await context.close()
    assert errors == [], f"the page's script failed: {errors}"


async def fill_card(page: Page, number: str = "4242 4242 4242 4242") -> None:
    """Choose the card and type one in (a sandbox card: contract section 5)."""
    await page.get_by_label("Tarjeta de crédito o débito").check()
    await page.get_by_label("Número de tarjeta").fill(number)
    await page.get_by_label("Vencimiento (MM/AA)").fill("12/30")
    await page.get_by_label("Código de seguridad (CVC)").fill("123")


class Merchant:
    """The dev merchant's secret key, over real HTTP, for what a test sets up."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        answer = self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {DEV_SECRET}"},
        )
        body: dict[str, Any] = answer.json()
        assert "errors" not in body, body
        return body["data"]

    def checkout_url(self, amount: str, **extra: Any) -> tuple[str, str]:
        """(intent id, checkoutUrl) of a new intent."""
        data = self.graphql(
            "mutation($input: CreatePaymentIntentInput!) { createPaymentIntent(input: $input) "
            "{ paymentIntent { id checkoutUrl } errors { code message } } }",
            {"input": {"amount": amount, **extra}},
        )
        intent = data["createPaymentIntent"]["paymentIntent"]
        return intent["id"], intent["checkoutUrl"]

    def sandbox(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = self.http.post(f"/sandbox{path}", json=body or {})
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result


@pytest.fixture
def merchant(server: Any) -> Iterator[Merchant]:
    made = Merchant(server.url)
    yield made
    made.http.close()
