"""Input objects turned into their classes with a plan made once per class.

Strawberry converts an input value field by field, and for every field of every
request it resolves the field's annotation again (`StrawberryField.resolve_type`)
and walks its generic checks: about 7% of a card payment's CPU, for two small
inputs. Strawberry lets a type build its own value (`from_input` on its
definition, the hook `strawberry.pydantic` uses): here that hook follows a plan
made the first time the class is converted, when the schema has resolved every
annotation. What it builds is what Strawberry builds (tests/api/test_input_conversion.py
compares the two on every input of the schema): scalars and enums as graphql-core
parsed them, lists copied, nested inputs through Strawberry's own conversion (and
so through their own plans), fields the client left out at their class default,
and `None` for those with no default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING
from typing import Any, TypeVar

from strawberry.scalars import is_scalar
from strawberry.types.arguments import InputContext
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryObjectDefinition,
    StrawberryOptional,
    StrawberryType,
    get_object_definition,
)
from strawberry.types.enum import StrawberryEnumDefinition

T = TypeVar("T")

# How one field's value becomes its Python value, given the call's InputContext.
Convert = Callable[[Any, InputContext], Any]


def planned_input(cls: type[T]) -> type[T]:
    """Put above `@strawberry.input`: the class is then built by its plan."""
    definition = get_object_definition(cls, strict=True)
    plan: list[tuple[str, str, Convert]] = []
    unset_to_none: dict[str, None] = {}

    def from_input(target: type, value: Mapping[str, Any], context: InputContext) -> Any:
        if not plan and definition.fields:
            _make_plan(definition, context, plan, unset_to_none)
        kwargs: dict[str, Any] = dict(unset_to_none)
        for graphql_name, python_name, convert in plan:
            if graphql_name in value:
                kwargs[python_name] = convert(value[graphql_name], context)
        return target(**kwargs)

    definition.from_input = from_input
    return cls


def _make_plan(
    definition: StrawberryObjectDefinition,
    context: InputContext,
    plan: list[tuple[str, str, Convert]],
    unset_to_none: dict[str, None],
) -> None:
    for field in definition.fields:
        graphql_name = context.config.name_converter.from_field(field)
        field_type = field.resolve_type(type_definition=definition)
        convert = _converter(field_type, graphql_name, context.scalar_registry)
        plan.append((graphql_name, field.python_name, convert))
        if field.default_value is MISSING and field.default_factory is MISSING:
            unset_to_none[field.python_name] = None


def _same(value: Any, context: InputContext) -> Any:
    return value


def _converter(
    field_type: StrawberryType | type, name: str, scalars: Mapping[object, Any]
) -> Convert:
    """Scalars and enums arrive parsed; lists are copied (graphql-core hands every
    request that omits one the same default list); anything else (nested inputs,
    Maybe, lazy types) goes through Strawberry's own conversion."""
    if isinstance(field_type, StrawberryOptional) and not isinstance(field_type, StrawberryMaybe):
        inner = _converter(field_type.of_type, name, scalars)
        if inner is _same:
            return _same
        return lambda value, context: None if value is None else inner(value, context)
    if isinstance(field_type, StrawberryList):
        item = field_type.of_type
        if _converter(item, name, scalars) is _same:
            return lambda value, context: None if value is None else list(value)
        return lambda value, context: (
            None
            if value is None
            else [context.convert(x, item, name, index) for index, x in enumerate(value)]
        )
    if is_scalar(field_type, scalars) or isinstance(field_type, StrawberryEnumDefinition):
        return _same
    return lambda value, context: context.convert(value, field_type, name)
