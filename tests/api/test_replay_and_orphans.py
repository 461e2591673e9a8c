"""Replay is exactly replay, a reused idempotency key is an unknown outcome, and
reconciliation finds charges Cobro does not hold (issue 10).

A real API server with its sandbox over loopback HTTP plays the process that first
sent a payment; a second runtime on the same database, configured differently (no
public URL, as a `cobro worker` started without COBRO_PUBLIC_URL), plays the worker
that replays and reconciles. Charges are counted at the PSP through Stripe's search.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import quote_plus, urlencode

import httpx
import pytest
from sqlalchemy import select

from app.db.repositories import attempts as attempt_rows
from app.db.repositories.attempts import Attempt
from app.db.tables import ProviderPayment
from app.main import Runtime, build_runtime
from providers.sandbox import faults
from providers.stripe_wire import encode_form
from tests.api.test_merchant_webhooks import register
from tests.conftest import DEV_SECRET, start_server
from tests.support.graphql import GET, GraphQLClient, confirm, create_intent
from tests.support.receiver import Receiver
from tests.support.server import ServerThread

# Which request headers decide what a PSP does with a payment request.
HEADERS = ("content-type", "idempotency-key", "stripe-version")


@pytest.fixture
async def cobro(
    database_url,
) -> AsyncIterator[tuple[ServerThread, GraphQLClient, httpx.AsyncClient]]:
    """The API process: its own jobs slowed down so that the test drives the worker."""
    thread = start_server(
        database_url,
        provider_timeout_seconds=0.5,
        reconcile_after_seconds=3600,
        reconcile_every_seconds=3600,
        delivery_poll_seconds=0.05,
    )
    try:
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as http:
            yield thread, GraphQLClient(http, DEV_SECRET), http
    finally:
        thread.stop()


@asynccontextmanager
async def worker(thread: ServerThread, **overrides: Any) -> AsyncIterator[Runtime]:
    """Another process on the same database and PSPs, with its own settings (its jobs
    are run by the test, one at a time)."""
    settings = thread.settings.model_copy(
        update={"public_url": None, "reconcile_after_seconds": 0, **overrides}
    )
    runtime = build_runtime(settings)
    try:
        yield runtime
        # What this process committed goes out as its relay would send it: merchant
        # webhooks are queued for whichever worker delivers them.
        await runtime.relay.publish_backlog()
    finally:
        for close in runtime.closers:
            await close()


def runtime_of(thread: ServerThread) -> Runtime:
    runtime: Runtime = thread.app.state.runtime
    return runtime


def record_sent(runtime: Runtime) -> list[tuple[str, str, bytes, dict[str, str | None]]]:
    """What this runtime's Stripe adapter puts on the wire, as it leaves."""
    sent: list[tuple[str, str, bytes, dict[str, str | None]]] = []

    async def hook(request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path.endswith("/v1/payment_intents"):
            headers = {name: request.headers.get(name) for name in HEADERS}
            sent.append((request.method, request.url.path, request.content, headers))

    runtime.providers["stripe"].http.client.event_hooks["request"].append(hook)  # type: ignore[attr-defined]
    return sent


async def charges(thread: ServerThread, http: httpx.AsyncClient, intent_id: str) -> list[dict]:
    """The PaymentIntents Stripe charged for our intent (its search, over HTTP)."""
    key = thread.settings.provider("stripe").api_key.get_secret_value()
    response = await http.get(
        "/sandbox/stripe/v1/payment_intents/search",
        params={"query": f"metadata['cobro_intent_id']:'{intent_id}'", "limit": 100},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    return [pi for pi in response.json()["data"] if pi["status"] == "succeeded"]


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def attempts_of(runtime: Runtime, intent_id: str) -> list[tuple[str, str | None]]:
    table = ProviderPayment.__table__
    async with runtime.services.db.read() as conn:
        rows = await conn.execute(
            select(table.c.status, table.c.error_code)
            .where(table.c.intent_id == intent_id)
            .order_by(table.c.created_at)
        )
        return [(row.status, row.error_code) for row in rows]


async def sent_by_an_earlier_process(
    thread: ServerThread, http: httpx.AsyncClient, runtime: Runtime, intent: dict, **extra: Any
) -> Attempt:
    """An attempt recorded as the code before this change recorded it (its fields, not
    its bytes), and the request a process with another public URL sent for it: Stripe
    charged the card, and that process died before it stored the answer."""
    attempt_id = f"pp_earlier{int(time.monotonic() * 1e6)}"
    request = {
        "intent_id": intent["id"],
        "amount": 30_000,
        "currency": "MXN",
        "method": "CARD",
        "card_token": "tok_visa",
    }
    attempt = Attempt(
        attempt_id, intent["id"], "stripe", "CARD", f"cobro-{attempt_id}", "pending", None, request
    )
    async with runtime.services.db.transaction() as conn:
        await attempt_rows.insert_attempt(conn, attempt, runtime.services.clock.now())
    params = {
        "amount": 30_000,
        "currency": "mxn",
        "confirm": True,
        "metadata": {"cobro_intent_id": intent["id"]},
        "payment_method_types": ["card"],
        "payment_method_data": {"type": "card", "card": {"token": "tok_visa"}},
        "return_url": f"http://another-process.internal/payments/{intent['id']}/return",
    }
    key = thread.settings.provider("stripe").api_key.get_secret_value()
    response = await http.post(
        "/sandbox/stripe/v1/payment_intents",
        content=urlencode(encode_form(params)).encode(),
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Idempotency-Key": attempt.idempotency_key,
        },
    )
    assert response.json()["status"] == "succeeded"
    return attempt


async def test_a_worker_with_another_public_url_replays_the_same_bytes_and_charges_once(
    cobro, monkeypatch
):
    thread, api, http = cobro
    monkeypatch.setattr(faults, "SLOW_SECONDS", 1.5)  # longer than the 0.5 s timeout
    first_sent = record_sent(runtime_of(thread))
    intent = await create_intent(api, "300.00")
    # given: the card confirmation reached Stripe, which charged it, but its answer never
    # came back to the API process (it timed out here; a SIGKILL does the same)
    await http.post("/sandbox/providers/stripe/faults", json={"mode": "slow"})
    lost = await confirm(api, intent["id"], card={"token": "tok_visa"})
    assert lost["errors"][0]["code"] == "PROVIDER_UNAVAILABLE"
    await http.post("/sandbox/providers/stripe/faults", json={"mode": "ok"})
    await eventually(lambda: _count(charges(thread, http, intent["id"]), 1))

    # when: a worker started without COBRO_PUBLIC_URL replays the pending attempt
    async with worker(thread) as other:
        assert other.settings.base_url != thread.settings.base_url
        replayed = record_sent(other)
        assert await other.services.confirm.recover_stale(timedelta(0)) == 1

    # then: it sent the very bytes first sent, and the first charge is the payment
    assert len(first_sent) == len(replayed) == 1
    assert replayed == first_sent
    assert quote_plus(thread.url).encode() in replayed[0][2]  # the first process's return URL
    paid = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]
    assert (paid["status"], paid["amountReceived"]["amount"]) == ("SUCCEEDED", "300.00")
    again = await confirm(api, intent["id"], card={"token": "tok_visa"})
    assert again["errors"][0]["code"] == "INVALID_STATE"
    assert len(await charges(thread, http, intent["id"])) == 1


