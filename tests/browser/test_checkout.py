"""Cobro Checkout in a real browser against a real server and its sandbox PSPs
(contract section 9): a phone-sized viewport throughout, pages that turn by
themselves when the sandbox plays the customer."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Page, WebSocketRoute, expect

from tests.browser.conftest import Merchant, fill_card
from tests.conftest import start_server

# On the worker's session loop, with its one browser (tests/browser/conftest.py).
pytestmark = pytest.mark.asyncio(loop_scope="session")

PAID = re.compile("Pago recibido")


async def test_pay_by_card_with_3d_secure(page: Page, merchant: Merchant) -> None:
    _, url = merchant.checkout_url("450.00", description="Audífonos")
    await page.goto(url)
    await expect(page.get_by_text("Pago a Dev merchant")).to_be_visible()
    await expect(page.locator("#amount")).to_have_text("$450.00 MXN")

    await fill_card(page, "4000 0000 0000 3220")
    await page.get_by_role("button", name=re.compile("Pagar")).click()

    challenge = page.frame_locator("iframe[title='Autenticación 3-D Secure']")
    await challenge.get_by_role("button", name="Complete authentication").click()

    await expect(page.locator("#status")).to_have_text(PAID)
    await expect(page.locator("#status")).to_have_attribute("data-status", "SUCCEEDED")


async def test_a_declined_card_says_why(page: Page, merchant: Merchant) -> None:
    _, url = merchant.checkout_url("120.00")
    await page.goto(url)
    await fill_card(page, "4000000000000002")
    await page.get_by_role("button", name=re.compile("Pagar")).click()

    await expect(page.locator("#status")).to_have_attribute("data-status", "FAILED")
    await expect(page.locator("#status")).to_contain_text("declined")


async def test_a_mistyped_card_number_changes_nothing(page: Page, merchant: Merchant) -> None:
    intent_id, url = merchant.checkout_url("120.00")
    await page.goto(url)
    await fill_card(page, "4242 4242 4242 4241")
    await page.get_by_role("button", name=re.compile("Pagar")).click()

    await expect(page.locator("#form-error")).to_have_text("Revisa el número de tarjeta.")
    status = merchant.graphql(
        "query($id: ID!) { paymentIntent(id: $id) { status } }", {"id": intent_id}
    )
    assert status["paymentIntent"]["status"] == "REQUIRES_PAYMENT_METHOD"


async def test_oxxo_voucher_turns_paid_when_the_sandbox_pays_it(
    page: Page, merchant: Merchant
) -> None:
    _, url = merchant.checkout_url("300.00")
    await page.goto(url)
    await page.get_by_label("Efectivo en OXXO").check()
    await page.get_by_role("button", name="Generar ficha OXXO").click()
    await expect(page.get_by_role("heading", name="Ficha de pago OXXO")).to_be_visible()
    await page.get_by_role("link", name="Abrir ficha para imprimir").click()

    # Cobro's own printable voucher: everything a voucher must show.
    await expect(page).to_have_url(re.compile(r"/checkout/pi_\w+/voucher#pi_\w+_secret_\w+$"))
    voucher = page.locator(".voucher")
    await expect(voucher).to_contain_text("$300.00 MXN")
    await expect(voucher).to_contain_text("OXXO cobra una comisión")
    await expect(voucher).to_contain_text("teclee la referencia")
    await expect(voucher).to_contain_text(re.compile(r"GMT-6|CST"))
    await expect(page.get_by_alt_text(re.compile("Código de barras"))).to_be_visible()
    await expect(page.get_by_text("Pago a Dev merchant")).to_be_visible()
    reference = await page.locator(".voucher .mono").first.inner_text()
    await page.emulate_media(media="print")
    await expect(page.get_by_role("button", name="Imprimir")).to_be_hidden()
    await page.emulate_media(media="screen")

    merchant.sandbox(f"/oxxo/{reference}/pay")

    await expect(page.locator("#status")).to_have_text(PAID)


async def test_spei_instructions_turn_paid_when_the_transfer_arrives(
    page: Page, merchant: Merchant
) -> None:
    _, url = merchant.checkout_url("1234.50")
    await page.goto(url + "")
    await page.get_by_label("Transferencia SPEI").check()
    await page.get_by_role("button", name="Ver datos para transferir").click()
    spei = page.locator(".spei")
    await expect(spei).to_contain_text("CLABE")
    await expect(page.get_by_role("button", name="Copiar: CLABE")).to_be_visible()
    clabe = await spei.locator("dd .mono").nth(1).inner_text()
    assert re.fullmatch(r"\d{18}", clabe), clabe

    merchant.sandbox("/spei/deposits", {"clabe": clabe, "amount": "1234.50"})

    await expect(page.locator("#status")).to_have_text(PAID)


async def test_crypto_address_with_a_qr_code(page: Page, merchant: Merchant) -> None:
    _, url = merchant.checkout_url("500.00")
    await page.goto(url + "")
    await page.get_by_label("Criptomonedas (USDC)").check()
    await page.get_by_role("button", name="Ver dirección de pago").click()

    await expect(page.get_by_alt_text("Código QR de la dirección")).to_be_visible()
    await expect(page.locator(".crypto")).to_contain_text("USDC")


async def test_english_on_request(page: Page, merchant: Merchant) -> None:
    _, url = merchant.checkout_url("99.00")
    secret = url.split("#", 1)[1]
    await page.goto(url.split("#")[0] + "?lang=en#" + secret)

    await expect(page.get_by_text("Pay to Dev merchant")).to_be_visible()
    await expect(page.get_by_role("group", name="Choose how to pay")).to_be_visible()
    await expect(page.locator("html")).to_have_attribute("lang", "en-MX")
    await page.get_by_role("link", name="Español").click()  # the secret comes along
    await expect(page.get_by_text("Pago a Dev merchant")).to_be_visible()


async def test_missing_or_wrong_secret_shows_nothing_of_the_intent(
    page: Page, merchant: Merchant
) -> None:
    intent_id, url = merchant.checkout_url("321.00", description="Secreto")
    base = url.split("#")[0]
    wrong = f"{intent_id}_secret_{'A' * 24}"
    for address in (base, f"{base}#", f"{base}#nonsense", f"{base}#{wrong}"):
        await page.goto("about:blank")
        await page.goto(address)

        await expect(page.get_by_role("heading", name="Este enlace no es válido")).to_be_visible()
        text = await page.locator("main").inner_text()
        assert "321" not in text and "Secreto" not in text and "Dev merchant" not in text


async def test_a_phone_sized_page_needs_no_sideways_scrolling(
    page: Page, merchant: Merchant
) -> None:
    _, url = merchant.checkout_url("999999.99", description="Un pedido con un nombre largo")
    await page.goto(url)
    await page.get_by_label("Transferencia SPEI").check()
    await page.get_by_role("button", name="Ver datos para transferir").click()
    await expect(page.locator(".spei")).to_be_visible()

    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    await page.reload()
    await expect(page.locator(".spei")).to_be_visible()
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.className")
    assert "skip" in focused  # the first stop skips to the content


async def test_a_payment_link_opens_a_checkout_per_visit(page: Page, merchant: Merchant) -> None:
    data = merchant.graphql(
        "mutation($input: CreatePaymentLinkInput!) { createPaymentLink(input: $input) "
        "{ paymentLink { url } errors { code } } }",
        {"input": {"amount": "80.00", "description": "Entrada", "allowedMethods": ["OXXO"]}},
    )
    link = data["createPaymentLink"]["paymentLink"]["url"]

    await page.goto(link)

    await expect(page).to_have_url(re.compile(r"/checkout/pi_\w+#pi_\w+_secret_\w+$"))
    await expect(page.locator("#amount")).to_have_text("$80.00 MXN")
    await expect(page.get_by_label("Efectivo en OXXO")).to_be_visible()
    await expect(page.get_by_label("Tarjeta de crédito o débito")).to_have_count(0)


async def test_an_expired_link_shows_a_clear_page(page: Page, database_url: str) -> None:
    own = start_server(database_url)
    try:
        merchant = Merchant(own.url)
        expires = datetime.now(UTC) + timedelta(hours=1)
        data = merchant.graphql(
            "mutation($input: CreatePaymentLinkInput!) { createPaymentLink(input: $input) "
            "{ paymentLink { url } errors { code } } }",
            {"input": {"amount": "80.00", "expiresAt": expires.isoformat()}},
        )
        link = data["createPaymentLink"]["paymentLink"]["url"]
        merchant.sandbox("/clock/advance", {"seconds": 3601})

        answer = await page.goto(link)

        assert answer is not None and answer.status == 410
        await expect(page.get_by_role("heading")).to_have_text(
            "Este enlace de pago ya no está disponible"
        )
        merchant.http.close()
    finally:
        own.stop()


async def test_a_dropped_connection_reconnects_and_misses_nothing(
    page: Page, merchant: Merchant
) -> None:
    sockets: list[WebSocketRoute] = []

    def through(route: WebSocketRoute) -> None:
        sockets.append(route)
        route.connect_to_server()

    await page.route_web_socket(re.compile(r"/graphql$"), through)
    _, url = merchant.checkout_url("210.00")
    await page.goto(url)
    await page.get_by_label("Efectivo en OXXO").check()
    await page.get_by_role("button", name="Generar ficha OXXO").click()
    reference = await page.locator(".voucher .mono").first.inner_text()
    await page.wait_for_function("document.getElementById('status') !== null")
    assert len(sockets) == 1

    await sockets[0].close(code=1012, reason="service restart")  # the page's side drops
    merchant.sandbox(f"/oxxo/{reference}/pay")  # paid while the page is away

    await expect(page.locator("#status")).to_have_text(PAID)
    assert len(sockets) >= 2  # it came back on a new connection, after the version it had


async def test_without_websockets_the_page_follows_over_sse(page: Page, merchant: Merchant) -> None:
    """A network that refuses WebSockets (every one closed at once): after two drops
    the page follows the intent over GraphQL over SSE and still turns paid."""
    refused: list[WebSocketRoute] = []
    streams: list[str] = []

    async def refuse(route: WebSocketRoute) -> None:
        refused.append(route)
        await route.close(code=4000, reason="no websockets here")

    await page.route_web_socket(re.compile(r"/graphql$"), refuse)
    page.on(
        "request",
        lambda r: (
            streams.append(r.url)
            if r.headers.get("accept", "").startswith("text/event-stream")
            else None
        ),
    )
    _, url = merchant.checkout_url("220.00")
    await page.goto(url)
    await page.get_by_label("Efectivo en OXXO").check()
    await page.get_by_role("button", name="Generar ficha OXXO").click()
    reference = await page.locator(".voucher .mono").first.inner_text()
    for _ in range(60):  # two refused WebSockets and their backoff: a few seconds
        if streams:
            break
        await page.wait_for_timeout(250)
    assert streams, "the page never fell back to SSE"

    merchant.sandbox(f"/oxxo/{reference}/pay")

    await expect(page.locator("#status")).to_have_text(PAID)
    assert len(refused) >= 2
