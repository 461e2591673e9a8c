"""Prepared statements for SQLite's inline connections (app/db/engine.py).

SQLAlchemy compiles a statement to SQL once (its compiled cache), but every run still
builds an execution context, converts the parameters through it and wraps the cursor
in a result: 20-40 µs of Python a statement, a fifth of a payment's CPU
(bench/NOTES.md). The repositories keep their hot statements as module-level
constants and run them again and again; the second time one runs it is prepared
here, from SQLAlchemy's own compilation of it: the SQL, the order of its
parameters, and the type processors for each parameter and result column. Each run
after that converts the parameters, calls sqlite3 and answers with a SQLAlchemy
result, so callers cannot tell the difference.

Whatever a plan could not reproduce exactly goes through SQLAlchemy as before:
statements built per call (seen once), raw text, empty IN lists, Python-side column
defaults, RETURNING, keys SQLAlchemy would find elsewhere, and connections with
event listeners (tests that watch the statements go by).
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, exc
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert, UpdateBase
from sqlalchemy.sql.selectable import Select

_REQUIRED = object()
# IN-list lengths whose SQL a plan keeps (a batch of a few hundred ids is one shape).
_MAX_LIST_SHAPES = 64
_Processor = Callable[[Any], Any] | None


class _Plan:
    """One statement, compiled for one set of parameter names."""

    __slots__ = (
        "binds",
        "converters",
        "lists",
        "metadata",
        "primary_key",
        "rowid",
        "sql",
        "sql_for",
    )

    def __init__(self, compiled: SQLCompiler, primary_key: tuple[str, ...], rowid: bool) -> None:
        self.sql = compiled.string
        assert compiled.positiontup is not None
        # (parameter key, compiled name, value when not given, processor) per "?"
        self.binds: tuple[tuple[str, str, Any, _Processor], ...] = tuple(
            (
                compiled.binds[name].key,
                name,
                _REQUIRED if compiled.binds[name].required else compiled.binds[name].value,
                _bind_processor(compiled, name),
            )
            for name in compiled.positiontup
        )
        # Expanding IN lists: "IN (__[POSTCOMPILE_name])" becomes one "?" per item.
        self.lists = tuple(sorted(bind.key for bind in compiled.post_compile_params))
        self.sql_for: dict[tuple[int, ...], str] = {}
        # (column index, processor) for each result column whose value needs one
        self.converters: tuple[tuple[int, Callable[[Any], Any]], ...] = ()
        self.metadata: SimpleResultMetaData | None = None
        # An INSERT's key: the values the caller gave for it, or SQLite's rowid.
        self.primary_key = primary_key
        self.rowid = rowid
        if not (compiled.isinsert or compiled.isupdate or compiled.isdelete):
            dialect = compiled.dialect
            entries = compiled._result_columns
            results = [entry.type._cached_result_processor(dialect, None) for entry in entries]
            self.converters = tuple((i, p) for i, p in enumerate(results) if p is not None)
            self.metadata = SimpleResultMetaData([entry.keyname for entry in entries])

    def values(self, parameters: Mapping[str, Any]) -> tuple[Any, ...]:
        out: list[Any] = []
        for key, name, default, process in self.binds:
            if key in parameters:
                value = parameters[key]
            elif name in parameters:
                value = parameters[name]
            elif default is _REQUIRED:
                raise exc.InvalidRequestError(f"A value is required for bind parameter {key!r}")
            else:
                value = default
            if key in self.lists:
                out.extend(value if process is None else map(process, value))
            else:
                out.append(value if process is None else process(value))
        return tuple(out)

    def sql_with(self, parameters: Mapping[str, Any]) -> str | None:
        """The SQL for these parameters: with as many "?" as each IN list has items;
        None for an empty list (SQLAlchemy writes those as an empty-set expression)."""
        if not self.lists:
            return self.sql
        if not all(type(parameters.get(key)) in (list, tuple) for key in self.lists):
            return None  # missing or not a list: SQLAlchemy says what is wrong
        sizes = tuple(len(parameters[key]) for key in self.lists)
        if not all(sizes):
            return None
        sql = self.sql_for.get(sizes)
        if sql is None:
            sql = self.sql
            for key, size in zip(self.lists, sizes, strict=True):
                sql = sql.replace(f"__[POSTCOMPILE_{key}]", ", ".join("?" * size))
            if len(self.sql_for) < _MAX_LIST_SHAPES:
                self.sql_for[sizes] = sql
        return sql

    def result(self, cursor: sqlite3.Cursor, parameters: Mapping[str, Any] | None) -> Any:
        if self.metadata is None:
            key: tuple[Any, ...] | None = None
            if parameters is not None and self.primary_key:
                key = tuple(parameters.get(name) for name in self.primary_key)
                if self.rowid and key[0] is None:
                    key = (cursor.lastrowid,)
            return _Written(cursor.rowcount, key)
        rows = cursor.fetchall()
        if self.converters:
            rows = [self._convert(row) for row in rows]
        return IteratorResult(self.metadata, iter(rows))

    def _convert(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        values = list(row)
        for i, process in self.converters:
            values[i] = process(values[i])
        return tuple(values)


class _Written:
    """What an INSERT, UPDATE or DELETE tells its caller."""

    __slots__ = ("_key", "rowcount")

    def __init__(self, rowcount: int, key: tuple[Any, ...] | None) -> None:
        self.rowcount = rowcount
        self._key = key

    @property
    def inserted_primary_key(self) -> tuple[Any, ...]:
        if self._key is None:
            raise exc.InvalidRequestError(
                "inserted_primary_key is only for a single-row INSERT statement"
            )
        return self._key


class PreparedStatements:
    """Plans for the statements this process runs repeatedly, keyed by the statement
    object itself: by its id, with a weak reference that tells a statement from a
    later one at the same address, so a statement built per call leaves nothing
    behind (a WeakKeyDictionary's lookup cost more than the plan saved)."""

    def __init__(self) -> None:
        self._plans: dict[int, tuple[weakref.ref[Any], dict[tuple[Any, ...], _Plan | None]]] = {}

    def execute(self, conn: Connection, statement: Any, parameters: Any) -> Any:
        plan = self._plan(conn, statement, parameters)
        if plan is None:
            return conn.execute(statement, parameters)
        raw = conn.connection.driver_connection
        assert raw is not None
        if type(parameters) is list:
            sql: str | None = plan.sql
        else:
            parameters = parameters or _EMPTY
            sql = plan.sql_with(parameters)
            if sql is None:
                return conn.execute(statement, parameters)
        try:
            if type(parameters) is list:
                cursor = raw.executemany(sql, [plan.values(p) for p in parameters])
                return plan.result(cursor, None)
            cursor = raw.execute(sql, plan.values(parameters))
            return plan.result(cursor, parameters)
        except Exception as error:
            # As SQLAlchemy raises them: a DBAPIError subclass (IntegrityError, ...) for
            # the database's errors, StatementError for a value no processor took.
            raise exc.DBAPIError.instance(
                sql, parameters, error, sqlite3.Error, dialect=conn.dialect
            ) from error

    def _plan(self, conn: Connection, statement: Any, parameters: Any) -> _Plan | None:
        entry = self._plans.get(id(statement))
        if entry is None or entry[0]() is not statement:
            if isinstance(statement, Select | UpdateBase):
                self._remember(statement)  # seen once: the second run prepares it
            return None
        if conn._has_events or conn.engine._has_events or conn.dialect._has_events:
            return None
        many = type(parameters) is list
        if many:
            if not parameters:
                return None
            names = tuple(parameters[0])
        elif parameters is None:
            names = ()
        elif type(parameters) is dict:
            names = tuple(parameters)
        else:
            return None  # SQLAlchemy's other parameter shapes
        plans = entry[1]
        key = (names, many)
        try:
            return plans[key]
        except KeyError:
            plan = plans[key] = _prepare(conn, statement, names, many)
            return plan

    def _remember(self, statement: Any) -> None:
        key = id(statement)
        plans = self._plans
        self._plans[key] = (weakref.ref(statement, lambda _: plans.pop(key, None)), {})


_EMPTY: Mapping[str, Any] = {}


def _prepare(conn: Connection, statement: Any, names: tuple[str, ...], many: bool) -> _Plan | None:
    if many and not isinstance(statement, Insert):
        return None
    compiled = statement.compile(
        dialect=conn.dialect, column_keys=sorted(names), for_executemany=many
    )
    if not isinstance(compiled, SQLCompiler) or not _reproducible(compiled):
        return None
    primary_key: tuple[str, ...] = ()
    rowid = False
    if compiled.isinsert and not many:
        table = statement.table
        columns = list(table.primary_key.columns)
        primary_key = tuple(column.key for column in columns)
        rowid = len(columns) == 1 and table.autoincrement_column is columns[0]
        if not rowid and not set(primary_key) <= set(names):
            return None  # a key SQLAlchemy would find elsewhere: let it
    plan = _Plan(compiled, primary_key, rowid)
    return None if many and plan.lists else plan


def _bind_processor(compiled: SQLCompiler, name: str) -> _Processor:
    process = compiled._bind_processors.get(name)
    # A sequence is one processor per element of a tuple-typed bind: never planned.
    assert not isinstance(process, Sequence)
    return process


def _reproducible(compiled: SQLCompiler) -> bool:
    """True when running the SQL with the parameters in order does all SQLAlchemy
    would: nothing computed in Python, rewritten per run, or returned."""
    return not (compiled.effective_returning or compiled.returning) and _binds_as_compiled(compiled)


def _binds_as_compiled(compiled: SQLCompiler) -> bool:
    """True when the compiled SQL takes its parameters in order as they are given:
    nothing computed in Python (defaults, callables) or rewritten per run. Shared
    with the PostgreSQL path (app/db/postgres.py), which allows a returned key too."""
    return not (
        compiled.positiontup is None
        or compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.literal_execute_params
        or any(not bind.expanding or bind.literal_execute for bind in compiled.post_compile_params)
        or compiled.escaped_bind_names
        or any(isinstance(process, Sequence) for process in compiled._bind_processors.values())
        or compiled._insertmanyvalues
        or getattr(compiled, "_collected_params", None)
        or any(bind.callable for bind in compiled.binds.values())
    )
