"""Writes whose result nobody reads, sent together: one statement for many.

On PostgreSQL every statement is a round trip (asyncpg does not pipeline different
statements), and a round trip costs the API process more CPU than the statement
costs PostgreSQL (bench/NOTES.md). A payment's transactions write rows nobody reads
back in them: the intent's first row, its outbox row, the attempt, the handles a
PSP knows it by, the audit events. `write_behind` hands such a write to the
transaction instead of running it: the transaction's short path
(app/db/postgres.py) keeps it and sends all it kept as one statement of
data-modifying CTEs,

    WITH w0 AS (INSERT ...), w1 AS (UPDATE ...), w2 AS (INSERT ... RETURNING id)
    SELECT (SELECT * FROM w2)

before COMMIT, or earlier, before any statement that reads or writes a table one
of them writes (the statements of one SQL statement see the same snapshot, so a
statement carrying them could not see their rows). A transaction that wrote nothing
else before its end sends them without BEGIN and COMMIT, as one statement in
autocommit (its own transaction).

What a caller gives up: the write's row count, and its error at the call; a
failing write fails the statement that carries it, so the whole transaction rolls
back with the error, as before, only later. So only writes that cannot fail but for
a bug, and whose callers never look at their result, go this way. SQLite (and
PostgreSQL with listeners or the short path off) runs them at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table
from sqlalchemy.sql import visitors
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.sql.schema import Column

KeyCallback = Callable[[Any], None]
# PostgreSQL's limit is 32,767 parameters a statement; a group that would pass this
# many is sent in more than one.
MAX_PARAMETERS = 30_000
_PLACEHOLDER = re.compile(r"\$(\d+)")
_VALUES = " VALUES ("


async def write_behind(
    conn: Any, statement: Any, parameters: Any, on_key: KeyCallback | None = None
) -> None:
    """Run `statement` now or with the transaction's next group of such writes.
    `on_key(key)` gets an INSERT's generated key (RETURNING) once it is known: by
    the time the transaction has committed."""
    defer = getattr(conn, "defer", None)
    if defer is not None and await defer(statement, parameters, on_key):
        return
    result = await conn.execute(statement, parameters)
    if on_key is not None:
        key = result.inserted_primary_key
        on_key(None if key is None else key[0])


class Shape:
    """How a planned INSERT or UPDATE joins a group: the table it writes and, for an
    INSERT, where its VALUES row is (to repeat it for several rows)."""

    __slots__ = ("row", "table", "width", "writes")

    def __init__(self, table: Table, row: tuple[int, int] | None, width: int):
        self.table = table.name
        # The table and those its foreign keys check: tables the write itself reads
        # beyond these must not have writes kept before it.
        self.writes = frozenset([table.name, *_checked_by(table)])
        self.row = row  # (start, end) of "(...)" after VALUES; None: one row only
        self.width = width  # parameters a row


def shape_of(compiled: SQLCompiler, statement: Any, sql: str, width: int) -> Shape | None:
    """The shape of a statement that may be written behind: an INSERT (its generated
    key the only RETURNING) or an UPDATE without RETURNING, whose SQL holds nothing
    but numbered parameters (no literal a renumbering could touch)."""
    if "'" in sql or "$$" in sql or sql.startswith("WITH"):
        return None
    if isinstance(statement, Update) and compiled.isupdate and not compiled.returning:
        return Shape(statement.table, None, width)  # type: ignore[arg-type]
    if not (isinstance(statement, Insert) and compiled.isinsert):
        return None
    start = sql.find(_VALUES)
    row: tuple[int, int] | None = None
    if start >= 0 and sql.count(_VALUES) == 1:
        start += len(_VALUES) - 1
        end = _closing(sql, start)
        inside = {int(n) for n in _PLACEHOLDER.findall(sql[start:end])}
        if end > 0 and inside == set(range(1, width + 1)) and len(inside) == _count(sql):
            row = (start, end)
    return Shape(statement.table, row, width)  # type: ignore[arg-type]


def tables_of(statement: Any) -> frozenset[str]:
    """Every table `statement` reads or writes, and for a write the tables its
    foreign keys check (they read them too)."""
    names: set[str] = set()
    target = getattr(statement, "table", None)
    for element in [*visitors.iterate(statement), *([target] if target is not None else [])]:
        if isinstance(element, Table):
            names.add(element.name)
            if element is target:
                names.update(_checked_by(target))
        elif isinstance(element, Column) and isinstance(element.table, Table):
            names.add(element.table.name)
    return frozenset(names)


def _checked_by(table: Table) -> list[str]:
    """The tables `table`'s foreign keys read when a row of it is written."""
    return [fk.column.table.name for fk in table.foreign_keys]


