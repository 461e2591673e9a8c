"""PostgreSQL's short path and plain SQLAlchemy give the same answers (issue 11's
fence around the short path's use of SQLAlchemy's private internals).

Payments of every outcome, refunds' and webhooks' paths and reads run on a real
server twice: once with the short path, every kept statement run both ways and
compared where it ran (tests/support/both_ways.py), and once with
COBRO_POSTGRES_FAST_PATH off; what the API answers must be the same. For the whole
suite both ways: `COBRO_TEST_BOTH_WAYS=1 COBRO_TEST_DATABASES=postgresql pytest`."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from app.db.postgres import FastConnection
from tests.conftest import BACKENDS, DEV_SECRET, start_server
from tests.support import both_ways
from tests.support.graphql import GraphQLClient, confirm, create_intent
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.skipif("postgresql" not in BACKENDS, reason="PostgreSQL not selected")

READ = (
    """query($id: ID!) { paymentIntent(id: $id) { status version amount { amount currency } } }"""
)
LIST = """query { paymentIntents(first: 50) { edges { node { status version } } } }"""
CANCEL = """mutation($input: CancelPaymentIntentInput!) {
  cancelPaymentIntent(input: $input) { paymentIntent { status version } errors { code } } }"""
# Statements a card payment, a decline, a cancel and the reads must run as plans.
MUST_COMPARE = {"audit", "intents", "outbox", "attempts", "merchants", "sandbox"}


async def workload(url: str, **overrides: object) -> list[Any]:
    """The API's answers to payments of every outcome, on a server with `overrides`."""
    thread = start_server(url, **overrides)
    answers: list[Any] = []
    try:
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as http:
            api = GraphQLClient(http, DEV_SECRET)
            for round_ in range(3):  # the first runs plan nothing: each is seen once first
                for n, token in enumerate(["tok_visa", "tok_chargeDeclined", None, "tok_visa"]):
                    key = f"{round_}-{n}"
                    intent = await create_intent(
                        api, f"{100 + n}.50", idempotencyKey=f"create-{key}-{uuid.uuid4()}"
                    )
                    if token is None:
                        data = await api.data(CANCEL, {"input": {"id": intent["id"]}})
                        payload = data["cancelPaymentIntent"]
                    else:
                        confirm_key = str(uuid.uuid4())
                        payload = await confirm(
                            api,
                            intent["id"],
                            "CARD",
                            card={"token": token},
                            idempotencyKey=confirm_key,
                        )
                        again = await confirm(  # the same key: the same answer, replayed
                            api,
                            intent["id"],
                            "CARD",
                            card={"token": token},
                            idempotencyKey=confirm_key,
                        )
                        assert again["paymentIntent"] == payload["paymentIntent"]
                    read = await api.data(READ, {"id": intent["id"]})
                    answers.append(
                        (
                            payload["paymentIntent"]["status"],
                            [e["code"] for e in payload["errors"]],
                            read["paymentIntent"],
                        )
                    )
            listed = await api.data(LIST, {})
            answers.append(
                sorted(
                    (e["node"]["status"], e["node"]["version"])
                    for e in listed["paymentIntents"]["edges"]
                )
            )
    finally:
        thread.stop()
    return answers


@pytest.mark.slow
async def test_kept_statements_answer_the_same_both_ways(postgres: PostgresServer) -> None:
    both_ways.compared.clear()
    installed = FastConnection.execute is not both_ways._original
    both_ways.install()
    try:
        fast = await workload(postgres.url(postgres.new_database()), postgres_fast_path=True)
    finally:
        if not installed:
            both_ways.uninstall()
    plain = await workload(postgres.url(postgres.new_database()), postgres_fast_path=False)
    assert fast == plain
    statuses = {answer[0] for answer in fast[:-1]}
    assert statuses == {"SUCCEEDED", "FAILED", "CANCELED"}, statuses

    kept = both_ways.kept_statements()
    done = {name for name, s in kept.items() if id(s) in both_ways.compared}
    modules = {name.split(".")[0] for name in done}
    assert modules >= MUST_COMPARE, sorted(done)
    print(f"compared both ways: {len(done)} of {len(kept)}:", sorted(done))
    assert len(done) >= 15, sorted(done)
