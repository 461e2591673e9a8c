"""Both ways: every kept statement PostgreSQL's short path runs as a plan on asyncpg
(app/db/postgres.py) is first run through SQLAlchemy's own execution on the same
connection, at the same moment, and the answers compared: rows and their keys for
a read; for a write, the row count, the key and an inserted row as stored (the
SQLAlchemy run inside a savepoint rolled back before the plan runs); for an error,
its class. A difference is an AssertionError where the statement ran.

`COBRO_TEST_BOTH_WAYS=1` turns it on for a whole pytest run (tests/conftest.py), so
any suite can run this way on PostgreSQL; tests/services/test_postgres_both_ways.py
runs payments through it and checks which repository statements it compared.

Expected to fail under it, as they look at the short path itself: the tests of
tests/services/test_postgres_path.py that count generated keys (the SQLAlchemy run
takes a sequence value too), those of test_postgres_broken_connections.py that break
a connection by hand (the SQLAlchemy run meets the break first) or read while
others commit (autocommit reads see a commit between the two runs), and the
per-drop memory bound of tests/api/test_subscription_memory.py."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.sql.dml import Insert, UpdateBase
from sqlalchemy.sql.selectable import Select

import app.db.repositories
from app.db.postgres import FastConnection

_original = FastConnection.execute
_original_defer = FastConnection.defer
compared: dict[int, Any] = {}  # id(statement) -> statement, for the coverage report


def install() -> None:
    """Writes are not written behind under it (app/db/write_behind.py): each runs at
    once, to be compared; tests/services/test_write_behind.py covers the grouping."""
    FastConnection.execute = _both_ways  # type: ignore[method-assign]
    FastConnection.defer = _never  # type: ignore[method-assign]


def uninstall() -> None:
    FastConnection.execute = _original  # type: ignore[method-assign]
    FastConnection.defer = _original_defer  # type: ignore[method-assign]


async def _never(self: FastConnection, statement: Any, parameters: Any, on_key: Any) -> bool:
    return False


def kept_statements() -> dict[str, Any]:
    """Every repository's module-level statements: 'module.NAME' -> statement."""
    found: dict[str, Any] = {}
    package = app.db.repositories
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, Select | UpdateBase):
                found[f"{info.name}.{name}"] = value
    return found


async def _both_ways(self: FastConnection, statement: Any, parameters: Any = None) -> Any:
    plans = self._plans
    entry = plans._plans.get(id(statement)) if plans else None
    kept = entry is not None and entry[0]() is statement
    if plans is None or not kept:
        return await _original(self, statement, parameters)
    if self.lazy:  # the transaction's BEGIN, owed to its first statement
        await self._begin_now()
    plan = plans.plan(self._conn, statement, parameters)
    if plan is None:
        return await _original(self, statement, parameters)
    compared[id(statement)] = statement
    raw: Any = self._raw
    if plan.metadata is not None:  # a read: both answers from the same snapshot
        expected = await self._conn.execute(statement, parameters)
        keys, rows = list(expected.keys()), [tuple(r) for r in expected.all()]
        got = await _original(self, statement, parameters)
        got_keys, got_rows = list(got.keys()), [tuple(r) for r in got.all()]
        assert (got_keys, got_rows) == (keys, rows), (str(statement), parameters)
        return IteratorResult(SimpleResultMetaData(got_keys), iter(got_rows))
    in_transaction = raw.is_in_transaction()
    await raw.execute("SAVEPOINT both_ways" if in_transaction else "BEGIN")
    try:
        expected = await self._conn.execute(statement, parameters)
        want = _written(statement, parameters, expected)
        want_error = None
        row = None if type(parameters) is list else await _row(self, statement, expected)
    except Exception as error:
        want_error = type(error)
    finally:
        await raw.execute("ROLLBACK TO SAVEPOINT both_ways" if in_transaction else "ROLLBACK")
    try:
        got = await _original(self, statement, parameters)
    except Exception as error:
        assert type(error) is want_error, (str(statement), parameters, error, want_error)
        raise
    assert want_error is None, (str(statement), parameters, want_error)
    assert _written(statement, parameters, got) == want, (str(statement), parameters)
    if in_transaction and type(parameters) is not list:
        assert await _row(self, statement, got) == row, (str(statement), parameters)
    return got


def _written(statement: Any, parameters: Any, result: Any) -> tuple[Any, ...]:
    if type(parameters) is list:  # executemany: SQLAlchemy reports no key nor count
        return ()
    key = None
    if isinstance(statement, Insert):
        table: Any = statement.table  # a Table (SQLAlchemy types it as any TableClause)
        generated = table.autoincrement_column is not None and (
            table.autoincrement_column.key not in (_one(parameters) or {})
        )
        key = result.inserted_primary_key
        key = None if key is None else ("generated",) if generated else tuple(key)
    return (result.rowcount, key)


def _one(parameters: Any) -> Any:
    return parameters[0] if type(parameters) is list else parameters


async def _row(self: FastConnection, statement: Any, result: Any) -> Any:
    """The row an INSERT of one row wrote, found by its key, without a generated key
    (a sequence is not rolled back with the savepoint); None for other writes."""
    if not isinstance(statement, Insert) or result.inserted_primary_key is None:
        return None
    table: Any = statement.table
    generated = table.autoincrement_column
    columns = [c for c in table.columns if c is not generated]
    where = [
        c == v for c, v in zip(table.primary_key.columns, result.inserted_primary_key, strict=True)
    ]
    return [tuple(r) for r in await self._conn.execute(select(*columns).where(*where))]
