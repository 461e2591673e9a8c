"""Custom scalars: `Decimal` (money as a string; inputs may be integers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NewType

import strawberry
from graphql import GraphQLError
from strawberry.types.scalar import ScalarDefinition

# The decimal string itself; the service turns it into exact minor units.
DecimalString = NewType("DecimalString", str)


def _parse_decimal(value: object) -> str:
    # Floats cannot carry cents exactly, so they are refused here, at the door.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise GraphQLError('Decimal takes a string such as "500.00" or an integer')
    return str(value)


DECIMAL = strawberry.scalar(
    name="Decimal",
    description='An exact decimal amount as a string, such as "500.00"; inputs also take integers.',
    serialize=str,
    parse_value=_parse_decimal,
)

SCALARS: Mapping[object, ScalarDefinition] = {DecimalString: DECIMAL}
