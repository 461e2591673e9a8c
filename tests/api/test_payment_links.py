"""Payment links over real HTTP (contract section 9): createPaymentLink,
deactivatePaymentLink, paymentLinks, and /pay/{id} opening a new intent per visit
or answering 410 once the link is off or past its expiry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import DEV_PUBLISHABLE, DEV_SECRET, start_server
from tests.support.graphql import GraphQLClient

LINK = "id url amount { amount currency } description allowedMethods active expiresAt createdAt"
CREATE = (
    "mutation($input: CreatePaymentLinkInput!) { createPaymentLink(input: $input) { "
    f"paymentLink {{ {LINK} }} errors {{ code message field }} }} }}"
)
DEACTIVATE = (
    "mutation($id: ID!) { deactivatePaymentLink(id: $id) { "
    f"paymentLink {{ {LINK} }} errors {{ code message field }} }} }}"
)
LIST = (
    "query($first: Int, $after: String) { paymentLinks(first: $first, after: $after) { "
    "edges { node { id } cursor } pageInfo { hasNextPage endCursor } } }"
)
INTENT = (
    "query($id: ID!) { paymentIntent(id: $id) { id status amount { amount } description "
    "metadata } }"
)
METHODS = "query($amount: Decimal!) { paymentMethods(amount: $amount) { type } }"


async def create_link(api: GraphQLClient, **fields: object) -> dict:
    data = await api.data(CREATE, {"input": {"amount": "250.00", **fields}})
    payload = data["createPaymentLink"]
    assert payload["errors"] == [], payload["errors"]
    return payload["paymentLink"]


async def visit(http: httpx.AsyncClient, url: str) -> httpx.Response:
    return await http.get(urlsplit(url).path)


async def test_each_visit_opens_a_new_intent_and_its_checkout(
    api: GraphQLClient, http: httpx.AsyncClient, server
) -> None:
    link = await create_link(
        api, description="Clase de yoga", allowedMethods=["OXXO", "SPEI"], metadata={"sku": "y1"}
    )
    assert link["url"] == f"{server.url}/pay/{link['id']}"
    assert link["active"] is True and link["amount"] == {"amount": "250.00", "currency": "MXN"}

    first, second = await visit(http, link["url"]), await visit(http, link["url"])

    intents = []
    for answer in (first, second):
        assert answer.status_code == 303
        target = urlsplit(answer.headers["location"])
        intent_id = target.path.removeprefix("/checkout/")
        assert target.fragment.startswith(f"{intent_id}_secret_")
        intents.append((intent_id, target.fragment))
    assert intents[0][0] != intents[1][0]

    intent_id, secret = intents[0]
    read = (await api.data(INTENT, {"id": intent_id}))["paymentIntent"]
    assert read["status"] == "REQUIRES_PAYMENT_METHOD"
    assert read["amount"] == {"amount": "250.00"} and read["description"] == "Clase de yoga"
    assert read["metadata"] == {"sku": "y1", "payment_link": link["id"]}
    methods = await api.as_key(secret).data(METHODS, {"amount": "250.00"})
    assert [m["type"] for m in methods["paymentMethods"]] == ["OXXO", "SPEI"]


async def test_a_deactivated_link_answers_410(api: GraphQLClient, http: httpx.AsyncClient) -> None:
    link = await create_link(api)

    off = (await api.data(DEACTIVATE, {"id": link["id"]}))["deactivatePaymentLink"]
    again = (await api.data(DEACTIVATE, {"id": link["id"]}))["deactivatePaymentLink"]

    assert off["errors"] == [] and off["paymentLink"]["active"] is False
    assert again["errors"] == [] and again["paymentLink"]["active"] is False
    gone = await visit(http, link["url"])
    assert gone.status_code == 410
    assert "ya no está disponible" in gone.text and "Dev merchant" in gone.text
    english = await http.get(f"/pay/{link['id']}?lang=en")
    assert english.status_code == 410 and "no longer available" in english.text


async def test_unknown_links_are_404(http: httpx.AsyncClient) -> None:
    for path in ("/pay/plink_nothingHere000000000000", "/pay/pi_abc", "/pay/%3Cb%3E"):
        answer = await http.get(path)
        assert answer.status_code == 404 and "<b>" not in answer.text


@pytest.fixture
async def own(database_url: str) -> AsyncIterator[tuple[GraphQLClient, httpx.AsyncClient]]:
    """A server of this test's own: it moves the sandbox's clock."""
    thread = start_server(database_url)
    try:
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as http:
            yield GraphQLClient(http, DEV_SECRET), http
    finally:
        thread.stop()


async def test_an_expired_link_answers_410(own) -> None:
    api, http = own
    expires = datetime.now(UTC) + timedelta(hours=1)
    link = await create_link(api, expiresAt=expires.isoformat())
    assert (await visit(http, link["url"])).status_code == 303

    moved = await http.post("/sandbox/clock/advance", json={"seconds": 3601})
    assert moved.status_code == 200

    assert (await visit(http, link["url"])).status_code == 410


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"amount": "-1"}, "INVALID_AMOUNT", ["input", "amount"]),
        ({"amount": "1.001"}, "INVALID_AMOUNT", ["input", "amount"]),
        (
            {"amount": "5.00", "allowedMethods": ["CARD"]},
            "AMOUNT_OUT_OF_RANGE",
            ["input", "amount"],
        ),
        ({"expiresAt": "2020-01-01T00:00:00+00:00"}, "INVALID_INPUT", ["input", "expiresAt"]),
        ({"expiresAt": "2099-01-01T00:00:00+00:00"}, "INVALID_INPUT", ["input", "expiresAt"]),
        ({"metadata": {"payment_link": "x"}}, "INVALID_INPUT", ["input", "metadata"]),
        ({"metadata": [1]}, "INVALID_INPUT", ["input", "metadata"]),
        ({"description": "x" * 1001}, "INVALID_INPUT", ["input", "description"]),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(
    api: GraphQLClient, fields: dict, code: str, field: list[str]
) -> None:
    before = (await api.data(LIST, {"first": 1}))["paymentLinks"]["edges"]

    data = await api.data(CREATE, {"input": {"amount": "250.00", **fields}})

    payload = data["createPaymentLink"]
    assert payload["paymentLink"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]
    assert (await api.data(LIST, {"first": 1}))["paymentLinks"]["edges"] == before


async def test_idempotency_key_returns_the_first_link(api: GraphQLClient) -> None:
    first = await create_link(api, idempotencyKey="link-once-1")
    again = await create_link(api, idempotencyKey="link-once-1")
    other = await api.data(CREATE, {"input": {"amount": "9.99", "idempotencyKey": "link-once-1"}})

    assert again == first
    assert other["createPaymentLink"]["errors"][0]["code"] == "IDEMPOTENCY_CONFLICT"


async def test_links_are_the_merchants_own(
    api: GraphQLClient, other_merchant, http: httpx.AsyncClient
) -> None:
    mine = await create_link(api)
    theirs = api.as_key(other_merchant.secret_key)

    listed = (await theirs.data(LIST, {"first": 100}))["paymentLinks"]["edges"]
    refused = (await theirs.data(DEACTIVATE, {"id": mine["id"]}))["deactivatePaymentLink"]

    assert mine["id"] not in [e["node"]["id"] for e in listed]
    assert refused["errors"][0]["code"] == "NOT_FOUND"
    for key in (DEV_PUBLISHABLE, None):
        body = await api.as_key(key).post(LIST, {"first": 1})
        assert body["errors"][0]["extensions"]["code"] in {"FORBIDDEN", "UNAUTHENTICATED"}


async def test_links_page_newest_first(api: GraphQLClient) -> None:
    made = [(await create_link(api))["id"] for _ in range(3)]

    first = (await api.data(LIST, {"first": 2}))["paymentLinks"]
    rest = (await api.data(LIST, {"first": 1, "after": first["pageInfo"]["endCursor"]}))[
        "paymentLinks"
    ]

    assert [e["node"]["id"] for e in first["edges"]] == made[::-1][:2]
    assert first["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["id"] for e in rest["edges"]] == [made[0]]
    bad = await api.post(LIST, {"first": 1, "after": "nonsense"})
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
