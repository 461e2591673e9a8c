"""Every mutation input built by its plan (resolvers/input_conversion.py) comes out
exactly as Strawberry's own conversion builds it: the same classes, the same
values, omitted fields at their defaults, explicit nulls as None, lists copied.
Values are coerced by graphql-core from the schema first, as a request's are."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest
import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    coerce_input_value,
)
from strawberry.types.arguments import convert_argument
from strawberry.types.base import get_object_definition

from resolvers import inputs
from resolvers.input_conversion import planned_input
from resolvers.schema import schema

SAMPLES: dict[str, Any] = {
    "String": "text",
    "ID": "pi_0123456789abcdef",
    "Int": 3,
    "Boolean": True,
    "Decimal": "1234.50",
    "JSON": {"order": "A-1", "lines": [1, 2]},
    "DateTime": "2026-12-02T10:00:00+00:00",
}
INPUTS = [
    cls
    for _, cls in inspect.getmembers(inputs, inspect.isclass)
    if cls.__module__ == inputs.__name__ and get_object_definition(cls) is not None
]


def sample(graphql_type: GraphQLInputType, shape: str) -> Any:
    """A JSON value for a type: `required` leaves out every optional field, `full`
    fills every field, `nulls` sends null for every nullable one."""
    if isinstance(graphql_type, GraphQLNonNull):
        return sample(graphql_type.of_type, "full" if shape == "nulls" else shape)
    if shape == "nulls":
        return None
    return filled(graphql_type, shape)


def filled(graphql_type: GraphQLInputType, shape: str) -> Any:
    if isinstance(graphql_type, GraphQLList):
        return [sample(graphql_type.of_type, shape), sample(graphql_type.of_type, shape)]
    if isinstance(graphql_type, GraphQLEnumType):
        return next(iter(graphql_type.values))
    if isinstance(graphql_type, GraphQLScalarType):
        return SAMPLES[graphql_type.name]
    assert isinstance(graphql_type, GraphQLInputObjectType), graphql_type
    return {
        name: sample(field.type, shape)
        for name, field in graphql_type.fields.items()
        if shape != "required" or isinstance(field.type, GraphQLNonNull)
    }


def strawberrys_own(cls: type, value: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """What Strawberry builds with no plan on any input class."""
    with monkeypatch.context() as patch:
        for each in INPUTS:
            patch.setattr(get_object_definition(each, strict=True), "from_input", None)
        return convert(cls, value)


def convert(cls: type, value: Any) -> Any:
    return convert_argument(
        value, cls, schema.schema_converter.scalar_registry, schema.config, path=("input",)
    )


def test_every_mutation_input_has_a_plan() -> None:
    assert len(INPUTS) >= 13
    unplanned = [
        c.__name__ for c in INPUTS if get_object_definition(c, strict=True).from_input is None
    ]
    assert unplanned == []


@pytest.mark.parametrize("shape", ["required", "full", "nulls"])
@pytest.mark.parametrize("cls", INPUTS, ids=lambda cls: cls.__name__)
def test_a_planned_input_is_what_strawberry_builds(
    cls: type, shape: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    graphql_type = schema.schema_converter.from_input_object(cls)
    value = coerce_input_value(filled(graphql_type, shape), graphql_type)

    planned = convert(cls, value)
    expected = strawberrys_own(cls, value, monkeypatch)

    assert type(planned) is cls
    assert planned == expected
    assert repr(planned) == repr(expected)  # enum members and nested classes alike
    # Lists are copies: graphql-core hands every request the same default list.
    sent = {id(v) for v in lists_in(value)}
    assert all(id(v) not in sent for v in lists_of(planned))


def lists_in(value: Any) -> list[list[Any]]:
    if isinstance(value, dict):
        return [found for v in value.values() for found in lists_in(v)]
    if isinstance(value, list):
        return [value, *(found for v in value for found in lists_in(v))]
    return []


def lists_of(built: Any) -> list[list[Any]]:
    """The lists an input object holds, its nested inputs' included."""
    if dataclasses.is_dataclass(built):
        return [
            found for f in dataclasses.fields(built) for found in lists_of(getattr(built, f.name))
        ]
    if isinstance(built, list):
        return [built, *(found for v in built for found in lists_of(v))]
    return []


@planned_input
@strawberry.input
class NoDefaults:
    """Not in the schema: a nullable field with no default, which a client may omit."""

    note: str | None
    count: int


def test_an_omitted_field_with_no_default_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    value = {"count": 2}

    planned = convert(NoDefaults, value)

    assert planned == NoDefaults(note=None, count=2)
    with monkeypatch.context() as patch:
        patch.setattr(get_object_definition(NoDefaults, strict=True), "from_input", None)
        assert convert(NoDefaults, value) == planned
