"""Logs: JSON lines with the request's context, request ids in and out, and no
secret in any line: a full payment flow of every method, over real HTTP, then the
captured log is searched for each key, client secret, card token, webhook secret
and CLABE it handled."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app import logs
from tests.api.test_merchant_webhooks import register, wait_for
from tests.api.test_refunds_spei import CUSTOMER_CLABE
from tests.conftest import DEV_PUBLISHABLE, DEV_SECRET, start_server
from tests.support.graphql import GraphQLClient, confirm, create_intent
from tests.support.process import serve_process
from tests.support.receiver import Receiver

REFUND = """
mutation($input: RefundPaymentIntentInput!) {
  refundPaymentIntent(input: $input) { paymentIntent { id } errors { code } }
}
"""
METHODS = "query($amount: Decimal!) { paymentMethods(amount: $amount) { type } }"


@pytest.fixture
def receiver() -> Iterator[tuple[str, Receiver]]:
    thread, inbox = Receiver().start()
    yield thread.url, inbox
    thread.stop()


class Captured:
    """Every record logged in this process while a test runs, at DEBUG: `raw` as
    the code logged it (before the redaction safety net), `out` as the JSON
    handler writes it."""

    def __init__(self) -> None:
        self.raw: list[logging.LogRecord] = []
        self.out = io.StringIO()

    def raw_text(self, prefixes: tuple[str, ...] = ("cobro",)) -> str:
        """What our own loggers were handed, arguments merged, tracebacks included."""
        formatter = logging.Formatter("%(name)s %(message)s")
        return "\n".join(
            formatter.format(record) for record in self.raw if record.name.startswith(prefixes)
        )

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]


class _Keep(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(logging.makeLogRecord(record.__dict__))  # a copy, unmasked


@pytest.fixture
def captured() -> Iterator[Captured]:
    found = Captured()
    root = logging.getLogger()
    keep, out = _Keep(found.raw), logs.handler("json", found.out)
    level = root.level
    root.handlers.insert(0, keep)  # first: it sees each record before RedactSecrets
    root.addHandler(out)
    root.setLevel(logging.DEBUG)
    try:
        yield found
    finally:
        root.removeHandler(keep)
        root.removeHandler(out)
        root.setLevel(level)


async def every_method(http: httpx.AsyncClient, receiver_url: str) -> list[str]:
    """A merchant's day: a webhook endpoint, a payment of every method (confirmed by
    the checkout with its client secret), refunds by card and to a CLABE, a wrong
    key. Returns every secret it handled."""
    api = GraphQLClient(http, DEV_SECRET)
    endpoint = await register(api, f"{receiver_url}/hooks")
    wrong_key = "sk_test_" + os.urandom(12).hex()
    secrets = [DEV_SECRET, DEV_PUBLISHABLE, endpoint["secret"], wrong_key, "tok_visa"]
    secrets.append(CUSTOMER_CLABE)
    await GraphQLClient(http, DEV_PUBLISHABLE).data(METHODS, {"amount": "500.00"})
    denied = await api.as_key(wrong_key).post("{ apiKeys { last4 } }")
    assert denied["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    async def checkout(amount: str, method: str, **inputs: object) -> dict:
        intent = await create_intent(api, amount)
        secrets.append(intent["clientSecret"])
        payload = await confirm(api.as_key(intent["clientSecret"]), intent["id"], method, **inputs)
        assert payload["errors"] == [], payload["errors"]
        return payload["paymentIntent"]

    card = await checkout("500.00", "CARD", card={"token": "tok_visa"})
    assert card["status"] == "SUCCEEDED"
    oxxo = await checkout("250.00", "OXXO", oxxo={"customerName": "Ana"})
    await http.post(f"/sandbox/oxxo/{oxxo['nextAction']['reference']}/pay")
    spei = await checkout("300.00", "SPEI", spei={})
    secrets.append(spei["nextAction"]["clabe"])
    sent = await http.post(
        "/sandbox/spei/deposits", json={"clabe": spei["nextAction"]["clabe"], "amount": "300.00"}
    )
    assert sent.json()["webhook_status"] == 200
    crypto = await checkout("510.00", "CRYPTO", crypto={"asset": "USDC", "network": "polygon"})
    quote = crypto["nextAction"]
    await http.post(
        "/sandbox/crypto/deposits",
        json={"address": quote["address"], "amount": quote["cryptoAmount"]},
    )
    for refund in ({"id": card["id"]}, {"id": spei["id"], "clabe": CUSTOMER_CLABE}):
        done = (await api.data(REFUND, {"input": refund}))["refundPaymentIntent"]
        assert done["errors"] == [], done["errors"]
    return secrets


def leaks(text: str, secrets: list[str]) -> list[str]:
    return [secret for secret in secrets if secret in text]


async def test_no_secret_reaches_the_log(database_url, receiver, captured):
    url, inbox = receiver
    # A server of its own, from its start: its webhook endpoint goes with it (the
    # shared server would go on retrying a receiver that is gone).
    thread = start_server(database_url)
    try:
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as http:
            secrets = await every_method(http, url)
            await wait_for(lambda: len(inbox.events("/hooks")) >= 8)
    finally:
        thread.stop()
    lines = captured.lines()
    assert any(line.get("logger") == "cobro.access" for line in lines)
    # Not logged in the first place: what our code handed to logging ...
    assert leaks(captured.raw_text(), secrets) == []
    # ... and not in anything written, whoever logged it (DEBUG, every library).
    assert leaks(captured.out.getvalue(), secrets) == []


def test_the_search_finds_a_secret_that_was_logged(captured):
    """The test above can fail: a secret that is logged is found in the raw
    records, and the safety net masks it in what is written."""
    log = logging.getLogger("cobro.test")
    log.warning("oops: %s paid with %s into %s", "sk_test_abc123", "tok_visa", CUSTOMER_CLABE)
    secrets = ["sk_test_abc123", "tok_visa", CUSTOMER_CLABE]
    assert leaks(captured.raw_text(), secrets) == secrets
    assert leaks(captured.out.getvalue(), secrets) == []


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("key sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        ("key pk_test_TYooMQauvdEDq54NiTphI7jx", "pk_test_TYooMQauvdEDq54NiTphI7jx"),
        ("pi_3MtwBwLkdIwH_secret_YrKJUKribcBjcG8H", "_secret_YrKJUKribcBjcG8H"),
        ("signing with whsec_MfKQ9r8GKYqrTwjUPD8ILPZI", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZI"),
        ("card tok_mastercard", "tok_mastercard"),
        ("Authorization: Bearer abc.def", "abc.def"),
        ("POST /webhooks/stp?token=s3cr3t HTTP/1.1", "s3cr3t"),
        ("refund to 002010077777777771.", "002010077777777771"),
    ],
)
def test_the_safety_net_masks_each_kind_of_secret(text, hidden):
    masked = logs.redact(text)
    assert hidden not in masked
    assert "REDACTED" in masked or "7771" in masked


def test_the_safety_net_leaves_ids_and_amounts_alone():
    text = "intent pi_FZsCj1QJT7kspMHsiNHr6lKT of acct_LtEiGd4Ixnu: 500.00 MXN, ref 1234567"
    assert logs.redact(text) == text


async def test_json_lines_carry_the_request_context(http, captured):
    api = GraphQLClient(http, DEV_SECRET)
    answer = await http.post(
        "/graphql",
        json={
            "query": "mutation Create($input: CreatePaymentIntentInput!) { createPaymentIntent("
            "input: $input) { paymentIntent { id } errors { code } } }",
            "variables": {"input": {"amount": "120.00"}},
        },
        headers={"Authorization": f"Bearer {DEV_SECRET}", "X-Request-Id": "req-observe-1"},
    )
    assert answer.headers["x-request-id"] == "req-observe-1"
    intent = answer.json()["data"]["createPaymentIntent"]["paymentIntent"]
    generated = await http.get("/healthz")
    own_id = generated.headers["x-request-id"]
    assert own_id and own_id != "req-observe-1"
    refused = await http.get("/healthz", headers={"X-Request-Id": "spaces are not ok" + "x" * 200})
    assert refused.headers["x-request-id"] != "spaces are not ok" + "x" * 200
    await confirm(api, intent["id"], card={"token": "tok_visa"})
    refunded = await http.post(
        "/graphql",
        json={"query": REFUND, "variables": {"input": {"id": intent["id"]}}},
        headers={"Authorization": f"Bearer {DEV_SECRET}", "X-Request-Id": "req-refund-1"},
    )
    assert refunded.json()["data"]["refundPaymentIntent"]["errors"] == []

    def access_lines() -> list[dict]:
        return [line for line in captured.lines() if line["logger"] == "cobro.access"]

    # A request's access line is written as it ends, just after its answer went out.
    await wait_for(lambda: any(line.get("request_id") == "req-refund-1" for line in access_lines()))
    for line in captured.lines():
        assert {"time", "level", "logger", "message"} <= set(line)
    access = access_lines()
    [created] = [line for line in access if line.get("request_id") == "req-observe-1"]
    assert created["level"] == "info"
    assert created["message"] == "POST /graphql 200"
    assert created["merchant_id"].startswith("acct_")
    assert created["intent_id"] == intent["id"]
    assert (created["operation"], created["operation_type"], created["root_field"]) == (
        "Create",
        "mutation",
        "createPaymentIntent",
    )
    assert isinstance(created["duration_ms"], float) and created["duration_ms"] > 0
    assert created["time"].endswith("+00:00")
    assert [line["message"] for line in access if line.get("request_id") == own_id] == [
        "GET /healthz 200"
    ]
    [refund] = [line for line in access if line.get("request_id") == "req-refund-1"]
    assert refund["payout_id"].startswith("re_") and refund["intent_id"] == intent["id"]


def test_text_logs_stay_readable(captured):
    out = io.StringIO()
    handler = logs.handler("text", out)
    record = logging.LogRecord("cobro.test", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    token = logs.bind(logs.RequestContext("req-text-1", merchant_id="acct_1"))
    try:
        handler.handle(record)
    finally:
        logs.unbind(token)
    line = out.getvalue()
    assert "INFO cobro.test: hello you" in line
    assert "request_id=req-text-1" in line and "merchant_id=acct_1" in line
    with pytest.raises(ValueError):
        json.loads(line)


@pytest.mark.slow
async def test_cobro_serve_writes_json_lines_and_no_secret(database_url, tmp_path: Path, receiver):
    """`cobro serve` as production runs it, logging JSON at DEBUG: every line of its
    output parses, and the payment flow leaves no secret in it."""
    url, inbox = receiver
    log_file = tmp_path / "serve.log"
    process = serve_process(
        {
            "COBRO_DATABASE_URL": database_url,
            "COBRO_ENV": "test",
            "COBRO_LOG_FORMAT": "json",
            "COBRO_LOG_LEVEL": "debug",
        },
        log_file,
    ).start()
    try:
        async with httpx.AsyncClient(base_url=process.url, timeout=30) as http:
            secrets = await every_method(http, url)
            await wait_for(lambda: len(inbox.events("/hooks")) >= 8)
    finally:
        process.stop()
    text = log_file.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert {"uvicorn.error", "cobro.access"} <= {line["logger"] for line in lines}
    access = [line for line in lines if line["logger"] == "cobro.access"]
    assert all("request_id" in line and "duration_ms" in line for line in access)
    assert leaks(text, secrets) == []
