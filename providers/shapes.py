"""Reading a PSP's JSON into typed values, or saying exactly what is wrong with it.

A webhook's signature proves who sent it, not that its content is what the PSP
documents. Each adapter reads the fields it needs through `Fields`, which hands back
values of the promised type and range or raises `Malformed` naming the field and what
was expected: never a KeyError, a TypeError, an overflow or a string a database cannot
hold turning up later as a 500. Reasons name types, never echo values, so a reason is
always plain text that can be stored and logged.

Bounds follow where values go: ids, types and handles are stored in the webhook inbox
(`MAX_EVENT_ID`, `MAX_EVENT_TYPE`, `MAX_HANDLE` are its column widths), amounts in
64-bit columns (`app.domain.money.MAX_MINOR`), times in `datetime`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from app.domain.money import MAX_MINOR

# Widths of the webhook inbox's columns (app/db/tables.py WebhookInbox).
MAX_EVENT_ID = 200
MAX_EVENT_TYPE = 100
MAX_HANDLE = 100
# PSP events nest a handful of levels; anything past this is not one.
MAX_NESTING = 32
# The last second `datetime` can hold (9999-12-31T23:59:59Z).
MAX_EPOCH_SECONDS = 253_402_300_799
MAX_REASON = 300


class Malformed(ValueError):
    """A JSON document, or one of its fields, is not what the PSP documents."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}"[:MAX_REASON] if path else problem[:MAX_REASON])


def load_json(body: bytes, *, parse_float: Callable[[str], Any] | None = None) -> Any:
    """The JSON value in `body`; Malformed if it is not JSON (NaN and Infinity are not),
    not UTF-8 (json.loads would take UTF-16 and encoded surrogates), or nested deeper
    than MAX_NESTING."""
    try:
        text = body.decode("utf-8")
        value = json.loads(text, parse_float=parse_float, parse_constant=_no_constant)
    except RecursionError:
        # The standard library's decoder recurses once per level of nesting.
        raise Malformed("", f"JSON nested deeper than {MAX_NESTING} levels") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limits
        raise Malformed("", f"not JSON ({_describe(exc)})") from None
    if _nesting(value) > MAX_NESTING:
        raise Malformed("", f"JSON nested deeper than {MAX_NESTING} levels")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _describe(exc: ValueError) -> str:
    # json's messages name positions only; a UnicodeDecodeError names bytes in hex.
    return str(exc).encode("ascii", "replace").decode()[:120]


def _nesting(value: Any) -> int:
    """How deeply `value` nests, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_NESTING:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def kind_of(value: Any) -> str:
    """A JSON type name for messages: never the value itself."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def check_text(value: Any, path: str, *, max_length: int) -> str:
    """A non-empty printable string of at most `max_length` characters.

    Printable leaves out NUL and other control characters (PostgreSQL refuses NUL in
    text) and lone surrogates (no database can encode them)."""
    if not isinstance(value, str):
        raise Malformed(path, f"expected a string, got {kind_of(value)}")
    if not value:
        raise Malformed(path, "is empty")
    if len(value) > max_length:
        raise Malformed(path, f"is longer than {max_length} characters")
    if not value.isprintable():
        raise Malformed(path, "holds control characters or unpaired surrogates")
    return value


def check_integer(value: Any, path: str, *, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(path, f"expected an integer, got {kind_of(value)}")
    if not minimum <= value <= maximum:
        raise Malformed(path, f"is outside {minimum}..{maximum}")
    return value


class Fields:
    """A JSON object read field by field; `path` names it in every complaint."""

    __slots__ = ("path", "values")

    def __init__(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise Malformed(path, f"expected an object, got {kind_of(value)}")
        self.values: Mapping[str, Any] = value
        self.path = path

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.values.get(key) is not None

    def raw(self, key: str) -> Any:
        """A field's value as it came (for values read by code of their own)."""
        return self.values.get(key)

    def text(self, key: str, *, max_length: int = MAX_HANDLE) -> str:
        return check_text(self.values.get(key), self._at(key), max_length=max_length)

    def optional_text(self, key: str, *, max_length: int = MAX_HANDLE) -> str | None:
        """None when absent or null (or, as PSPs send for "none", an empty string)."""
        value = self.values.get(key)
        if value is None or value == "":
            return None
        return check_text(value, self._at(key), max_length=max_length)

    def integer(self, key: str, *, minimum: int, maximum: int) -> int:
        return check_integer(self.values.get(key), self._at(key), minimum=minimum, maximum=maximum)

    def optional_integer(self, key: str, *, minimum: int, maximum: int) -> int | None:
        value = self.values.get(key)
        if value is None:
            return None
        return check_integer(value, self._at(key), minimum=minimum, maximum=maximum)

    def amount(self, key: str) -> int:
        """Minor units: 0 up to the largest amount Cobro holds anywhere."""
        return self.integer(key, minimum=0, maximum=MAX_MINOR)

    def optional_amount(self, key: str) -> int | None:
        return self.optional_integer(key, minimum=0, maximum=MAX_MINOR)

    def epoch_seconds(self, key: str) -> datetime:
        seconds = self.integer(key, minimum=0, maximum=MAX_EPOCH_SECONDS)
        return datetime.fromtimestamp(seconds, UTC)

    def optional_epoch_seconds(self, key: str) -> datetime | None:
        return self.epoch_seconds(key) if self.has(key) else None

    def fields(self, key: str) -> Fields:
        return Fields(self.values.get(key), self._at(key))

    def optional_fields(self, key: str) -> Fields | None:
        return self.fields(key) if self.has(key) else None

    def items(self, key: str) -> list[Any]:
        """An array field; absent or null is an empty one."""
        value = self.values.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise Malformed(self._at(key), f"expected an array, got {kind_of(value)}")
        return value

    def each_fields(self, key: str) -> list[Fields]:
        """An array of objects."""
        return [Fields(item, f"{self._at(key)}[{i}]") for i, item in enumerate(self.items(key))]
