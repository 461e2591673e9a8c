"""Payout queries and helpers shared by the payout tests."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.graphql import GraphQLClient

PAYOUT_FIELDS = """
  id status version amount { amount currency } clabe bank beneficiaryName concept reference
  trackingKey provider returnReason { code message } proofUrl metadata createdAt updatedAt
  events { type provider data }
"""
CREATE_PAYOUT = (
    "mutation($input: CreatePayoutInput!) { createPayout(input: $input) { payout { "
    + PAYOUT_FIELDS
    + " } errors { code message field } } }"
)
CANCEL_PAYOUT = (
    "mutation($id: ID!) { cancelPayout(id: $id) { payout { "
    + PAYOUT_FIELDS
    + " } errors { code message field } } }"
)
READ_PAYOUT = "query($id: ID!) { payout(id: $id) { " + PAYOUT_FIELDS + " } }"
LIST_PAYOUTS = """
query($first: Int, $after: String, $status: PayoutStatus) {
  payouts(first: $first, after: $after, status: $status) {
    edges { cursor node { id status } } pageInfo { hasNextPage endCursor }
  }
}
"""
WATCH_PAYOUT = (
    "subscription($id: ID!, $after: Int) { payoutUpdated(id: $id, afterVersion: $after) { "
    "id status version trackingKey returnReason { code message } proofUrl } }"
)

SUPPLIER_CLABE = "002010077777777771"  # Banamex; the sandbox pays it a moment after
RETURNED_CLABE = "646180000000000025"  # the receiving bank returns it, reason 01
REFUSED_CLABE = "646180000000000038"  # STP refuses it: insufficient funds


def payout_input(**overrides: Any) -> dict[str, Any]:
    return {
        "amount": "1500.00",
        "clabe": SUPPLIER_CLABE,
        "beneficiaryName": "Proveedora del Norte SA",
        "concept": "Factura 1234",
        **overrides,
    }


async def create_payout(api: GraphQLClient, **overrides: Any) -> dict[str, Any]:
    result: dict[str, Any] = (await api.data(CREATE_PAYOUT, {"input": payout_input(**overrides)}))[
        "createPayout"
    ]
    return result


async def read_payout(api: GraphQLClient, payout_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await api.data(READ_PAYOUT, {"id": payout_id}))["payout"]
    return found


async def wait_for_status(
    api: GraphQLClient, payout_id: str, status: str, seconds: float = 15.0
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        payout = await read_payout(api, payout_id)
        if payout["status"] == status or loop.time() > deadline:
            return payout
        await asyncio.sleep(0.1)