async def test_a_key_used_with_other_parameters_stays_unknown_until_a_search_finds_it(cobro):
    thread, api, http = cobro
    intent = await create_intent(api, "300.00")
    async with worker(thread) as other:
        await sent_by_an_earlier_process(thread, http, other, intent)

        # when: the customer retries; the replay is not what Stripe first got
        retried = await confirm(api, intent["id"], card={"token": "tok_visa"})
        retried_again = await confirm(api, intent["id"], card={"token": "tok_visa"})

        # then: the outcome is unknown; nothing else is tried, nothing is charged again
        for payload in (retried, retried_again):
            assert payload["errors"][0]["code"] == "PROVIDER_UNAVAILABLE"
        waiting = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]
        assert waiting["status"] == "REQUIRES_PAYMENT_METHOD"
        assert await attempts_of(other, intent["id"]) == [("pending", "IDEMPOTENCY_MISMATCH")]
        errors = [e["data"] for e in waiting["events"] if e["type"] == "provider.error"]
        assert errors[0]["code"] == "IDEMPOTENCY_MISMATCH" and errors[0]["outcome_unknown"]
        assert len(await charges(thread, http, intent["id"])) == 1
        # the stale-attempt job does not keep replaying what only a search can answer
        assert await other.services.confirm.recover_stale(timedelta(0)) == 0

        # when: reconciliation runs, it searches Stripe for the intent
        assert await other.services.reconciliation.run_once() == 1

    paid = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]
    assert (paid["status"], paid["provider"], paid["amountReceived"]["amount"]) == (
        "SUCCEEDED",
        "stripe",
        "300.00",
    )
    assert len(await charges(thread, http, intent["id"])) == 1


