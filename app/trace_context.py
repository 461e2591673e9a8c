"""The trace context Cobro carries itself, and the few spans it makes by hand.

Used on the hot path whether traces are on or off (app/tracing.py says how they are
turned on), so each helper costs next to nothing when nothing is traced: reading the
current span's context is a context-variable lookup, and the span makers are only
called by code that was given a tracer.

A change's trace crosses two gaps no instrumentation sees: from the transaction that
wrote it to the relay that publishes it (maybe in another process, after a crash),
and from the broker to each subscriber. The outbox row and the broker's message
carry the W3C traceparent across both.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from app.domain.errors import CobroError

_W3C = TraceContextTextMapPropagator()
_TRACEPARENT = "traceparent"


def traceparent() -> str | None:
    """The current span's context as a W3C traceparent, None where nothing is traced."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get(_TRACEPARENT)


def context_of(value: str | None) -> Context | None:
    """The context a stored or received traceparent continues (None: start afresh)."""
    if not value:
        return None
    context = _W3C.extract({_TRACEPARENT: value})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def trace_calls(service: object, tracer: Tracer) -> None:
    """Each public coroutine method of `service` in a span named Class.method, made
    current so that its SQL, PSP calls and outbox rows hang under it. Installed on the
    instance (the class and every other instance stay as they were)."""
    cls = type(service)
    for name, _ in inspect.getmembers(cls, inspect.iscoroutinefunction):
        if not name.startswith("_"):
            setattr(
                service, name, _traced(getattr(service, name), f"{cls.__name__}.{name}", tracer)
            )


def traced_job(
    name: str, run: Callable[[], Awaitable[object]], tracer: Tracer
) -> Callable[[], Awaitable[object]]:
    """A background job's run as the root of its own trace."""
    return _traced(run, f"job {name}", tracer, new_trace=True)


def _traced(
    call: Callable[..., Awaitable[Any]], span_name: str, tracer: Tracer, *, new_trace: bool = False
) -> Callable[..., Awaitable[Any]]:
    root = Context() if new_trace else None

    @functools.wraps(call)
    async def in_span(*args: Any, **kwargs: Any) -> Any:
        with tracer.start_as_current_span(
            span_name, context=root, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                return await call(*args, **kwargs)
            except CobroError as error:
                # The caller's mistake or a known condition: its code, not a failure.
                span.set_attribute("cobro.error_code", error.code)
                raise
            except Exception as error:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                raise

    return in_span


def continue_trace(
    tracer: Tracer,
    name: str,
    parent: str | None,
    kind: SpanKind,
    attributes: Mapping[str, str | int],
) -> Span | None:
    """A span (not made current) continuing the trace `parent` names; None when it
    names none, so that a change nobody traced starts no trace of its own."""
    context = context_of(parent)
    if context is None:
        return None
    return tracer.start_span(name, context=context, kind=kind, attributes=attributes)
