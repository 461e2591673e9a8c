"""Refunds as objects (contract section 8): each has an id, a status, an amount, a
reason and, for cash, bank and crypto payments, the payout carrying it. The refund
follows its payout: PAID succeeds it; refused, returned (even after PAID) fails it
and makes the amount refundable again. Merchants hear of it as refund.* webhooks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import stripe

from tests.api.test_merchant_webhooks import fast, receiver, register, wait_for  # noqa: F401
from tests.api.test_refunds_card import paid_card_intent
from tests.api.test_refunds_spei import CUSTOMER_CLABE, paid_by_spei, refund
from tests.support.graphql import GraphQLClient
from tests.support.payouts import REFUSED_CLABE, RETURNED_CLABE

REFUNDS = """
query($id: ID!) {
  paymentIntent(id: $id) {
    amountRefunded { amount }
    refunds {
      id status amount { amount currency } reason paymentIntentId createdAt
      payout { id status clabe concept trackingKey refund { id status } }
    }
  }
}
"""


# The refund as its mutation answers it: the state at its commit, before STP settles
# the payout (the sandbox does a moment later, which a loaded machine may outrun).
REFUND_ANSWERING_REFUNDS = """
mutation($input: RefundPaymentIntentInput!) {
  refundPaymentIntent(input: $input) {
    paymentIntent { refunds {
      id status amount { amount currency } reason paymentIntentId
      payout { id status clabe concept refund { id status } }
    } }
    errors { code message field }
  }
}
"""


async def refunds_of(api: GraphQLClient, intent_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await api.data(REFUNDS, {"id": intent_id}))["paymentIntent"]
    return found


async def wait_for_refund(
    api: GraphQLClient, intent_id: str, status: str, seconds: float = 15.0
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        intent = await refunds_of(api, intent_id)
        if intent["refunds"][-1]["status"] == status or loop.time() > deadline:
            # Read once more: a query's fields are read one statement after another
            # (no snapshot across them, as at Stripe), so the intent's amounts in the
            # read that first saw the refund's new status may predate its commit.
            return await refunds_of(api, intent_id)
        await asyncio.sleep(0.1)


async def test_an_spei_refund_is_carried_by_a_payout_and_succeeds_when_it_is_paid(api, http):
    paid = await paid_by_spei(api, http)
    asked = {"id": paid["id"], "amount": "120.00", "clabe": CUSTOMER_CLABE, "reason": "damaged"}
    done = (await api.data(REFUND_ANSWERING_REFUNDS, {"input": asked}))["refundPaymentIntent"]
    assert done["errors"] == []
    (first,) = done["paymentIntent"]["refunds"]
    assert first["id"].startswith("re_")
    assert (first["status"], first["amount"], first["reason"], first["paymentIntentId"]) == (
        "PENDING",
        {"amount": "120.00", "currency": "MXN"},
        "damaged",
        paid["id"],
    )
    payout = first["payout"]
    assert payout["id"].startswith("po_") and payout["clabe"] == CUSTOMER_CLABE
    assert payout["concept"] == f"DEVOLUCION {paid['id']}"[:40]
    assert payout["refund"] == {"id": first["id"], "status": "PENDING"}
    settled = await wait_for_refund(api, paid["id"], "SUCCEEDED")
    (done_refund,) = settled["refunds"]
    assert done_refund["status"] == "SUCCEEDED"
    assert done_refund["payout"]["status"] == "PAID"
    assert done_refund["payout"]["refund"] == {"id": first["id"], "status": "SUCCEEDED"}
    assert settled["amountRefunded"]["amount"] == "120.00"


async def test_a_returned_refund_fails_and_the_amount_can_be_refunded_again(api, http):
    paid = await paid_by_spei(api, http, "300.00")
    await refund(api, id=paid["id"], clabe=RETURNED_CLABE)
    failed = await wait_for_refund(api, paid["id"], "FAILED")
    assert failed["refunds"][0]["payout"]["status"] == "RETURNED"
    assert failed["amountRefunded"]["amount"] == "0.00"
    again = await refund(api, id=paid["id"], clabe=CUSTOMER_CLABE)
    assert again["errors"] == []
    assert again["paymentIntent"]["amountRefunded"]["amount"] == "300.00"
    settled = await wait_for_refund(api, paid["id"], "SUCCEEDED")
    assert [r["status"] for r in settled["refunds"]] == ["FAILED", "SUCCEEDED"]
    events = (await api.data(REFUND_EVENTS, {"id": paid["id"]}))["paymentIntent"]["events"]
    returned = next(e for e in events if e["type"] == "refund.failed")
    assert returned["data"]["return_code"] == "01"
    assert returned["data"]["payout_status"] == "RETURNED"


REFUND_EVENTS = "query($id: ID!) { paymentIntent(id: $id) { events { type provider data } } }"


async def test_a_refund_stp_refuses_fails_at_once_and_changes_nothing(api, http):
    paid = await paid_by_spei(api, http, "200.00")
    refused = await refund(api, id=paid["id"], amount="50.00", clabe=REFUSED_CLABE)
    assert refused["errors"][0]["code"] == "PAYMENT_FAILED"
    assert refused["paymentIntent"]["amountRefunded"]["amount"] == "0.00"
    after = await refunds_of(api, paid["id"])
    assert [r["status"] for r in after["refunds"]] == ["FAILED"]
    assert after["refunds"][0]["payout"]["status"] == "FAILED"
    whole = await refund(api, id=paid["id"], clabe=CUSTOMER_CLABE)
    assert whole["paymentIntent"]["amountRefunded"]["amount"] == "200.00"


async def test_a_paid_refund_returned_later_fails_and_frees_the_amount(api, http):
    paid = await paid_by_spei(api, http, "80.00")
    await refund(api, id=paid["id"], clabe=CUSTOMER_CLABE)
    settled = await wait_for_refund(api, paid["id"], "SUCCEEDED")
    key = settled["refunds"][0]["payout"]["trackingKey"]
    back = await http.post(f"/sandbox/spei/payouts/{key}/return", json={"reason": "03"})
    assert back.status_code == 200, back.text
    failed = await wait_for_refund(api, paid["id"], "FAILED")
    assert failed["refunds"][0]["payout"]["status"] == "RETURNED"
    assert failed["amountRefunded"]["amount"] == "0.00"


async def test_a_card_refund_is_an_object_with_no_payout(api):
    paid = await paid_card_intent(api, "90.00")
    done = await refund(api, id=paid["id"], amount="40.00")
    assert done["errors"] == []
    (only,) = (await refunds_of(api, paid["id"]))["refunds"]
    assert (only["status"], only["amount"]["amount"], only["payout"]) == (
        "SUCCEEDED",
        "40.00",
        None,
    )


async def test_refunds_are_the_secret_keys_alone(api, http):
    paid = await paid_by_spei(api, http)
    await refund(api, id=paid["id"], amount="10.00", clabe=CUSTOMER_CLABE)
    secret = (await api.data(CLIENT_SECRET, {"id": paid["id"]}))["paymentIntent"]["clientSecret"]
    checkout = GraphQLClient(api.http, secret)  # what a checkout page holds
    seen = await checkout.data(
        "query($id: ID!) { paymentIntent(id: $id) { id refunds { id } } }", {"id": paid["id"]}
    )
    assert seen["paymentIntent"]["id"] == paid["id"]
    assert seen["paymentIntent"]["refunds"] is None
    assert len((await refunds_of(api, paid["id"]))["refunds"]) == 1


CLIENT_SECRET = "query($id: ID!) { paymentIntent(id: $id) { clientSecret } }"


@pytest.mark.parametrize("clabe", [CUSTOMER_CLABE, RETURNED_CLABE])
async def test_refund_webhooks_follow_the_refund(fast, receiver, clabe):  # noqa: F811
    url, inbox = receiver
    endpoint = await register(
        fast, f"{url}/refunds", ["refund.created", "refund.succeeded", "refund.failed"]
    )
    paid = await paid_by_spei(fast, fast.http, "60.00")
    await refund(fast, id=paid["id"], clabe=clabe)
    await wait_for(lambda: len(inbox.events("/refunds")) >= 2, timeout=20)
    created, last = inbox.received[:2]
    outcome = "refund.succeeded" if clabe == CUSTOMER_CLABE else "refund.failed"
    assert [created.event["type"], last.event["type"]] == ["refund.created", outcome]
    for delivery in (created, last):
        stripe.Webhook.construct_event(
            delivery.body.decode(), delivery.headers["cobro-signature"], endpoint["secret"]
        )
    obj = last.event["data"]["object"]
    (shown,) = (await refunds_of(fast, paid["id"]))["refunds"]
    assert obj["object"] == "refund"
    assert (obj["id"], obj["paymentIntentId"], obj["payout"]) == (
        shown["id"],
        paid["id"],
        shown["payout"]["id"],
    )
    assert obj["status"] == ("SUCCEEDED" if clabe == CUSTOMER_CLABE else "FAILED")
    assert obj["amount"] == {"amount": "60.00", "currency": "MXN"}
    assert created.event["data"]["object"]["status"] == "PENDING"
