"""The hosted pages over real HTTP (contract section 9): their frames hold nothing of
an intent, their addresses come from GraphQL, and only an intent's client secret
opens what the page's script reads (the merchant's name, the methods it allows)."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from tests.conftest import DEV_PUBLISHABLE
from tests.support.graphql import GraphQLClient, confirm, create_intent

URLS = """
query($id: ID!) { paymentIntent(id: $id) { id checkoutUrl nextAction {
  __typename
  ... on OxxoVoucher { hostedVoucherUrl }
  ... on SpeiInstructions { hostedInstructionsUrl }
  ... on CryptoInstructions { hostedInstructionsUrl qrSvg address }
} } }
"""
METHODS = "query($amount: Decimal!) { paymentMethods(amount: $amount) { type available } }"


async def test_checkout_url_is_the_secret_keys_alone(api: GraphQLClient, server) -> None:
    intent = await create_intent(api, "250.00")
    secret = intent["clientSecret"]

    as_merchant = (await api.data(URLS, {"id": intent["id"]}))["paymentIntent"]
    as_customer = (await api.as_key(secret).data(URLS, {"id": intent["id"]}))["paymentIntent"]

    assert as_merchant["checkoutUrl"] == f"{server.url}/checkout/{intent['id']}#{secret}"
    assert as_customer["checkoutUrl"] is None


async def test_hosted_voucher_url_is_cobros_own_page(api: GraphQLClient, server) -> None:
    intent = await create_intent(api, "300.00")
    await confirm(api, intent["id"], "OXXO")

    read = await api.as_key(intent["clientSecret"]).data(URLS, {"id": intent["id"]})

    url = read["paymentIntent"]["nextAction"]["hostedVoucherUrl"]
    assert url == f"{server.url}/checkout/{intent['id']}/voucher#{intent['clientSecret']}"


async def test_hosted_instructions_url_for_spei_and_crypto(api: GraphQLClient, server) -> None:
    for method in ("SPEI", "CRYPTO"):
        intent = await create_intent(api, "300.00")
        await confirm(api, intent["id"], method)

        action = (await api.data(URLS, {"id": intent["id"]}))["paymentIntent"]["nextAction"]

        assert action["hostedInstructionsUrl"] == (
            f"{server.url}/checkout/{intent['id']}/instructions#{intent['clientSecret']}"
        )
        if method == "CRYPTO":
            assert action["qrSvg"].startswith("<svg") and "</svg>" in action["qrSvg"]


async def test_the_page_frame_holds_nothing_of_the_intent(
    api: GraphQLClient, http: httpx.AsyncClient
) -> None:
    intent = await create_intent(api, "777.00", description="Secreto del comercio")
    for suffix in ("", "/voucher", "/instructions"):
        page = await http.get(f"/checkout/{intent['id']}{suffix}")

        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
        assert "777" not in page.text and "Secreto" not in page.text
        assert "Dev merchant" not in page.text
        assert 'lang="es-MX"' in page.text


async def test_english_on_request(api: GraphQLClient, http: httpx.AsyncClient) -> None:
    intent = await create_intent(api)

    page = await http.get(f"/checkout/{intent['id']}?lang=en")

    assert 'lang="en-MX"' in page.text and "Loading your payment" in page.text


async def test_not_an_intent_id_is_a_404_page(http: httpx.AsyncClient) -> None:
    for path in ("/checkout/nothing", "/checkout/pi_x%3Cscript%3E", "/checkout/acct_abc"):
        page = await http.get(path)

        assert page.status_code == 404
        assert "x<script>" not in page.text and "acct_abc" not in page.text


async def test_static_assets_are_served_without_a_cdn(http: httpx.AsyncClient) -> None:
    for name in ("checkout.js", "live.js", "checkout.css"):
        asset = await http.get(f"/static/checkout/{name}")

        assert asset.status_code == 200
        assert "https://" not in asset.text  # nothing loaded from elsewhere


async def test_merchant_name_needs_this_intents_client_secret(
    api: GraphQLClient, http: httpx.AsyncClient, other_merchant
) -> None:
    mine = await create_intent(api)
    theirs = await create_intent(api.as_key(other_merchant.secret_key))
    path = f"/checkout/{mine['id']}/merchant"

    answer = await http.get(path, headers={"Authorization": f"Bearer {mine['clientSecret']}"})
    assert answer.status_code == 200 and answer.json() == {"name": "Dev merchant"}

    refusals = [
        {},
        {"Authorization": "Bearer sk_test_dev"},
        {"Authorization": f"Bearer {DEV_PUBLISHABLE}"},
        {"Authorization": f"Bearer {theirs['clientSecret']}"},
        {"Authorization": f"Bearer {mine['clientSecret']}x"},
        {"Authorization": "Basic abc"},
    ]
    for headers in refusals:
        refused = await http.get(path, headers=headers)
        assert refused.status_code == 401, headers
        assert "Dev merchant" not in refused.text and "Other merchant" not in refused.text


async def test_client_secret_reads_the_methods_its_intent_allows(api: GraphQLClient) -> None:
    intent = await create_intent(api, "500.00", allowedMethods=["OXXO", "SPEI"])
    open_intent = await create_intent(api, "500.00")

    allowed = await api.as_key(intent["clientSecret"]).data(METHODS, {"amount": "500.00"})
    every = await api.as_key(open_intent["clientSecret"]).data(METHODS, {"amount": "500.00"})
    publishable = await api.as_key(DEV_PUBLISHABLE).data(METHODS, {"amount": "500.00"})

    assert [m["type"] for m in allowed["paymentMethods"]] == ["OXXO", "SPEI"]
    assert [m["type"] for m in every["paymentMethods"]] == ["CARD", "OXXO", "SPEI", "CRYPTO"]
    assert every["paymentMethods"] == publishable["paymentMethods"]


def test_urls_carry_the_secret_in_the_fragment_only() -> None:
    from app.domain.hosted_pages import checkout_url

    url = urlsplit(checkout_url("https://pay.example", "pi_abc", "pi_abc_secret_xyz"))

    assert url.path == "/checkout/pi_abc" and url.query == ""
    assert url.fragment == "pi_abc_secret_xyz"
