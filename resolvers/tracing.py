"""The GraphQL operation's span, installed only when traces are on (app/tracing.py).

Strawberry's own OpenTelemetryExtension was measured and not taken: its `resolve`
hook runs for every field of every result (a span for each field with a resolver,
an awaited call for each without): a traced read made 4,293 Python calls with it
and 3,363 with this (1,990 untraced), 1.8 ms of CPU against 1.2 ms (bench/NOTES.md).
And it records the query text and every argument, where a card token or a client
secret may be written inline. This is one span per query or
mutation, current while it executes (so the service call, its SQL and PSP calls hang
under it), named by operation type and root field, as the semantic conventions for
GraphQL suggest, and never holding the document or its variables. Subscriptions get
no operation span (it would last for hours); each message they push is a span of
the change's own trace (app/services/live.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError, get_operation_ast
from opentelemetry.trace import Status, StatusCode, Tracer
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from app.domain.errors import CobroError
from resolvers.errors import INTERNAL_CODE, VALIDATION_CODE


class TracedOperation(SchemaExtension):
    def __init__(self, *, tracer: Tracer) -> None:
        self.tracer = tracer

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        kind = context.operation_type
        if kind is OperationType.SUBSCRIPTION or context.graphql_document is None:
            yield
            return
        operation = get_operation_ast(context.graphql_document, context.operation_name)
        root = None
        if operation is not None and operation.selection_set.selections:
            first = operation.selection_set.selections[0]
            root = getattr(getattr(first, "name", None), "value", None)
        attributes = {"graphql.operation.type": kind.value}
        if context.operation_name:
            attributes["graphql.operation.name"] = context.operation_name
        name = f"{kind.value} {root}" if root else kind.value
        with self.tracer.start_as_current_span(name, attributes=attributes) as span:
            yield
            errors = getattr(context.result, "errors", None) or []
            codes = sorted({_code(error) for error in errors})
            if codes:
                span.set_attribute("cobro.error_codes", codes)
            if INTERNAL_CODE in codes:
                span.set_status(Status(StatusCode.ERROR, INTERNAL_CODE))


def _code(error: GraphQLError) -> str:
    """The code the error leaves with (resolvers/errors.py maps them on the way out)."""
    original = error.original_error
    if isinstance(original, CobroError):
        return original.code
    if original is None or isinstance(original, GraphQLError):
        return VALIDATION_CODE
    return INTERNAL_CODE
