"""The schema, with its guards against hostile queries and its caches.

`schema.graphql` at the top of the repository is exported from here
(`cobro export-schema`) and a test fails when it is stale.
"""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from graphql import GraphQLError
from graphql.validation.rules.max_introspection_depth_rule import MaxIntrospectionDepthRule
from opentelemetry.trace import Tracer
from strawberry.extensions import (
    MaxAliasesLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter

from resolvers.errors import Guards
from resolvers.mutations import Mutation
from resolvers.queries import Query
from resolvers.scalars import SCALARS
from resolvers.shared_events import SharedEventExecution
from resolvers.subscriptions import Subscription
from resolvers.tracing import TracedOperation


class _Names(NameConverter):
    """Strawberry camel-cases each input field's Python name again on every request
    (1% of a payment's CPU); the names are the schema's, so each is converted once."""

    def __init__(self) -> None:
        super().__init__()
        self._converted: dict[str, str] = {}

    def apply_naming_config(self, name: str) -> str:
        converted = self._converted.get(name)
        if converted is None:
            converted = self._converted[name] = super().apply_naming_config(name)
        return converted


class CobroSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: object = None) -> None:
        """Log nothing here: a client's mistake is not a server error, and ErrorCodes
        already logged every unexpected one with its traceback."""


def build_schema(
    *,
    max_depth: int = 10,
    max_tokens: int = 2_000,
    max_aliases: int = 30,
    tracer: Tracer | None = None,
) -> strawberry.Schema:
    """`tracer`: a span per query and mutation (resolvers/tracing.py); none when None."""
    # The limiters build their validation rule as a new class per instance; built
    # once here, the rules are the same objects on every request, so the validation
    # cache (keyed by them) hits. Built per request, it missed every time and
    # validated every query afresh (256 req/s instead of about 1,900).
    rules = (
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
        # The depth limiter skips __schema/__type, so introspection gets its own
        # bound: `fields { type { fields { ... } } }` otherwise grows exponentially.
        MaxIntrospectionDepthRule,
    )
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: Guards(max_tokens=max_tokens, rules=rules)
    ]
    if tracer is not None:
        extensions.append(lambda: TracedOperation(tracer=tracer))
    return CobroSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALARS, name_converter=_Names()),
        extensions=extensions,
        execution_context_class=SharedEventExecution,
    )


schema = build_schema()
