"""Hostile or broken requests get a clear 4xx or GraphQL error, never a 500 or a hang."""

from __future__ import annotations

import pytest

from resolvers.schema import build_schema
from tests.conftest import DEV_SECRET

AUTH = {"Authorization": f"Bearer {DEV_SECRET}"}


async def test_malformed_json_is_a_400(http):
    response = await http.post(
        "/graphql", content=b'{"query": ', headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 400


async def test_json_that_is_not_an_object_is_a_400(http):
    response = await http.post("/graphql", json=[1, 2, 3], headers=AUTH)
    assert response.status_code == 400


@pytest.mark.parametrize("body", [b"null", b"5", b'"x"', b"true", b"1e400"])
async def test_json_that_is_a_scalar_is_a_400(http, body):
    for headers in ({}, AUTH):  # a client with no key at all, too
        response = await http.post(
            "/graphql", content=body, headers={**headers, "content-type": "application/json"}
        )
        assert response.status_code == 400, body
    get = await http.get("/graphql", params={"query": "{ __typename }", "variables": "5"})
    assert get.status_code == 400


async def test_oversized_body_is_a_413(http):
    query = "query { __typename }" + " " * 70_000
    response = await http.post("/graphql", json={"query": query}, headers=AUTH)
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_oversized_streamed_body_is_a_413_everywhere(http):
    async def chunks():
        for _ in range(20):
            yield b"x" * 4_096

    for path in ("/graphql", "/webhooks/stripe"):
        headers = {**AUTH, "content-type": "application/json"}
        response = await http.post(path, content=chunks(), headers=headers)
        assert response.status_code == 413, path


async def test_other_methods_on_graphql_are_a_405(http):
    response = await http.put("/graphql", json={"query": "{ __typename }"}, headers=AUTH)
    assert response.status_code == 405


async def test_exponential_introspection_is_refused(http):
    bomb = "fields { type { " * 6 + "name" + " } }" * 6
    query = f"query {{ __schema {{ types {{ {bomb} }} }} }}"
    body = (await http.post("/graphql", json={"query": query}, headers=AUTH)).json()
    assert "introspection" in body["errors"][0]["message"].lower()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_queries_deeper_than_the_limit_are_refused():
    schema = build_schema(max_depth=3)
    deep = "query { paymentIntents { edges { node { amount { amount } } } } }"
    result = await schema.execute(deep)
    assert result.errors and "exceeds maximum operation depth" in result.errors[0].message


async def test_a_query_with_too_many_tokens_is_refused(http):
    query = "query {" + " __typename" * 3_000 + " }"
    body = (await http.post("/graphql", json={"query": query}, headers=AUTH)).json()
    assert "token" in body["errors"][0]["message"].lower()


async def test_alias_bombs_are_refused(http):
    aliases = " ".join(f"a{i}: __typename" for i in range(50))
    body = (
        await http.post("/graphql", json={"query": f"query {{ {aliases} }}"}, headers=AUTH)
    ).json()
    assert "aliases" in body["errors"][0]["message"].lower()


@pytest.mark.parametrize(
    "query",
    ["query { nope }", "mutation { createPaymentIntent { errors { code } } }", "{{{{", ""],
)
async def test_invalid_documents_are_graphql_errors(http, query):
    response = await http.post("/graphql", json={"query": query}, headers=AUTH)
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_bad_amount_in_a_query_is_a_coded_error(http):
    query = 'query { paymentMethods(amount: "-1") { type } }'
    body = (await http.post("/graphql", json={"query": query}, headers=AUTH)).json()
    assert body["errors"][0]["extensions"]["code"] == "INVALID_AMOUNT"


async def test_health_and_readiness(http):
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"


async def test_metrics_are_prometheus_text(http, api):
    from tests.support.graphql import confirm, create_intent

    intent = await create_intent(api)
    await confirm(api, intent["id"], card={"token": "tok_visa"})
    text = (await http.get("/metrics")).text
    assert 'cobro_provider_calls_total{outcome="ok",provider="stripe"}' in text
    assert 'cobro_intent_changes_total{status="SUCCEEDED"}' in text


async def test_graphiql_is_served_to_browsers(http):
    response = await http.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_a_non_ascii_key_is_unauthenticated_not_a_crash(http):
    for key in ("pi_abc_secret_ñandú", "sk_test_ñ"):
        response = await http.post(
            "/graphql",
            json={"query": "{ providers { name } }"},
            headers={"Authorization": f"Bearer {key}".encode()},
        )
        assert response.status_code == 200
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_deeply_nested_json_is_a_400(http):
    variables = "[" * 20_000 + "]" * 20_000
    body = '{"query": "{ __typename }", "variables": {"x": ' + variables + "}}"
    response = await http.post(
        "/graphql", content=body.encode(), headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 400


async def test_a_forged_cursor_far_in_the_past_is_a_clear_error(http):
    import base64

    cursor = base64.urlsafe_b64encode(b"0001-01-01T00:00:00+14:00|pi_abc").decode()
    query = "query($a: String) { paymentIntents(after: $a) { edges { cursor } } }"
    body = (
        await http.post("/graphql", json={"query": query, "variables": {"a": cursor}}, headers=AUTH)
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


@pytest.mark.parametrize("text", ["tacos\x00", "bell\x07"])
async def test_control_characters_in_text_are_refused(http, text):
    mutation = (
        'mutation($d: String) { createPaymentIntent(input: {amount: "10.00", description: $d})'
        " { errors { code field } } }"
    )
    body = (
        await http.post(
            "/graphql", json={"query": mutation, "variables": {"d": text}}, headers=AUTH
        )
    ).json()
    errors = body["data"]["createPaymentIntent"]["errors"]
    assert errors == [{"code": "INVALID_INPUT", "field": ["input", "description"]}]


async def test_an_id_that_is_not_ours_is_simply_not_found(http):
    query = "query($id: ID!) { paymentIntent(id: $id) { id } }"
    for bogus in ("pi_\x00", "'; DROP TABLE payment_intents; --", "pi_" + "a" * 500):
        body = (
            await http.post(
                "/graphql", json={"query": query, "variables": {"id": bogus}}, headers=AUTH
            )
        ).json()
        assert body["data"] == {"paymentIntent": None}


async def test_a_broken_webhook_endpoint_url_is_a_clear_error(http):
    mutation = (
        "mutation($u: String!) { createWebhookEndpoint(input: {url: $u}) "
        "{ errors { code field } } }"
    )
    for url in ("http://[::1", "http://example.test:99999/", "http://example.test/a\nb"):
        body = (
            await http.post(
                "/graphql", json={"query": mutation, "variables": {"u": url}}, headers=AUTH
            )
        ).json()
        assert body["data"]["createWebhookEndpoint"]["errors"] == [
            {"code": "INVALID_INPUT", "field": ["input", "url"]}
        ]


async def test_a_non_ascii_stripe_signature_is_a_400(http):
    response = await http.post(
        "/webhooks/stripe",
        content=b"{}",
        headers={"Stripe-Signature": "t=1,v1=ñ".encode(), "content-type": "application/json"},
    )
    assert response.status_code == 400


async def test_a_stripe_signature_timestamp_of_thousands_of_digits_is_a_400(http):
    for digits in (13, 5_000):
        response = await http.post(
            "/webhooks/stripe",
            content=b"{}",
            headers={
                "Stripe-Signature": f"t={'9' * digits},v1=00",
                "content-type": "application/json",
            },
        )
        assert response.status_code == 400
        assert "digits" in response.json()["error"]
