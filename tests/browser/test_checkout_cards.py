"""Cards on Cobro Checkout in a real browser (contract sections 7 and 9): the card
goes through every card PSP's tokenizer on the route, the confirmation carries a
token per PSP, meses sin intereses are offered when the amount qualifies, and a PSP
that is down is failed over from the hosted page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.async_api import Page, Request, expect

from tests.browser.conftest import Merchant, fill_card

# On the worker's session loop, with its one browser (tests/browser/conftest.py).
pytestmark = pytest.mark.asyncio(loop_scope="session")

PAID = re.compile("Pago recibido")
CARD_PSPS = {"stripe", "conekta"}


class Traffic:
    """What the page sent: its tokenizer calls and its confirmation."""

    def __init__(self, page: Page) -> None:
        self.tokenized: list[dict[str, Any]] = []
        self.confirmations: list[dict[str, Any]] = []
        page.on("request", self._seen)

    def _seen(self, request: Request) -> None:
        if request.method != "POST":
            return
        body: dict[str, Any] = request.post_data_json or {}
        if request.url.endswith("/sandbox/tokens"):
            self.tokenized.append(body)
        elif request.url.endswith("/graphql") and "confirmPaymentIntent" in body["query"]:
            self.confirmations.append(body["variables"]["input"])

    def card(self) -> dict[str, Any]:
        assert len(self.confirmations) == 1, self.confirmations
        card: dict[str, Any] = self.confirmations[0]["card"]
        return card


def intent(merchant: Merchant, intent_id: str) -> dict[str, Any]:
    data = merchant.graphql(
        "query($id: ID!) { paymentIntent(id: $id) { status provider installments "
        "events { type provider } } }",
        {"id": intent_id},
    )
    found: dict[str, Any] = data["paymentIntent"]
    return found


async def test_a_card_is_tokenized_at_every_card_psp(page: Page, merchant: Merchant) -> None:
    traffic = Traffic(page)
    intent_id, url = merchant.checkout_url("450.00")
    await page.goto(url)
    await fill_card(page)
    await page.get_by_role("button", name=re.compile("Pagar")).click()

    await expect(page.locator("#status")).to_have_text(PAID)
    assert {call["provider"] for call in traffic.tokenized} == CARD_PSPS
    assert all(call["number"] == "4242424242424242" for call in traffic.tokenized)
    card = traffic.card()
    assert "token" not in card and card["installments"] is None
    assert {token["provider"] for token in card["tokens"]} == CARD_PSPS
    assert all(token["token"].startswith("tok_") for token in card["tokens"])
    # The card number reached only the tokenizers, never Cobro's API.
    assert "4242424242424242" not in json.dumps(traffic.confirmations)
    assert intent(merchant, intent_id)["provider"] == "stripe"  # the first on the route


async def test_twelve_meses_sin_intereses(page: Page, merchant: Merchant) -> None:
    traffic = Traffic(page)
    intent_id, url = merchant.checkout_url("1500.00")
    await page.goto(url)
    await fill_card(page)
    plans = page.get_by_label("Meses sin intereses")
    await expect(plans).to_have_value("")  # one payment unless the customer picks a plan
    await expect(plans.locator("option")).to_have_text(
        [
            "Pago en una sola exhibición",
            "3 meses sin intereses",
            "6 meses sin intereses",
            "9 meses sin intereses",
            "12 meses sin intereses",
        ]
    )
    await plans.select_option(label="12 meses sin intereses")
    await page.get_by_label("Nombre en la tarjeta").focus()
    await page.keyboard.press("Tab")  # the plan comes right after the card's fields
    await expect(plans).to_be_focused()
    assert await page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    await page.get_by_role("button", name=re.compile("Pagar")).click()

    await expect(page.locator("#status")).to_contain_text(PAID)
    await expect(page.locator("#plan")).to_have_text("12 meses sin intereses")
    assert traffic.card()["installments"] == 12
    paid = intent(merchant, intent_id)
    assert paid["status"] == "SUCCEEDED" and paid["installments"] == 12


async def test_plans_in_english(page: Page, merchant: Merchant) -> None:
    _, url = merchant.checkout_url("700.00")
    base, secret = url.split("#", 1)
    await page.goto(f"{base}?lang=en#{secret}")
    await page.get_by_label("Credit or debit card").check()

    await expect(page.get_by_label("Interest-free installments").locator("option")).to_have_text(
        [
            "Pay in full at once",
            "3 interest-free monthly payments",
            "6 interest-free monthly payments",
        ]
    )


async def test_an_amount_below_the_minimum_offers_no_plan(page: Page, merchant: Merchant) -> None:
    traffic = Traffic(page)
    intent_id, url = merchant.checkout_url("299.99")
    await page.goto(url)
    await fill_card(page)

    await expect(page.get_by_label("Número de tarjeta")).to_be_visible()
    await expect(page.locator("select")).to_have_count(0)
    await page.get_by_role("button", name=re.compile("Pagar")).click()
    await expect(page.locator("#status")).to_have_text(PAID)
    await expect(page.locator("#plan")).to_have_count(0)
    assert traffic.card()["installments"] is None
    assert intent(merchant, intent_id)["installments"] is None


@pytest.fixture
def stripe_down(merchant: Merchant) -> Iterator[None]:
    """Stripe answers 503 to every call until the test ends (in every process)."""
    merchant.sandbox("/providers/stripe/faults", {"mode": "down"})
    try:
        yield
    finally:
        merchant.sandbox("/providers/stripe/faults", {"mode": "ok"})


async def test_a_card_fails_over_from_the_hosted_page(
    page: Page, merchant: Merchant, stripe_down: None
) -> None:
    traffic = Traffic(page)
    intent_id, url = merchant.checkout_url("640.00")
    await page.goto(url)
    await fill_card(page)
    await page.get_by_role("button", name=re.compile("Pagar")).click()

    await expect(page.locator("#status")).to_have_text(PAID)
    assert {token["provider"] for token in traffic.card()["tokens"]} == CARD_PSPS
    paid = intent(merchant, intent_id)
    assert paid["status"] == "SUCCEEDED" and paid["provider"] == "conekta"
    tried = [
        (e["type"], e["provider"]) for e in paid["events"] if e["type"].startswith("provider.")
    ]
    assert tried == [
        ("provider.request", "stripe"),
        ("provider.error", "stripe"),
        ("provider.request", "conekta"),
        ("provider.response", "conekta"),
    ]
