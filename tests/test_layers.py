"""The import direction of docs/architecture.md, enforced: resolvers -> app -> providers,
a pure domain, and adapters that know nothing of the app but its domain."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imports(package: str) -> list[tuple[str, str]]:
    """(module file, imported name) for every import in `package`."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [(str(path.relative_to(ROOT)), alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((str(path.relative_to(ROOT)), node.module))
    return found


def offenders(package: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    return [
        f"{where} imports {name}"
        for where, name in imports(package)
        if name.startswith(forbidden) and not name.startswith(allowed)
    ]


@pytest.mark.parametrize(
    ("package", "forbidden", "allowed"),
    [
        ("resolvers", ("app.db", "providers"), ()),
        ("providers", ("app.", "resolvers"), ("app.domain",)),
        (
            "app/domain",
            (
                "app.",
                "resolvers",
                "providers",
                "sqlalchemy",
                "strawberry",
                "httpx",
                "redis",
                "starlette",
            ),
            ("app.domain",),
        ),
        ("app/services", ("resolvers", "starlette", "strawberry"), ()),
        ("app/db", ("app.services", "app.events", "resolvers", "providers"), ()),
    ],
)
def test_imports_go_one_way(package, forbidden, allowed):
    assert offenders(package, forbidden, allowed) == []


def test_adapters_never_import_the_sandbox():
    adapters = [
        (where, name)
        for where, name in imports("providers")
        if "sandbox" not in where and name.startswith("providers.sandbox")
    ]
    assert adapters == []
