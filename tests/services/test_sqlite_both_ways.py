"""SQLite's prepared statements and plain SQLAlchemy give the same answers (issue 11's
fence around app/db/prepared.py's use of SQLAlchemy's private internals).

The payments workload of test_postgres_both_ways.py runs on a real server twice:
once with prepared statements, every kept statement run both ways and compared where
it ran (`Comparing` below), and once with COBRO_SQLITE_PREPARED off; what the API
answers must be the same."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection
from sqlalchemy.sql.dml import Insert

import app.db.engine
from app.db.prepared import PreparedStatements
from tests.conftest import BACKENDS
from tests.services.test_postgres_both_ways import MUST_COMPARE, workload
from tests.support import both_ways

pytestmark = pytest.mark.skipif("sqlite" not in BACKENDS, reason="SQLite not selected")

compared: dict[int, Any] = {}


class Comparing(PreparedStatements):
    """Prepared statements that first run each planned statement through SQLAlchemy
    and compare: rows and keys for a read; row count and key for a write (run inside
    a savepoint rolled back before the plan runs); the error's class for an error."""

    def execute(self, conn: Connection, statement: Any, parameters: Any) -> Any:
        if self._plan(conn, statement, parameters) is None:
            return super().execute(conn, statement, parameters)
        compared[id(statement)] = statement
        if not statement.is_dml:  # a read
            expected = conn.execute(statement, parameters)
            keys, rows = list(expected.keys()), [tuple(r) for r in expected.all()]
            got = super().execute(conn, statement, parameters)
            got_rows = [tuple(r) for r in got.all()]
            assert (list(got.keys()), got_rows) == (keys, rows), (str(statement), parameters)
            return super().execute(conn, statement, parameters)
        raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        raw.execute("SAVEPOINT both_ways")
        want_error = None
        try:
            expected = conn.execute(statement, parameters)
            want = _written(statement, parameters, expected)
        except Exception as error:
            want_error = type(error)
        finally:
            raw.execute("ROLLBACK TO SAVEPOINT both_ways")
            raw.execute("RELEASE SAVEPOINT both_ways")
        try:
            got = super().execute(conn, statement, parameters)
        except Exception as error:
            assert type(error) is want_error, (str(statement), parameters, error, want_error)
            raise
        assert want_error is None, (str(statement), parameters, want_error)
        assert _written(statement, parameters, got) == want, (str(statement), parameters)
        return got


def _written(statement: Any, parameters: Any, result: Any) -> tuple[Any, ...]:
    if type(parameters) is list:  # executemany: SQLAlchemy reports no key nor count
        return ()
    key = None
    if isinstance(statement, Insert):
        table: Any = statement.table
        generated = table.autoincrement_column is not None and (
            table.autoincrement_column.key not in (parameters or {})
        )
        key = result.inserted_primary_key
        key = None if key is None else ("generated",) if generated else tuple(key)
    return (result.rowcount, key)


@pytest.mark.slow
async def test_kept_statements_answer_the_same_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared.clear()
    with monkeypatch.context() as patch:
        patch.setattr(app.db.engine, "PreparedStatements", Comparing)
        prepared = await workload(f"sqlite+aiosqlite:///{tmp_path}/prepared.db")
    plain = await workload(f"sqlite+aiosqlite:///{tmp_path}/plain.db", sqlite_prepared=False)
    assert prepared == plain
    statuses = {answer[0] for answer in prepared[:-1]}
    assert statuses == {"SUCCEEDED", "FAILED", "CANCELED"}, statuses

    kept = both_ways.kept_statements()
    done = {name for name, s in kept.items() if id(s) in compared}
    assert {name.split(".")[0] for name in done} >= MUST_COMPARE, sorted(done)
    print(f"compared both ways: {len(done)} of {len(kept)}:", sorted(done))
    assert len(done) >= 15, sorted(done)
