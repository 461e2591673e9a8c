"""/metrics after real traffic: one test per metric family an operator alerts on,
each scraping a real server over HTTP and reading the series it should have moved.
Counters and histograms are the process's (several test servers share them), so
tests compare a scrape before with one after; gauges read at scrape time are each
server's own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.clock import Clock
from app.db.engine import Database
from app.db.repositories import outbox
from app.metrics import ERROR_CODES
from app.worker import Job, Worker
from tests.conftest import DEV_SECRET, start_server
from tests.support.graphql import GraphQLClient, confirm, create_intent
from tests.support.receiver import Receiver
from tests.support.server import ServerThread
from tests.support.ws import GraphQLWebSocket

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: httpx.AsyncClient) -> Samples:
    answer = await http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def label_values(samples: Samples, prefix: str) -> set[str]:
    return {v for (name, labels) in samples if name.startswith(prefix) for _, v in labels}


async def eventually(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.1)


@pytest.fixture
async def own(database_url) -> AsyncIterator[tuple[ServerThread, httpx.AsyncClient]]:
    """A server of this test's own (its gauges are its own), retrying fast."""
    thread = start_server(
        database_url,
        breaker_fail_max=1,
        webhook_retry_base_seconds=0.1,
        delivery_poll_seconds=0.05,
    )
    try:
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as http:
            yield thread, http
    finally:
        thread.stop()


@pytest.fixture
def receiver() -> Iterator[tuple[str, Receiver]]:
    thread, inbox = Receiver().start()
    yield thread.url, inbox
    thread.stop()


async def test_request_latency_by_route_and_by_graphql_root_field(http, api):
    before = await scrape(http)
    await api.data("query MyProviders { providers { name } }")
    await http.get("/healthz")
    await http.post("/webhooks/nobody", content=b"{}")
    after = await scrape(http)
    name = "cobro_http_request_duration_seconds_count"
    graphql = {"route": "/graphql", "method": "POST", "status": "200"}
    assert value(after, name, **graphql) >= value(before, name, **graphql) + 1
    health = {"route": "/healthz", "method": "GET", "status": "200"}
    assert value(after, name, **health) == value(before, name, **health) + 1
    hooks = {"route": "/webhooks/{provider}", "method": "POST"}
    assert any(
        labels >= frozenset(hooks.items()) and n == name and after[(n, labels)] > 0
        for (n, labels) in after
    )
    op = "cobro_graphql_operation_duration_seconds_count"
    providers = {"operation_type": "query", "operation": "providers"}
    assert value(after, op, **providers) == value(before, op, **providers) + 1
    assert value(after, "cobro_graphql_operation_duration_seconds_sum", **providers) > 0


async def test_label_values_stay_bounded_whatever_the_client_sends(http, api):
    before = await scrape(http)
    names = ["pi_unbounded_secret_x1", "Op_9f8e7d6c5b4a"]
    await api.post(f"query {names[0]} {{ providers {{ name }} }}")  # a client's own name
    await api.post(f"query {names[1]} {{ nosuchfield }}")  # fails validation
    await http.post("/graphql", json={"query": "{ providers { name"})  # fails to parse
    await http.get("/sandbox-nope/pi_12345")
    after = await scrape(http)
    seen = label_values(after, "cobro_")
    assert not [v for v in seen if any(n in v for n in names) or "pi_12345" in v]
    op = "cobro_graphql_operation_duration_seconds_count"
    assert value(after, op, operation_type="query", operation="invalid") == (
        value(before, op, operation_type="query", operation="invalid") + 1
    )
    assert value(after, op, operation_type="unknown", operation="invalid") >= (
        value(before, op, operation_type="unknown", operation="invalid") + 1
    )
    other = {"route": "other", "method": "GET", "status": "404"}
    name = "cobro_http_request_duration_seconds_count"
    assert value(after, name, **other) == value(before, name, **other) + 1


