"""Traces are off by default and turned on by the standard OTEL_* variables alone
(app/tracing.py); on, spans reach the OTLP endpoint those variables name."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from app.tracing import Tracing, enabled
from tests.support.receiver import Receiver


def test_off_unless_an_exporter_is_named():
    assert not enabled({})
    assert not enabled({"OTEL_TRACES_EXPORTER": "none"})
    assert not enabled({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"})
    assert enabled({"OTEL_TRACES_EXPORTER": "otlp"})
    assert enabled({"OTEL_TRACES_EXPORTER": "console, otlp", "OTEL_SDK_DISABLED": "false"})
    assert Tracing.from_environ({"OTEL_SERVICE_NAME": "cobro"}) is None


def test_an_exporter_this_install_lacks_stops_the_start():
    with pytest.raises(ValueError, match=r"'zipkin'.*otlp"):
        Tracing.from_environ({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(ValueError, match="otlp_proto_grpc"):
        Tracing.from_environ(
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
        )


async def test_otlp_spans_reach_the_endpoint_the_variables_name(monkeypatch):
    # given: a collector's OTLP/HTTP endpoint, named the standard way
    server, collector = Receiver().start()
    try:
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", server.url)
        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
        monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
        tracing = Tracing.from_environ()
        assert tracing is not None

        # when
        with tracing.tracer.start_as_current_span("hello"):
            pass
        await tracing.shutdown()  # flushes the batch
    finally:
        server.stop()

    # then
    [sent] = [r for r in collector.received if r.path == "/v1/traces"]
    assert sent.headers["content-type"] == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(sent.body)
    [resource_spans] = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "cobro"
    assert resource["deployment.environment"] == "test"
    assert [s.name for ss in resource_spans.scope_spans for s in ss.spans] == ["hello"]
