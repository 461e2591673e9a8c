"""How failures reach clients: one mapping for the whole schema.

- A mutation's expected failures (`CobroError`) become `UserError`s in its payload.
- Auth failures, and expected failures of queries, become GraphQL errors with
  `extensions.code` (UNAUTHENTICATED, FORBIDDEN, INVALID_AMOUNT, ...).
- Anything unexpected is logged and shown as "internal error", with no details.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from functools import lru_cache
from typing import Any, TypeVar

from graphql import FieldNode, GraphQLError, GraphQLSchema, OperationDefinitionNode, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import validate_document

from app import logs
from app.domain.errors import CobroError, Forbidden, Unauthenticated
from app.domain.intents import PaymentIntent as DomainIntent
from app.metrics import count_error
from app.services.results import MutationResult
from resolvers.context import Context
from resolvers.types.intent import PaymentIntent
from resolvers.types.payloads import PaymentIntentPayload, UserError

log = logging.getLogger("cobro.graphql")
T = TypeVar("T")

VALIDATION_CODE = "GRAPHQL_VALIDATION_FAILED"
INTERNAL_CODE = "INTERNAL"


async def attempt(run: Callable[[], Awaitable[T]]) -> tuple[T | None, list[UserError]]:
    """Run a mutation's service call: its result, or the user errors it failed with.
    Auth failures are not the caller's data to show: they stay GraphQL errors."""
    try:
        return await run(), []
    except (Unauthenticated, Forbidden):
        raise
    except CobroError as error:
        return None, [UserError.from_error(error)]


async def payload(
    context: Context, run: Callable[[], Awaitable[MutationResult]]
) -> PaymentIntentPayload:
    result, errors = await attempt(run)
    if result is None:
        return PaymentIntentPayload(payment_intent=None, errors=errors)
    return PaymentIntentPayload(
        payment_intent=intent_or_none(result.intent, context),
        errors=[UserError.from_error(e) for e in result.errors],
    )


def intent_or_none(intent: DomainIntent | None, context: Context) -> PaymentIntent | None:
    return None if intent is None else PaymentIntent.from_domain(intent, context.principal)


def to_graphql_error(error: GraphQLError) -> GraphQLError:
    converted = _to_graphql_error(error)
    count_error("graphql", (converted.extensions or {}).get("code"))
    return converted


def _to_graphql_error(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if original is None:
        # Syntax, validation and variable errors: the client's query is at fault.
        extensions = {"code": VALIDATION_CODE, **(error.extensions or {})}
        return _copy(error, error.message, extensions)
    if isinstance(original, CobroError):
        return _copy(error, original.message, {"code": original.code})
    if isinstance(original, GraphQLError):
        return _copy(error, error.message, {"code": VALIDATION_CODE, **(error.extensions or {})})
    if isinstance(original, InvalidOperationTypeError):
        # A mutation over GET, or anything but a subscription over multipart HTTP.
        kind = original.operation_type.value
        message = f"a {kind} cannot be sent with this method or transport"
        return _copy(error, message, {"code": VALIDATION_CODE})
    if isinstance(original, CannotGetOperationTypeError):
        return _copy(error, "no operation of that name in the document", {"code": VALIDATION_CODE})
    log.error("unexpected error in %s", error.path, exc_info=original)
    return _copy(error, "internal error", {"code": INTERNAL_CODE})


def _copy(error: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


class Guards(SchemaExtension):
    """Cobro's rules for every operation, in one extension. Each extension costs a
    few microseconds per request, and a subscription keeps every extension's hooks
    suspended for as long as it is open (kilobytes per subscriber), so parsing and
    validation caches live here too instead of in ParserCache and ValidationCache:

    - parsing stops after `max_tokens` tokens, and parsed documents are cached;
    - the extra validation rules (depth, aliases, introspection depth) run, and since
      they are the same objects every time, validation results are cached too;
    - every error leaves with an `extensions.code`, and unexpected ones without
      their internals;
    - the request's log context learns the operation (app/logs.py), and metrics its
      bounded label: the root field of a document that validated.
    """

    def __init__(self, *, max_tokens: int, rules: tuple[type[Any], ...]) -> None:
        self.max_tokens = max_tokens
        self.rules = rules

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens
        context.validation_rules = context.validation_rules + self.rules
        yield
        _convert(context.result)

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.graphql_document = _parse(context.query, max_tokens=self.max_tokens)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        context.pre_execution_errors = _validate(
            context.schema._schema, context.query, self.max_tokens, context.validation_rules
        )
        if context.query is not None:
            name, kind, root = _operation_of(context.query, context.operation_name, self.max_tokens)
            logs.note_operation(name, kind, "invalid" if context.pre_execution_errors else root)
        yield

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """Each message of a subscription, before it goes out."""
        _convert(result)
        yield


# Distinct query documents kept parsed and validated; checkouts send a handful.
CACHE_SIZE = 256
_parse = lru_cache(maxsize=CACHE_SIZE)(parse)


@lru_cache(maxsize=CACHE_SIZE)
def _validate(
    schema: GraphQLSchema, query: str, max_tokens: int, rules: tuple[type[Any], ...]
) -> list[GraphQLError]:
    """Keyed by the query's text, whose hash Python computes once per string, not by
    the parsed document, whose hash walks the whole tree on every lookup."""
    return validate_document(schema, _parse(query, max_tokens=max_tokens), rules)


# Longest client operation name written to a log line.
MAX_OPERATION_NAME = 100


@lru_cache(maxsize=CACHE_SIZE)
def _operation_of(
    query: str, operation_name: str | None, max_tokens: int
) -> tuple[str | None, str, str]:
    """(the operation's name, its type, its root field) of a parsed document: the
    root field is `multiple` when it selects several (or a fragment), `invalid` when
    no operation fits `operation_name`. Only the caller knows whether the document
    validated; a root field of one that did not is no schema field."""
    document = _parse(query, max_tokens=max_tokens)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        chosen = operations[0] if len(operations) == 1 else None
    else:
        chosen = next((o for o in operations if o.name and o.name.value == operation_name), None)
    if chosen is None:
        return None, "unknown", "invalid"
    name = chosen.name.value[:MAX_OPERATION_NAME] if chosen.name else None
    selections = chosen.selection_set.selections
    only = selections[0] if len(selections) == 1 else None
    root = only.name.value if isinstance(only, FieldNode) else "multiple"
    return name, chosen.operation.value, root


def _convert(result: Any) -> None:
    if result is not None and getattr(result, "errors", None):
        result.errors = [to_graphql_error(e) for e in result.errors]