async def test_errors_by_code(http, api):
    before = await scrape(http)
    bad = await api.data(
        'mutation { createPaymentIntent(input: {amount: "-5.00"}) { errors { code } } }'
    )
    assert bad["createPaymentIntent"]["errors"][0]["code"] == "INVALID_AMOUNT"
    denied = await api.as_key("sk_test_nobody").post("{ apiKeys { last4 } }")
    assert denied["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    after = await scrape(http)
    name = "cobro_errors_total"
    user = {"kind": "user", "code": "INVALID_AMOUNT"}
    assert value(after, name, **user) == value(before, name, **user) + 1
    graphql = {"kind": "graphql", "code": "UNAUTHENTICATED"}
    assert value(after, name, **graphql) >= value(before, name, **graphql) + 1


def test_every_error_code_has_its_own_label():
    """A code missing from the allow-list would be counted as OTHER."""
    from app.domain import errors

    codes = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.CobroError)
    }
    assert codes <= ERROR_CODES


async def test_psp_call_latency_and_outcome_by_provider(http, api):
    before = await scrape(http)
    paid = await create_intent(api)
    await confirm(api, paid["id"], card={"token": "tok_visa"})
    declined = await create_intent(api)
    await confirm(api, declined["id"], card={"token": "tok_chargeDeclined"})
    after = await scrape(http)
    # A decline is an answer: the call itself went fine (failures: the circuit's test).
    name = "cobro_provider_call_duration_seconds"
    labels = {"provider": "stripe", "outcome": "ok"}
    assert value(after, f"{name}_count", **labels) == value(before, f"{name}_count", **labels) + 2
    assert value(after, f"{name}_sum", **labels) > value(before, f"{name}_sum", **labels)


async def test_circuit_state_per_provider(own):
    _, http = own
    api = GraphQLClient(http, DEV_SECRET)
    closed = await scrape(http)
    assert value(closed, "cobro_circuit_state", provider="stripe", state="CLOSED") == 1
    assert value(closed, "cobro_circuit_state", provider="stripe", state="OPEN") == 0
    await http.post("/sandbox/providers/stripe/faults", json={"mode": "down"})
    intent = await create_intent(api)
    # A card tokenized at both PSPs (a lone token would not fail over).
    both = [{"provider": p, "token": "tok_visa"} for p in ("stripe", "conekta")]
    payload = await confirm(api, intent["id"], card={"tokens": both})
    assert payload["paymentIntent"]["provider"] == "conekta"  # failed over
    opened = await scrape(http)
    assert value(opened, "cobro_circuit_state", provider="stripe", state="OPEN") == 1
    assert value(opened, "cobro_circuit_state", provider="stripe", state="CLOSED") == 0
    assert value(opened, "cobro_circuit_state", provider="conekta", state="CLOSED") == 1
    name = "cobro_provider_call_duration_seconds_count"
    assert value(opened, name, provider="stripe", outcome="unavailable") >= 1


async def test_open_subscriptions_by_transport(server, http, api):
    intent = await create_intent(api)
    query = "subscription($id: ID!) { paymentIntentUpdated(id: $id) { status } }"
    name = "cobro_subscriptions_open"
    before = await scrape(http)
    for transport in ("graphql-transport-ws", "graphql-ws"):
        async with GraphQLWebSocket(server.url, DEV_SECRET, protocol=transport) as ws:
            await ws.subscribe(query, {"id": intent["id"]})
            await ws.next_data()
            during = await scrape(http)
            assert value(during, name, transport=transport) == (
                value(before, name, transport=transport) + 1
            ), transport

        async def closed(transport=transport) -> bool:
            now = await scrape(http)
            return value(now, name, transport=transport) == value(before, name, transport=transport)

        assert await eventually(closed), transport


async def test_outbox_lag_is_the_age_of_the_oldest_unpublished_row(own):
    thread, http = own
    fresh = await scrape(http)
    assert value(fresh, "cobro_metrics_database_up") == 1
    assert value(fresh, "cobro_outbox_lag_seconds") == 0
    # A row its writer never published, written two minutes ago and still leased.
    db = Database(thread.settings.database_url)
    try:
        now = Clock().now()
        async with db.transaction() as conn:
            await outbox.append(
                conn,
                intent_id="pi_stuck",
                merchant_id="acct_stuck",
                version=1,
                event_type="payment_intent.created",
                payload={},
                now=now - timedelta(minutes=2),
                lease_until=now + timedelta(hours=1),
            )
    finally:
        await db.dispose()
    await asyncio.sleep(1.1)  # the gauges are read at most once a second
    stuck = await scrape(http)
    assert value(stuck, "cobro_outbox_unpublished") == 1
    assert 120 <= value(stuck, "cobro_outbox_lag_seconds") < 180


