"""A real browser for the hosted pages: Debian's chromium (`make system-deps`) driven
by Playwright, never a browser Playwright downloads. A failing test leaves a
screenshot of its page in var/test-screenshots/."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from tests.conftest import DEV_SECRET

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "test-screenshots"
PHONE: ViewportSize = {"width": 360, "height": 740}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def browser() -> Iterator[Browser]:
    """One browser per test: Playwright's sync API keeps an event loop running in this
    thread while it is open, and the async tests that share a worker need it gone."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make system-deps` installs Debian's chromium")
    with sync_playwright() as playwright:
        # --no-sandbox: the tests run as root in CI, where Chromium's sandbox refuses.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A phone-sized page; its screenshot is kept when the test fails."""
    context = browser.new_context(viewport=PHONE, locale="es-MX")
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        opened.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    context.close()
    assert errors == [], f"the page's script failed: {errors}"


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
