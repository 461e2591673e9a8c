"""Hypothesis strategies for hostile JSON: values that are certainly not what a field
promises (wrong types, huge numbers, odd unicode, deep nesting), and whole bodies that
are not JSON events at all.

Two things json.dumps cannot write are spliced in as text afterwards: integers of
thousands of digits (Python will not print them) and nesting thousands deep (json.dumps
would recurse). `encode` does the splicing.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

HUGE_DIGITS = "\u0000huge\u0000"
DEEP_NESTING = "\u0000deep\u0000"
# Characters that make text unstorable or unreadable: NUL and other controls, unpaired
# surrogates, and the odd ones (bidi overrides, zero-width joiners, line separators).
NASTY_CHARACTERS = "\x00\x01\x07\x1b\x7f\ud800\udfff\u202e\u200d\u2028\ufeff"


def encode(value: Any) -> bytes:
    """JSON bytes of `value`, with the markers above spliced in."""
    text = json.dumps(value)
    text = text.replace(json.dumps(HUGE_DIGITS), "9" * 5_000)
    return text.replace(json.dumps(DEEP_NESTING), "[" * 5_000 + "]" * 5_000).encode()


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
nasty_text = st.one_of(
    st.text(alphabet=st.sampled_from(NASTY_CHARACTERS), min_size=1, max_size=5),
    st.tuples(st.text(max_size=5), st.sampled_from(NASTY_CHARACTERS), st.text(max_size=5)).map(
        "".join
    ),
)
long_text = st.integers(min_value=201, max_value=3_000).map(lambda n: "x" * n)
huge_integers = st.one_of(
    st.integers(min_value=10**13, max_value=10**40),
    st.integers(min_value=-(10**40), max_value=-1),
    st.just(HUGE_DIGITS),
)
deep = st.one_of(
    st.integers(min_value=40, max_value=600).map(lambda n: _nested(n)),
    st.just(DEEP_NESTING),
)
not_text = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(json_scalars, max_size=3),
    st.dictionaries(st.text(max_size=5), json_scalars, max_size=3),
    huge_integers,
    deep,
)


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def bad_text(*, required: bool, max_length: int = 100) -> st.SearchStrategy[Any]:
    """Anything a text field of at most `max_length` characters is not."""
    options = [not_text, nasty_text, long_text.filter(lambda t: len(t) > max_length)]
    if required:
        options.append(st.sampled_from([None, ""]))
    return st.one_of(*options)


def bad_integer(*, required: bool, maximum: int = 10**12) -> st.SearchStrategy[Any]:
    """Anything an integer field from 0 to `maximum` is not."""
    options = [
        st.booleans(),
        st.floats(allow_nan=False),
        st.text(max_size=12),
        nasty_text,
        st.lists(json_scalars, max_size=2),
        st.integers(min_value=maximum + 1, max_value=maximum * 10**6),
        huge_integers.filter(lambda v: not isinstance(v, int) or v < 0 or v > maximum),
        deep,
    ]
    if required:
        options.append(st.none())
    return st.one_of(*options)


def bad_object(*, required: bool) -> st.SearchStrategy[Any]:
    options = [
        json_scalars.filter(lambda v: v is not None),
        st.lists(json_values, max_size=3),
        deep,
    ]
    if required:
        options.append(st.none())
    return st.one_of(*options)


REMOVE = object()  # a mutation that deletes the field


def mutated(
    template: dict[str, Any], fields: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[Any]:
    """`template` with one field (a dotted path; `[0]` indexes a list) made invalid by its
    strategy, and random extra keys sprinkled in (which alone change nothing)."""

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        event = json.loads(json.dumps(template))  # a deep copy
        path = draw(st.sampled_from(sorted(fields)))
        value = draw(fields[path])
        parent, key = _locate(event, path)
        if value is REMOVE:
            del parent[key]
        else:
            parent[key] = value
        for _ in range(draw(st.integers(min_value=0, max_value=2))):
            extra = draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in event))
            event[extra] = draw(json_values)
        return event

    return build()


def _locate(event: Any, path: str) -> tuple[Any, Any]:
    parts: list[Any] = []
    for part in path.split("."):
        if part.endswith("]"):
            name, index = part[:-1].split("[")
            parts.extend([name, int(index)])
        else:
            parts.append(part)
    parent = event
    for part in parts[:-1]:
        parent = parent[part]
    return parent, parts[-1]


# Whole bodies that are no JSON object at all, or JSON no decoder should have to take.
garbage_bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"",
            b"null",
            b"5",
            b'"x"',
            b"true",
            b"[]",
            b"NaN",
            b'{"id": NaN}',
            b"\xff\xfe{}",
            b'{"id": "evt\x00"}',
            b"\xef\xbb\xbf{}",  # a byte-order mark
            "{}".encode("utf-16"),
            b"[" * 5_000 + b"]" * 5_000,
            b'{"a": ' + b"9" * 5_000 + b"}",
        ]
    ),
    json_values.map(encode),
)
