"""Valid and invalid GraphQL operations from schema.graphql, with random arguments, keys
and body shapes, against the real server.

hypothesis-graphql builds operations from the schema: valid ones (Mode.POSITIVE) and
ones with exactly one schema violation (Mode.NEGATIVE), with random argument values,
NUL and odd unicode included. They go out under every kind of key and none. Whatever
comes back:

- never a 5xx; a GraphQL error always carries `extensions.code`;
- nothing changes, unless the secret key's mutation says it succeeded (a payload whose
  `errors` is empty): a query, a refused key, a failed mutation change no intent, audit
  row, outbox row, refund or handle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import graphql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

from tests.conftest import DEV_PUBLISHABLE, DEV_SECRET
from tests.hostile.conftest import Hostile, unchanged
from tests.hostile.strategies import json_values, nasty_text

SCHEMA = (Path(__file__).parents[2] / "schema.graphql").read_text()
MUTATIONS = sorted(graphql.build_schema(SCHEMA).mutation_type.fields)  # type: ignore[union-attr]
# rollApiKey works as it should under the secret key: five rolls, or one with
# expireOldInHours 0, and the key the fuzzing runs under has stopped working. It is
# fuzzed under every other key (tests/api/test_rolling_keys.py covers it in full).
SECRET_MUTATIONS = [name for name in MUTATIONS if name != "rollApiKey"]

FUZZ = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Values for the schema's own scalars: amounts as a client might send them, and not.
text_values = st.one_of(st.text(max_size=20), nasty_text)
CUSTOM_SCALARS = {
    "Decimal": st.one_of(
        st.sampled_from(["500.00", "10", "0.01", "-1", "1e3", "0.001", "NaN", "9" * 40]).map(
            nodes.String
        ),
        st.integers(min_value=-(10**20), max_value=10**20).map(nodes.Int),
        st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
        text_values.map(nodes.String),
    ),
    "DateTime": st.one_of(
        st.sampled_from(["2026-01-01T00:00:00+00:00", "0001-01-01T00:00:00+14:00"]),
        text_values,
    ).map(nodes.String),
    "JSON": st.one_of(
        text_values.map(nodes.String),
        st.integers(min_value=-(10**30), max_value=10**30).map(nodes.Int),
        st.booleans().map(nodes.Boolean),
    ),
}
OTHER_KEYS = [None, DEV_PUBLISHABLE, "sk_test_nobody", "pi_nobody_secret_nothing", "\u00f1"]


def operations(fields: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        *(
            strategy(SCHEMA, fields=only, custom_scalars=CUSTOM_SCALARS, mode=mode)
            for mode in (Mode.POSITIVE, Mode.NEGATIVE)
            for strategy, only in ((queries, None), (mutations, fields))
        )
    )


def send(hostile: Hostile, body: Any, key: str | None, **kwargs: Any) -> Any:
    headers = {b"Authorization": f"Bearer {key}".encode()} if key is not None else {}
    headers[b"content-type"] = b"application/json"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return hostile.http.post("/graphql", content=content, headers=headers)


def check_answer(response: Any) -> dict[str, Any] | None:
    """Never a 5xx; a JSON answer's errors all say what kind of error they are."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    assert response.status_code in (200, 400, 413), response.status_code
    if not response.headers.get("content-type", "").startswith("application/json"):
        return None
    answer: dict[str, Any] = response.json()
    for error in answer.get("errors") or []:
        assert (error.get("extensions") or {}).get("code"), error
    return answer


def may_have_changed(operation: str, answer: dict[str, Any] | None) -> bool:
    """Whether the secret key's mutation says it did something: some payload came back
    with `errors` empty, or without `errors` selected (so it cannot say)."""
    if not operation.lstrip().startswith("mutation") or not answer:
        return False
    payloads = (answer.get("data") or {}).values()
    return any(
        isinstance(payload, dict) and payload.get("errors", []) == [] for payload in payloads
    )


@pytest.mark.slow
@pytest.mark.parametrize("key", ["secret", "others"])
def test_generated_operations_never_5xx_and_a_refusal_changes_nothing(hostile, key):
    fields = SECRET_MUTATIONS if key == "secret" else MUTATIONS
    keys = st.just(DEV_SECRET) if key == "secret" else st.sampled_from(OTHER_KEYS)

    @FUZZ
    @given(
        operation=operations(fields),
        key=keys,
        variables=st.none() | st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    )
    def check(operation: str, key: str | None, variables: Any) -> None:
        before = hostile.probe.snapshot()
        answer = check_answer(send(hostile, {"query": operation, "variables": variables}, key))
        if key == DEV_SECRET and may_have_changed(operation, answer):
            return
        assert unchanged(before, hostile.probe.snapshot()) == {}, (operation, answer)

    check()


# Request bodies of every shape: objects with the four keys GraphQL-over-HTTP knows,
# holding anything, among random other keys; other JSON; bytes that are no JSON.
request_keys = st.sampled_from(["query", "variables", "operationName", "extensions"])
request_bodies = st.one_of(
    st.dictionaries(request_keys | st.text(max_size=8), json_values, max_size=5),
    st.builds(
        lambda query, extra: {"query": query, **extra},
        operations(MUTATIONS) | text_values,
        st.dictionaries(request_keys, json_values, max_size=3),
    ),
    json_values,
    st.binary(max_size=100),
)


def test_request_bodies_of_any_shape_never_5xx_and_change_nothing(hostile):
    @FUZZ
    @given(body=request_bodies, key=st.sampled_from(OTHER_KEYS))
    def check(body: Any, key: str | None) -> None:
        before = hostile.probe.snapshot()
        check_answer(send(hostile, body, key))
        assert unchanged(before, hostile.probe.snapshot()) == {}, body

    check()