async def test_webhook_deliveries_by_result_and_oldest_pending(own, receiver):
    _, http = own
    api = GraphQLClient(http, DEV_SECRET)
    url, inbox = receiver
    inbox.fail_first["/flaky"] = 1
    inbox.fail_first["/down"] = 10_000
    create = """mutation($input: CreateWebhookEndpointInput!) {
      createWebhookEndpoint(input: $input) { errors { code } } }"""
    for path in ("/flaky", "/down"):
        await api.data(create, {"input": {"url": url + path, "events": ["payment_intent.created"]}})
    before = await scrape(http)
    await create_intent(api)
    name = "cobro_webhook_deliveries_total"

    async def settled() -> Samples | None:
        now = await scrape(http)
        delivered = value(now, name, result="delivered") > value(before, name, result="delivered")
        return now if delivered and inbox.events("/flaky") else None

    after = await eventually(settled)
    assert after is not None
    assert value(after, name, result="retrying") >= value(before, name, result="retrying") + 2
    await asyncio.sleep(1.1)
    owed = await scrape(http)
    assert value(owed, "cobro_webhook_deliveries_pending") == 1  # /down's
    assert value(owed, "cobro_webhook_delivery_oldest_pending_age_seconds") >= 1


async def test_background_job_runs_failures_and_durations(http):
    calls = 0
    four = asyncio.Event()

    async def boom() -> None:
        nonlocal calls
        calls += 1
        if calls >= 4:
            four.set()
        if calls % 2:
            raise RuntimeError("a job that fails every other run")

    before = await scrape(http)
    task = asyncio.create_task(Worker([Job("metrics-test", 0.01, boom)]).run())
    try:
        await asyncio.wait_for(four.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    after = await scrape(http)
    runs = "cobro_job_runs_total"
    for result in ("ok", "failed"):
        assert value(after, runs, job="metrics-test", result=result) >= 2 + value(
            before, runs, job="metrics-test", result=result
        )
    assert value(after, "cobro_job_duration_seconds_count", job="metrics-test") >= 4
    assert value(after, "cobro_job_last_success_timestamp_seconds", job="metrics-test") > 0
    # The server's own embedded worker runs its jobs too.
    assert value(after, runs, job="webhook-delivery", result="ok") > 0


async def test_database_pool_in_use(http, databases):
    samples = await scrape(http)
    most = value(samples, "cobro_db_pool_max")
    assert most == (20 if databases.is_postgres else 1)
    assert ("cobro_db_pool_in_use", frozenset()) in samples
    assert 0 <= value(samples, "cobro_db_pool_in_use") <= most


@pytest.mark.slow
async def test_cobro_worker_exports_its_own_metrics(database_url, tmp_path):
    """`cobro worker` serves nothing else, so it has a metrics port of its own."""
    from tests.support.process import worker_process
    from tests.support.server import free_port

    port = free_port()
    worker = worker_process(
        {
            "COBRO_DATABASE_URL": database_url,
            "COBRO_ENV": "test",
            "COBRO_HOST": "127.0.0.1",
            "COBRO_METRICS_PORT": str(port),
            "COBRO_LOG_FORMAT": "json",
        },
        tmp_path / "worker.log",
    ).start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def scraped() -> Samples | None:
                try:
                    samples = await scrape(http)
                except httpx.TransportError:
                    return None
                runs = "cobro_job_runs_total"
                return samples if value(samples, runs, job="expiry", result="ok") > 0 else None

            samples = await eventually(scraped, timeout=30)
            assert samples is not None, (tmp_path / "worker.log").read_text()
            assert value(samples, "cobro_metrics_database_up") == 1
            assert value(samples, "cobro_circuit_state", provider="stripe", state="CLOSED") == 1
            assert (await http.post("/metrics")).status_code == 405
    finally:
        worker.stop()
