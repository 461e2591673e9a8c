"""A small GraphQL-over-HTTP client for tests, on httpx."""

from __future__ import annotations

from typing import Any

import httpx


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient, key: str | None = None) -> None:
        self.http = http
        self.key = key

    def as_key(self, key: str | None) -> GraphQLClient:
        return GraphQLClient(self.http, key)

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a query that must not fail."""
        body = await self.post(query, variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data


CREATE = """
mutation Create($input: CreatePaymentIntentInput!) {
  createPaymentIntent(input: $input) {
    paymentIntent { id status version clientSecret amount { amount currency } }
    errors { code message field }
  }
}
"""

CONFIRM = """
mutation Confirm($input: ConfirmPaymentIntentInput!) {
  confirmPaymentIntent(input: $input) {
    paymentIntent {
      id status version method provider
      amountReceived { amount currency }
      lastError { code message provider }
      expiresAt
      nextAction {
        __typename
        ... on RedirectToUrl { url returnUrl }
        ... on OxxoVoucher { reference hostedVoucherUrl voucherExpiresAt: expiresAt barcodeSvg }
        ... on SpeiInstructions { clabe bank beneficiary reference speiExpiresAt: expiresAt }
        ... on CryptoInstructions { asset network address cryptoAmount rate quoteExpiresAt }
      }
      events { type status provider }
    }
    errors { code message field }
  }
}
"""

GET = """
query Get($id: ID!) {
  paymentIntent(id: $id) {
    id status version clientSecret provider method
    amount { amount currency } amountReceived { amount } amountRefunded { amount }
    events { id type status provider at data }
  }
}
"""


async def create_intent(
    client: GraphQLClient, amount: str = "500.00", **extra: Any
) -> dict[str, Any]:
    data = await client.data(CREATE, {"input": {"amount": amount, **extra}})
    payload = data["createPaymentIntent"]
    assert payload["errors"] == [], payload["errors"]
    intent: dict[str, Any] = payload["paymentIntent"]
    return intent


async def confirm(
    client: GraphQLClient, intent_id: str, method: str = "CARD", **inputs: Any
) -> dict[str, Any]:
    data = await client.data(CONFIRM, {"input": {"id": intent_id, "method": method, **inputs}})
    payload: dict[str, Any] = data["confirmPaymentIntent"]
    return payload
