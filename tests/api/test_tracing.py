"""Traces (app/tracing.py): one trace from a PSP's webhook to the subscriber's push,
across the outbox and a real Redis; a confirmation traced down to the PSP's own
server; nothing installed when traces are off."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.db.engine import Database
from app.db.repositories import outbox
from app.events.messages import Change, decode, encode
from app.http.observe import Observe
from app.main import create_app
from app.tracing import Tracing
from tests.conftest import DEV_SECRET, make_settings, over_http
from tests.support.graphql import GraphQLClient, confirm, create_intent
from tests.support.server import ServerThread, free_port
from tests.support.ws import INTENT_UPDATED, GraphQLWebSocket

WEBHOOK_SPAN = "POST /webhooks/{provider}"


@dataclass
class Traced:
    url: str
    server: ServerThread
    exporter: InMemorySpanExporter
    http: httpx.AsyncClient

    @property
    def api(self) -> GraphQLClient:
        return GraphQLClient(self.http, DEV_SECRET)

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    async def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        """The finished spans whose parent is `parent`, once there is one (a server's
        span ends a moment after its client has the answer)."""
        for _ in range(100):
            found = [
                s
                for s in self.spans()
                if s.parent is not None and s.parent.span_id == parent.context.span_id
            ]
            if found:
                return found
            await asyncio.sleep(0.05)
        return []

    async def chain(self, span: ReadableSpan) -> list[ReadableSpan]:
        """`span` and its ancestors up to the trace's root, once they have all ended
        (the relay's span ends after the push it caused may have)."""
        for _ in range(100):
            try:
                return chain(self.spans(), span)
            except LookupError:
                await asyncio.sleep(0.05)
        return chain(self.spans(), span)

    async def span(self, name: str, **attributes: Any) -> ReadableSpan:
        """The one finished span so named with these attributes, waiting for it a
        little (a push's span ends once the stream is asked for more)."""
        for _ in range(100):
            found = [
                s
                for s in self.spans()
                if s.name == name
                and all((s.attributes or {}).get(k) == v for k, v in attributes.items())
            ]
            if found:
                assert len(found) == 1, found
                return found[0]
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"no span {name} {attributes}: {sorted({s.name for s in self.spans()})}"
        )


def chain(spans: list[ReadableSpan], span: ReadableSpan) -> list[ReadableSpan]:
    """`span` and its ancestors, up to the trace's root, by parent links."""
    by_id = {s.context.span_id: s for s in spans}
    found = [span]
    while found[-1].parent is not None:
        parent = by_id.get(found[-1].parent.span_id)
        if parent is None:
            raise LookupError(f"{found[-1].name}'s parent is not among the spans")
        found.append(parent)
    return found


