"""No private internals of a dependency outside the modules fenced for them.

A dependency's private attribute, private name or internal module changes without
notice at its next release. The code uses public APIs; where measurement said a
private one pays (the database fast paths), it lives in a fenced module: the
dependency pinned to one minor version in pyproject.toml, an off switch in the
settings, and a test that runs every kept statement both ways and compares.

So this test reads app/, resolvers/ and providers/ and fails on any `x._name`
(but `self._name` and `cls._name`, our own), any private name imported from a
dependency, and any import of a module a dependency marks internal, outside the
fenced modules and the few uses listed below with their reason."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "resolvers", "providers")
OURS = ("app", "resolvers", "providers", "tests", "__future__")

# Modules fenced for SQLAlchemy's and asyncpg's internals: SQLAlchemy pinned to one
# minor (pyproject.toml); COBRO_POSTGRES_FAST_PATH=false and COBRO_SQLITE_PREPARED=false
# run plain SQLAlchemy; tests/services/test_postgres_both_ways.py and
# tests/services/test_sqlite_both_ways.py run every kept statement both ways.
FENCED = {"app/db/postgres.py", "app/db/prepared.py"}

# Modules a dependency documents as internal, though their names are public.
INTERNAL_MODULES = (
    "graphql.execution.executor_throwing_on_incremental",  # "For internal use only."
    "graphql.execution.incremental",
    "strawberry.schema._graphql_core",
)

# (file, expression) uses outside the fences, each with why it is not a dependency's
# private internals.
ALLOWED = {
    # A namedtuple's documented method (the underscore avoids clashing with fields).
    ("app/services/url_guard.py", "parts._replace"),
    # Our own _Inline connection wrapper (app/db/engine.py), read in its own module.
    ("app/db/engine.py", "reader._conn"),
    ("app/db/engine.py", "self._sqlite_reading._conn"),
    # Strawberry's graphql-core schema: Strawberry has no public accessor, and its own
    # ValidationCache extension reads the same attribute (extensions/validation_cache.py).
    # tests/api/test_hostile_input.py fails at once if it goes.
    ("resolvers/errors.py", "context.schema._schema"),
}


def private_uses(path: Path, where: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), where)):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if (where, ast.unparse(node)) not in ALLOWED:
                found.append(f"{where}:{node.lineno} {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith(OURS):
                continue
            parts = node.module.split(".")
            names = [alias.name for alias in node.names if _private(alias.name)]
            if any(_private(part) for part in parts) or node.module.startswith(INTERNAL_MODULES):
                found.append(f"{where}:{node.lineno} from {node.module} import ...")
            elif names:
                found.append(f"{where}:{node.lineno} from {node.module} import {names}")
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_internals_of_dependencies_outside_the_fences() -> None:
    uses = [
        use
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if str(path.relative_to(ROOT)) not in FENCED
        for use in private_uses(path, str(path.relative_to(ROOT)))
    ]
    assert uses == []


def test_the_checker_sees_what_it_must(tmp_path: Path) -> None:
    # given: a module with one of each kind of use
    module = tmp_path / "probe.py"
    module.write_text(
        "from graphql.execution.executor_throwing_on_incremental import X\n"
        "from strawberry.schema.schema import _Private\n"
        "from asyncpg.exceptions._base import DataError\n"
        "def f(breaker, self):\n"
        "    return breaker._state_storage, self._mine\n"
    )
    # when
    uses = private_uses(module, "app/probe.py")
    # then
    assert [use.split(" ", 1)[1] for use in uses] == [
        "from graphql.execution.executor_throwing_on_incremental import ...",
        "from strawberry.schema.schema import ['_Private']",
        "from asyncpg.exceptions._base import ...",
        "breaker._state_storage",
    ]