async def test_a_charge_for_an_attempt_marked_failed_settles_the_waiting_intent(cobro):
    thread, api, http = cobro
    intent = await create_intent(api, "300.00")
    async with worker(thread) as other:
        attempt = await sent_by_an_earlier_process(thread, http, other, intent)
        await _mark_failed(other, attempt)
        assert await other.services.reconciliation.run_once() == 1
        assert await attempts_of(other, intent["id"]) == [("succeeded", None)]

    paid = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]
    assert (paid["status"], paid["amountReceived"]["amount"]) == ("SUCCEEDED", "300.00")
    assert paid["amountRefunded"]["amount"] == "0.00"
    assert len(await charges(thread, http, intent["id"])) == 1


async def test_a_second_charge_is_recorded_and_refunded_with_audit_and_webhooks(cobro):
    thread, api, http = cobro
    receiver_thread, inbox = Receiver().start()
    try:
        await register(api, f"{receiver_thread.url}/hooks")
        intent = await create_intent(api, "300.00")
        async with worker(thread) as other:
            # given: the incident's end state: an attempt that charged the card was
            # marked failed, and the customer's retry charged it a second time
            attempt = await sent_by_an_earlier_process(thread, http, other, intent)
            await _mark_failed(other, attempt)
            paid = await confirm(api, intent["id"], card={"token": "tok_visa"})
            assert paid["paymentIntent"]["status"] == "SUCCEEDED"
            assert len(await charges(thread, http, intent["id"])) == 2

            # when: reconciliation searches Stripe
            assert await other.services.reconciliation.run_once() == 1
            assert await other.services.reconciliation.run_once() == 0  # found once

        after = (await api.data(GET, {"id": intent["id"]}))["paymentIntent"]
        assert after["status"] == "SUCCEEDED"
        assert (after["amountReceived"]["amount"], after["amountRefunded"]["amount"]) == (
            "600.00",
            "300.00",
        )
        types = [e["type"] for e in after["events"]]
        assert types[-3:] == ["payment.extra", "refund.requested", "refund.succeeded"]
        extra = next(e["data"] for e in after["events"] if e["type"] == "payment.extra")
        assert extra["attempt"] == attempt.id and extra["amount"] == "300.00"

        def kinds(prefix: str = "payment_intent.") -> list[str]:
            return [e["type"] for e in inbox.events("/hooks") if e["type"].startswith(prefix)]

        await eventually(lambda: _true(len(kinds()) >= 4 and len(kinds("refund.")) >= 2), 30)
        assert kinds()[-2:] == ["payment_intent.late_payment", "payment_intent.refunded"]
        assert kinds("refund.") == ["refund.created", "refund.succeeded"]  # the refund itself
        # a refund the merchant asks for later goes to the charge that paid, not the extra
        refund = await api.data(REFUND, {"input": {"id": intent["id"]}})
        assert refund["refundPaymentIntent"]["errors"] == []
    finally:
        receiver_thread.stop()


REFUND = """
mutation($input: RefundPaymentIntentInput!) {
  refundPaymentIntent(input: $input) {
    paymentIntent { amountRefunded { amount } }
    errors { code message }
  }
}
"""


async def _mark_failed(runtime: Runtime, attempt: Attempt) -> None:
    """What confirmation records for a request Stripe refused on its merits (as it took
    the reused key before): error, with a search for what the key may have done."""
    now = runtime.services.clock.now()
    async with runtime.services.db.transaction() as conn:
        await attempt_rows.finish(
            conn,
            attempt.id,
            status="error",
            now=now,
            error_code="INVALID_REQUEST",
            error_message="Keys for idempotent requests can only be used with the same...",
            search_after=now,
        )


async def _count(found: Any, expected: int) -> bool:
    return len(await found) == expected


async def _true(value: bool) -> bool:
    return value