@pytest.fixture
def traced_server(
    database_url: str, redis_server: Any
) -> Iterator[tuple[str, ServerThread, InMemorySpanExporter]]:
    """A real API server on a real Redis, tracing into an in-memory exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(database_url, **over_http(url), redis_url=redis_server.url)
    server = ServerThread(create_app(settings, tracing=Tracing(provider)), port).start()
    try:
        yield url, server, exporter
    finally:
        server.stop()


@pytest.fixture
async def traced(
    traced_server: tuple[str, ServerThread, InMemorySpanExporter],
) -> AsyncIterator[Traced]:
    url, server, exporter = traced_server
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        yield Traced(url, server, exporter, http)


async def test_one_trace_from_the_psps_webhook_to_the_subscribers_push(traced):
    # given: an intent waiting for 3-D Secure, and a subscriber that has its snapshot
    intent = await create_intent(traced.api)
    await confirm(traced.api, intent["id"], card={"token": "tok_threeDSecureRequired"})
    async with GraphQLWebSocket(traced.url, DEV_SECRET) as ws:
        await ws.subscribe(INTENT_UPDATED, {"id": intent["id"]})
        assert (await ws.next_data())["paymentIntentUpdated"]["version"] == 2

        # when: the customer passes 3-D Secure and Stripe's webhook says so
        await traced.http.post(f"/sandbox/3ds/{intent['id']}/complete")
        pushed = (await ws.next_data())["paymentIntentUpdated"]
        assert (pushed["status"], pushed["version"]) == ("SUCCEEDED", 3)
        assert (await ws.receive())["type"] == "complete"

    # then: the push continues the webhook's trace, link by link
    push = await traced.span("subscription push", **{"cobro.intent_id": intent["id"]})
    path = await traced.chain(push)
    spans = traced.spans()
    assert [s.name for s in path] == [
        "subscription push",
        "outbox publish",
        "outbox relay",
        "ProviderEventService.receive",
        WEBHOOK_SPAN,
    ]
    assert [s.kind for s in path] == [
        SpanKind.CONSUMER,
        SpanKind.PRODUCER,
        SpanKind.INTERNAL,
        SpanKind.INTERNAL,
        SpanKind.SERVER,
    ]
    webhook = path[-1]
    assert webhook.parent is None  # the webhook route starts the trace
    assert (push.attributes or {})["cobro.version"] == 3
    assert {s.context.trace_id for s in path} == {webhook.context.trace_id}

    # the Redis PUBLISH is the publish span's other child
    publish = path[1]
    children = [s for s in spans if s.parent and s.parent.span_id == publish.context.span_id]
    assert sorted(str((s.attributes or {}).get("db.system", s.name)) for s in children) == [
        "redis",
        "subscription push",
    ]

    # the change's SQL ran under the service call, in the same transaction's trace
    receive = path[3]
    statements = [
        str((s.attributes or {}).get("db.statement", ""))
        for s in spans
        if receive in chain(spans, s)[1:]
    ]
    assert any(sql.startswith("INSERT INTO outbox") for sql in statements), statements
    assert any(sql.startswith("UPDATE payment_intents") for sql in statements), statements


async def test_a_confirmation_is_one_trace_down_to_the_psps_server(traced):
    # given
    intent = await create_intent(traced.api)

    # when
    payload = await confirm(traced.api, intent["id"], card={"token": "tok_visa"})
    assert payload["paymentIntent"]["status"] == "SUCCEEDED"

    # then: GraphQL request -> operation -> service call -> PSP call -> the PSP's server
    operation = await traced.span("mutation confirmPaymentIntent")
    service = await traced.span("ConfirmService.confirm")
    psp_call = await traced.span("POST", **{"cobro.peer": "stripe"})
    assert psp_call.kind is SpanKind.CLIENT
    at_psp = await traced.children(psp_call)
    assert [s.kind for s in at_psp] == [SpanKind.SERVER]  # the traceparent travelled
    path = [s.name for s in await traced.chain(at_psp[0])]
    assert path[1:] == [
        "POST",
        service.name,
        operation.name,
        "POST /graphql",
    ]
    assert (await traced.chain(operation))[-1].parent is None
    assert (operation.attributes or {})["graphql.operation.type"] == "mutation"
    # the document and its variables (a card token, a client secret) are nowhere
    for span in traced.spans():
        for value in (span.attributes or {}).values():
            assert "tok_visa" not in str(value), span.name


async def test_a_webhook_token_in_the_url_reaches_no_span(traced):
    # when: STP's callback URL carries its token (app/http/webhooks.py)
    answer = await traced.http.post("/webhooks/stp?token=tok-in-the-url-42", content=b"{}")
    assert answer.status_code < 500

    # then
    span = await traced.span(WEBHOOK_SPAN)
    for recorded in traced.spans():
        for value in (recorded.attributes or {}).values():
            assert "tok-in-the-url-42" not in str(value), recorded.name
    assert (span.attributes or {})["http.route"] == "/webhooks/{provider}"


def test_traces_off_install_nothing(settings):
    # given: no OTEL_* variables (the default)
    app = create_app(settings)
    runtime = app.state.runtime

    # then: no middleware, no wrapper, no tracer anywhere
    assert runtime.tracing is None
    assert type(app.build_middleware_stack()) is Observe
    intents = runtime.services.intents
    assert intents.create.__func__ is type(intents).create
    assert runtime.relay.tracer is None
    assert runtime.services.live.tracer is None
    assert runtime.worker.tracer is None
    # no listener on the engines, so app/db's prepared statements stay on
    assert not SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry
    for provider in runtime.providers.values():
        assert not getattr(provider.http.client, "_is_instrumented_by_opentelemetry", False)


async def test_traces_off_carry_no_traceparent(api, server):
    # when: a change is written by a server that does not trace
    intent = await create_intent(api)

    # then: its outbox row and its broker message carry no trace context
    database = Database(server.settings.database_url)
    try:
        async with database.read() as conn:
            rows = await outbox.versions_between(conn, intent["id"], 0)
    finally:
        await database.dispose()
    assert [row.traceparent for row in rows] == [None]
    message = encode(Change.from_entry(rows[0]))
    assert b"traceparent" not in message
    assert decode(message).traceparent is None
