"""createPayout end to end: recorded, sent to STP with Cobro's tracking key and the
merchant's concept and reference, PAID by STP's signed LIQUIDACION callback; the
`payouts` connection, the `payout` query, idempotency, and cancelPayout."""

from __future__ import annotations

import pytest

from tests.conftest import DEV_PUBLISHABLE
from tests.support.graphql import GraphQLClient
from tests.support.payouts import (
    CANCEL_PAYOUT,
    CREATE_PAYOUT,
    LIST_PAYOUTS,
    READ_PAYOUT,
    SUPPLIER_CLABE,
    create_payout,
    payout_input,
    read_payout,
    wait_for_status,
)


async def test_a_payout_is_sent_to_stp_and_paid_by_its_callback(api):
    created = await create_payout(api, reference=4321, metadata={"invoice": "1234"})
    assert created["errors"] == []
    payout = created["payout"]
    assert payout["id"].startswith("po_")
    assert (payout["status"], payout["provider"], payout["version"]) == ("IN_TRANSIT", "stp", 2)
    assert payout["amount"] == {"amount": "1500.00", "currency": "MXN"}
    assert (payout["clabe"], payout["bank"]) == (SUPPLIER_CLABE, "Banamex")
    assert (payout["concept"], payout["reference"]) == ("Factura 1234", 4321)
    key = payout["trackingKey"]
    assert key.isalnum() and len(key) <= 30
    assert payout["metadata"] == {"invoice": "1234"}
    paid = await wait_for_status(api, payout["id"], "PAID")
    assert (paid["status"], paid["version"], paid["trackingKey"]) == ("PAID", 3, key)
    types = [e["type"] for e in paid["events"]]
    assert types == [
        "payout.created",
        "provider.request",
        "provider.payout",
        "payout.in_transit",
        "webhook.payout",
        "payout.paid",
    ]


async def test_a_reference_left_out_is_generated_in_range(api):
    payout = (await create_payout(api))["payout"]
    assert 1 <= payout["reference"] <= 9_999_999


async def test_the_same_idempotency_key_answers_the_same_payout(api):
    first = await create_payout(api, idempotencyKey="po-key-1", amount="10.00")
    again = await create_payout(api, idempotencyKey="po-key-1", amount="10.00")
    assert again["payout"]["id"] == first["payout"]["id"]
    assert again["errors"] == []
    other = await create_payout(api, idempotencyKey="po-key-1", amount="11.00")
    assert other["payout"] is None
    assert other["errors"][0]["code"] == "IDEMPOTENCY_CONFLICT"


async def test_payouts_are_listed_newest_first_and_filtered(api):
    made = [(await create_payout(api, amount=f"{n}.00"))["payout"]["id"] for n in (21, 22, 23)]
    page = (await api.data(LIST_PAYOUTS, {"first": 2}))["payouts"]
    assert [e["node"]["id"] for e in page["edges"]] == made[::-1][:2]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await api.data(LIST_PAYOUTS, {"first": 1, "after": page["pageInfo"]["endCursor"]})
    assert rest["payouts"]["edges"][0]["node"]["id"] == made[0]
    canceled = (await api.data(LIST_PAYOUTS, {"first": 100, "status": "CANCELED"}))["payouts"]
    assert all(e["node"]["status"] == "CANCELED" for e in canceled["edges"])


async def test_a_payout_that_left_cannot_be_canceled(api):
    payout = (await create_payout(api))["payout"]
    refused = (await api.data(CANCEL_PAYOUT, {"id": payout["id"]}))["cancelPayout"]
    assert refused["payout"] is None
    assert refused["errors"][0]["code"] == "PAYOUT_NOT_CANCELABLE"
    assert (await read_payout(api, payout["id"]))["status"] in ("IN_TRANSIT", "PAID")


async def test_another_merchants_payout_is_not_found(api, http, other_merchant):
    payout = (await create_payout(api))["payout"]
    other = GraphQLClient(http, other_merchant.secret_key)
    assert (await other.data(READ_PAYOUT, {"id": payout["id"]}))["payout"] is None
    canceled = (await other.data(CANCEL_PAYOUT, {"id": payout["id"]}))["cancelPayout"]
    assert canceled["errors"][0]["code"] == "NOT_FOUND"
    listed = (await other.data(LIST_PAYOUTS, {"first": 100}))["payouts"]["edges"]
    assert payout["id"] not in [e["node"]["id"] for e in listed]


async def test_payouts_are_for_the_secret_key_only(api, http):
    public = GraphQLClient(http, DEV_PUBLISHABLE)
    body = await public.post(CREATE_PAYOUT, {"input": payout_input()})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await public.post(LIST_PAYOUTS, {"first": 1})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = await GraphQLClient(http).post(READ_PAYOUT, {"id": "po_x"})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"clabe": "002010077777777772"}, "INVALID_CLABE", "clabe"),
        ({"clabe": "000000000000000000"}, "INVALID_CLABE", "clabe"),
        ({"clabe": "12345"}, "INVALID_CLABE", "clabe"),
        ({"concept": ""}, "INVALID_CONCEPT", "concept"),
        ({"concept": "x" * 41}, "INVALID_CONCEPT", "concept"),
        ({"concept": "Pago de señal"}, "INVALID_CONCEPT", "concept"),
        ({"reference": 0}, "INVALID_REFERENCE", "reference"),
        ({"reference": 10_000_000}, "INVALID_REFERENCE", "reference"),
        ({"amount": "0.00"}, "INVALID_AMOUNT", "amount"),
        ({"amount": "-5.00"}, "INVALID_AMOUNT", "amount"),
        ({"amount": "1.001"}, "INVALID_AMOUNT", "amount"),
        ({"amount": "100000000.00"}, "AMOUNT_OUT_OF_RANGE", "amount"),
        ({"beneficiaryName": ""}, "INVALID_INPUT", "beneficiaryName"),
        ({"rfc": "NOT AN RFC"}, "INVALID_INPUT", "rfc"),
        ({"metadata": [1]}, "INVALID_INPUT", "metadata"),
    ],
)
async def test_bad_input_gets_its_code_and_sends_nothing(api, overrides, code, field):
    # The newest payout's id, not its status: an earlier test's payout may settle
    # (IN_TRANSIT -> PAID, STP's callback) while this one runs.
    before = [
        e["node"]["id"] for e in (await api.data(LIST_PAYOUTS, {"first": 1}))["payouts"]["edges"]
    ]
    bad = (await api.data(CREATE_PAYOUT, {"input": payout_input(**overrides)}))["createPayout"]
    assert bad["payout"] is None
    assert (bad["errors"][0]["code"], bad["errors"][0]["field"]) == (code, ["input", field])
    after = [
        e["node"]["id"] for e in (await api.data(LIST_PAYOUTS, {"first": 1}))["payouts"]["edges"]
    ]
    assert after == before


async def test_unknown_ids_read_as_null_and_cancel_as_not_found(api):
    assert (await api.data(READ_PAYOUT, {"id": "po_doesnotexist"}))["payout"] is None
    assert (await api.data(READ_PAYOUT, {"id": "pi_notapayout"}))["payout"] is None
    canceled = (await api.data(CANCEL_PAYOUT, {"id": "po_nope"}))["cancelPayout"]
    assert canceled["errors"][0]["code"] == "NOT_FOUND"