class Group:
    """A transaction's writes kept for later, in the order they were given."""

    __slots__ = ("items", "parameters", "tables", "written")

    def __init__(self) -> None:
        # (SQL, shape, rows of arguments, on_key)
        self.items: list[tuple[str, Shape, list[list[Any]], KeyCallback | None]] = []
        # The tables they write, and those they read (beyond what their foreign keys
        # check): a statement touching any of them must not run before they do.
        self.tables: set[str] = set()
        self.written: set[str] = set()  # the tables they write
        self.parameters = 0

    def __bool__(self) -> bool:
        return bool(self.items)

    def accepts(self, shape: Shape, rows: int) -> bool:
        """False when the write must wait for the kept ones to go first: another write
        of its table is kept (the parts of one statement run in no set order, so rows
        would not be numbered in the order they were given, and one statement may
        not change a row twice), or it would pass the parameters of one statement.
        A kept write that only reads its table does not stop it: that read came
        first, and the parts of one statement see the table as it was before it."""
        if shape.table in self.written:
            return False
        return self.parameters + shape.width * rows <= MAX_PARAMETERS

    def add(
        self,
        sql: str,
        shape: Shape,
        rows: list[list[Any]],
        on_key: KeyCallback | None,
        reads: frozenset[str] = frozenset(),
    ) -> None:
        self.items.append((sql, shape, rows, on_key))
        self.tables.add(shape.table)
        self.written.add(shape.table)
        self.tables.update(reads)
        self.parameters += shape.width * len(rows)

    def clear(self) -> None:
        self.items = []
        self.tables = set()
        self.written = set()
        self.parameters = 0

    def touches(self, tables: frozenset[str]) -> bool:
        return not tables.isdisjoint(self.tables)

    def writes_any(self, tables: frozenset[str]) -> bool:
        return not tables.isdisjoint(self.written)

    def take(self) -> tuple[str, list[Any], list[tuple[int, KeyCallback]]]:
        """The group as one statement: its SQL, its arguments, and (column, callback)
        for each generated key the statement's one row answers. Empties the group."""
        items = self.items
        self.clear()
        key = tuple((sql, len(rows), on_key is not None) for sql, _, rows, on_key in items)
        sql = _COMBINED.get(key)
        if sql is None:
            sql = _COMBINED[key] = _combine(items)
            if len(_COMBINED) > _MAX_COMBINED:
                _COMBINED.clear()
                _COMBINED[key] = sql
        arguments = [value for _, _, rows, _ in items for row in rows for value in row]
        keyed = [callback for *_, callback in items if callback is not None]
        return sql, arguments, list(enumerate(keyed))


_COMBINED: dict[tuple[tuple[str, int, bool], ...], str] = {}
_MAX_COMBINED = 512


def _combine(items: list[tuple[str, Shape, list[list[Any]], KeyCallback | None]]) -> str:
    parts: list[str] = []
    keyed: list[int] = []
    offset = 0
    for i, (sql, shape, rows, on_key) in enumerate(items):
        if len(rows) > 1:
            assert shape.row is not None
            sql = _many_rows(sql, shape, len(rows))
        parts.append(_renumbered(sql, offset))
        offset += shape.width * len(rows)
        if on_key is not None:
            keyed.append(i)
    if len(parts) == 1 and not keyed:
        return parts[0]
    if keyed:
        # Only the names of our own CTEs go into it: the values are parameters.
        keys = ", ".join(f"(SELECT * FROM w{i})" for i in keyed)  # noqa: S608
        ctes, main = parts, "SELECT " + keys
    else:
        ctes, main = parts[:-1], parts[-1]
    return "WITH " + ", ".join(f"w{i} AS ({part})" for i, part in enumerate(ctes)) + " " + main


def _many_rows(sql: str, shape: Shape, count: int) -> str:
    assert shape.row is not None
    start, end = shape.row
    row = sql[start:end]
    rows = ", ".join(_renumbered(row, shape.width * n) for n in range(count))
    return sql[:start] + rows + sql[end:]


def _renumbered(sql: str, offset: int) -> str:
    if not offset:
        return sql
    return _PLACEHOLDER.sub(lambda m: f"${int(m.group(1)) + offset}", sql)


def _closing(sql: str, start: int) -> int:
    """The index just past the parenthesis matching sql[start] (no literals inside)."""
    depth = 0
    for i in range(start, len(sql)):
        if sql[i] == "(":
            depth += 1
        elif sql[i] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    return -1


def _count(sql: str) -> int:
    return len(_PLACEHOLDER.findall(sql))
