"""Cash and bank payments go back by SPEI to the customer's CLABE, through STP."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.test_methods import spei_intent, state
from tests.api.test_refunds_card import REFUND
from tests.support.graphql import confirm, create_intent

CUSTOMER_CLABE = "002010077777777771"


async def paid_by_spei(api, http, amount: str = "500.00") -> dict:
    intent, waiting = await spei_intent(api, amount)
    clabe = waiting["nextAction"]["clabe"]
    await http.post("/sandbox/spei/deposits", json={"clabe": clabe, "amount": amount})
    return await state(api, intent["id"])


async def refund(api, **input_) -> dict:
    return (await api.data(REFUND, {"input": input_}))["refundPaymentIntent"]


async def test_spei_refund_is_an_spei_transfer_that_settles_later(api, http):
    paid = await paid_by_spei(api, http)
    done = await refund(api, id=paid["id"], amount="120.00", clabe=CUSTOMER_CLABE)
    assert done["errors"] == []
    assert done["paymentIntent"]["amountRefunded"]["amount"] == "120.00"
    for _ in range(50):  # STP settles the transfer and calls back with LIQUIDACION
        events = (await state(api, paid["id"]))["events"]
        if events[-1]["type"] == "refund.succeeded":
            break
        await asyncio.sleep(0.1)
    # Sent and processing first, succeeded on STP's callback (which comes 0.2 s after
    # the order, or whenever a loaded machine gets to it: read at the end, not raced).
    types = [e["type"] for e in events]
    assert types[-3:] == ["refund.requested", "refund.processing", "refund.succeeded"]
    assert events[-1]["provider"] == "stp"


async def test_oxxo_payments_are_refunded_by_spei_too(api, http):
    intent = await create_intent(api, "250.00")
    voucher = (await confirm(api, intent["id"], "OXXO", oxxo={}))["paymentIntent"]
    await http.post(f"/sandbox/oxxo/{voucher['nextAction']['reference']}/pay")
    done = await refund(api, id=intent["id"], clabe=CUSTOMER_CLABE)
    assert done["paymentIntent"]["amountRefunded"]["amount"] == "250.00"


@pytest.mark.parametrize(
    ("clabe", "code"),
    [
        (None, "INVALID_INPUT"),
        ("002010077777777772", "INVALID_CLABE"),  # wrong check digit
        ("12345", "INVALID_CLABE"),
    ],
)
async def test_spei_refunds_need_a_valid_clabe(api, http, clabe, code):
    paid = await paid_by_spei(api, http)
    extra = {} if clabe is None else {"clabe": clabe}
    bad = await refund(api, id=paid["id"], **extra)
    assert (bad["paymentIntent"], bad["errors"][0]["code"]) == (None, code)
    assert bad["errors"][0]["field"] == ["input", "clabe"]
    assert (await state(api, paid["id"]))["amountRefunded"]["amount"] == "0.00"


async def test_spei_refund_never_exceeds_what_was_received(api, http):
    paid = await paid_by_spei(api, http, "100.00")
    over = await refund(api, id=paid["id"], amount="100.01", clabe=CUSTOMER_CLABE)
    assert over["errors"][0]["code"] == "REFUND_EXCEEDS_AMOUNT"
