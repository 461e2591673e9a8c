"""Confirming each method through its PSP, and settling it through the sandbox."""

from __future__ import annotations

from decimal import Decimal

from app.domain.clabe import is_valid_clabe
from tests.support.graphql import GET, confirm, create_intent


async def state(api, intent_id: str) -> dict:
    return (await api.data(GET, {"id": intent_id}))["paymentIntent"]


async def spei_intent(api, amount: str = "500.00") -> tuple[dict, dict]:
    intent = await create_intent(api, amount)
    payload = await confirm(api, intent["id"], "SPEI", spei={})
    assert payload["errors"] == [], payload["errors"]
    return intent, payload["paymentIntent"]


async def test_spei_gives_a_clabe_of_its_own_with_bank_and_reference(api):
    _, first = await spei_intent(api)
    _, second = await spei_intent(api)
    assert (first["status"], first["provider"], first["method"]) == (
        "REQUIRES_ACTION",
        "stp",
        "SPEI",
    )
    instructions = first["nextAction"]
    assert instructions["__typename"] == "SpeiInstructions"
    assert is_valid_clabe(instructions["clabe"])
    assert instructions["bank"] == "STP" and instructions["beneficiary"]
    assert instructions["reference"].isdigit() and len(instructions["reference"]) <= 7
    assert instructions["speiExpiresAt"] == first["expiresAt"]
    assert second["nextAction"]["clabe"] != instructions["clabe"]


async def test_a_transfer_settles_the_intent(api, http):
    intent, waiting = await spei_intent(api, "500.00")
    clabe = waiting["nextAction"]["clabe"]
    sent = await http.post("/sandbox/spei/deposits", json={"clabe": clabe, "amount": "500.00"})
    assert sent.json()["webhook_status"] == 200
    paid = await state(api, intent["id"])
    assert (paid["status"], paid["amountReceived"]["amount"]) == ("SUCCEEDED", "500.00")


async def test_a_short_transfer_waits_for_the_rest_and_overpaying_succeeds(api, http):
    intent, waiting = await spei_intent(api, "500.00")
    clabe = waiting["nextAction"]["clabe"]
    await http.post("/sandbox/spei/deposits", json={"clabe": clabe, "amount": "200.00"})
    partly = await state(api, intent["id"])
    assert (partly["status"], partly["amountReceived"]["amount"]) == ("REQUIRES_ACTION", "200.00")
    assert partly["events"][-1]["type"] == "payment.partial"
    await http.post("/sandbox/spei/deposits", json={"clabe": clabe, "amount": "350.00"})
    paid = await state(api, intent["id"])
    assert (paid["status"], paid["amountReceived"]["amount"]) == ("SUCCEEDED", "550.00")


async def test_an_invalid_payer_clabe_is_refused(api):
    intent = await create_intent(api)
    payload = await confirm(api, intent["id"], "SPEI", spei={"payerClabe": "002000000000000007"})
    assert payload["errors"][0]["code"] == "INVALID_CLABE"
    assert payload["errors"][0]["field"] == ["input", "spei", "payerClabe"]


async def test_crypto_locks_a_quote_and_settles_on_deposit(api, http):
    intent = await create_intent(api, "510.00")
    payload = await confirm(
        api, intent["id"], "CRYPTO", crypto={"asset": "USDC", "network": "polygon"}
    )
    waiting = payload["paymentIntent"]
    assert (waiting["status"], waiting["provider"]) == ("REQUIRES_ACTION", "bitso")
    quote = waiting["nextAction"]
    assert quote["__typename"] == "CryptoInstructions"
    assert (quote["asset"], quote["network"]) == ("USDC", "polygon")
    assert Decimal(quote["cryptoAmount"]) * Decimal(quote["rate"]) >= Decimal("510.00")
    assert waiting["expiresAt"] == quote["quoteExpiresAt"]
    sent = await http.post(
        "/sandbox/crypto/deposits",
        json={"address": quote["address"], "amount": quote["cryptoAmount"]},
    )
    assert sent.json()["webhook_status"] == 200
    paid = await state(api, intent["id"])
    assert (paid["status"], paid["amountReceived"]["amount"]) == ("SUCCEEDED", "510.00")


async def test_crypto_on_an_unsupported_network_is_refused(api):
    intent = await create_intent(api, "510.00")
    payload = await confirm(
        api, intent["id"], "CRYPTO", crypto={"asset": "USDC", "network": "dogechain"}
    )
    assert payload["errors"][0]["code"] == "INVALID_INPUT"
    assert "polygon" in payload["errors"][0]["message"]


async def test_crypto_below_its_minimum_is_out_of_range(api):
    intent = await create_intent(api, "50.00")
    payload = await confirm(api, intent["id"], "CRYPTO", crypto={})
    assert payload["errors"][0]["code"] == "AMOUNT_OUT_OF_RANGE"


async def test_oxxo_above_its_maximum_is_out_of_range(api):
    intent = await create_intent(api, "10000.01")
    payload = await confirm(api, intent["id"], "OXXO", oxxo={})
    assert payload["errors"][0]["code"] == "AMOUNT_OUT_OF_RANGE"


async def test_oxxo_expiry_days_are_checked(api):
    intent = await create_intent(api)
    payload = await confirm(api, intent["id"], "OXXO", oxxo={"expiresInDays": 8})
    assert payload["errors"][0]["code"] == "INVALID_INPUT"
    assert payload["errors"][0]["field"] == ["input", "oxxo", "expiresInDays"]
