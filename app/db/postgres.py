"""PostgreSQL's short path: transactions and kept statements straight on asyncpg.

Profiled under the write benchmark (bench/NOTES.md), a payment on PostgreSQL cost
several times the API's CPU of one on SQLite, and most of it was not PostgreSQL's
work but round trips and Python around them:

- `pool_pre_ping` sent BEGIN, ";" and ROLLBACK on every pool checkout (the asyncpg
  dialect pings inside a transaction), about ten checkouts a payment. Here the
  transaction's own BEGIN is the ping: a BEGIN that finds the connection dead
  (PostgreSQL restarted, a proxy dropped it) invalidates it and begins again on a
  fresh one, before anything of the caller's has run. On a connection used in the
  last second BEGIN is sent with the transaction's first statement, and not at all
  when all the transaction did was write behind (app/db/write_behind.py: one
  statement, its own transaction).
- Reads began a transaction and rolled it back: reads here run in autocommit, each
  statement seeing the latest commit (as SQLite's reading connection does).
- SQLAlchemy's execution (a greenlet per statement, an execution context, the
  result's processing) was ~20 µs of Python a statement. A repository's kept
  statements (module-level, run again and again) are planned the second time they
  run from SQLAlchemy's own compilation for this dialect (SQL, parameter order,
  type processors, as app/db/prepared.py does for SQLite) and then run as
  server-side prepared statements on the asyncpg connection itself, kept per
  connection. An IN list becomes `= ANY($n)` with one array parameter, so every
  length shares one prepared statement.

Anything a plan cannot reproduce (statements built per call, Python-side defaults,
explicit RETURNING, connections with event listeners) goes through SQLAlchemy on
the same connection and in the same transaction: the transaction is begun and
ended on SQLAlchemy's own adapter (`_start_transaction`, `_transaction`), so its
bookkeeping and ours agree.

A connection is used by one caller at a time and goes back to the idle list only
in a known state (Connections): an error that is not PostgreSQL's own answer to a
statement, or a cancellation mid-statement, closes it at once.

Private internals relied on, hence SQLAlchemy pinned to one minor version in
pyproject.toml, `COBRO_POSTGRES_FAST_PATH=false` to run plain SQLAlchemy instead,
and tests/services/test_postgres_both_ways.py running the repositories' kept
statements both ways and comparing:

- SQLAlchemy's asyncpg adapter (`AsyncAdapt_asyncpg_connection`, the pool
  connection's `dbapi_connection`): `_start_transaction()`, `_transaction` (the
  asyncpg Transaction or None), `_handle_exception(error)` (asyncpg's error as
  SQLAlchemy's DBAPI-style one), `_connection` (the asyncpg connection), `dbapi`
  (its exception classes), `autocommit` (settable).
- SQLAlchemy's event flags `Connection._has_events`, `Engine._has_events`,
  `Dialect._has_events` (a connection someone listens to runs through SQLAlchemy).
- SQLAlchemy's compiler, to plan a statement as SQLAlchemy would run it:
  `SQLCompiler.positiontup`, `binds`, `_bind_processors`, `post_compile_params`,
  `_result_columns`, `effective_returning`, `returning`, `insert_prefetch`,
  `update_prefetch`, `literal_execute_params`, `escaped_bind_names`,
  `_insertmanyvalues`, `_collected_params`; `TypeEngine._cached_result_processor`;
  `UpdateBase._returning`; the `__[POSTCOMPILE_name]` form of expanding IN lists.
- SQLAlchemy's result classes `IteratorResult` and `SimpleResultMetaData`.
- asyncpg: `Connection.is_closed()`, `is_in_transaction()`, `terminate()`,
  `prepare()` and `PreparedStatement.get_statusmsg()` are public; the client-side
  `asyncpg.exceptions._base.DataError` is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import exc
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert, UpdateBase
from sqlalchemy.sql.selectable import Select

from app.db import write_behind
from app.db.prepared import _EMPTY, _REQUIRED, _bind_processor, _binds_as_compiled, _Written

log = logging.getLogger("cobro.db")

_Processor = Callable[[Any], Any] | None
# Server-side prepared statements kept per connection (the hot path uses ~30).
_MAX_STATEMENTS = 256
_STATEMENTS = "cobro.prepared"
# A transaction whose BEGIN finds its connection broken begins again on another,
# this many times in all (nothing of the caller's has run yet).
_BEGIN_ATTEMPTS = 3
_PLACEHOLDER = re.compile(r"\$(\d+)(?!\d)|(NOT IN|IN) \(__\[POSTCOMPILE_(\w+)\]\)")


class _Plan:
    """One statement compiled for PostgreSQL for one set of parameter names."""

    __slots__ = (
        "binds",
        "converters",
        "metadata",
        "primary_key",
        "returns_key",
        "shape",
        "sql",
        "tables",
    )

    def __init__(self, sql: str, binds: tuple[tuple[str, str, Any, _Processor, bool], ...]):
        self.sql = sql
        # (parameter key, compiled name, value when not given, processor, is a list)
        self.binds = binds
        self.converters: tuple[tuple[int, Callable[[Any], Any]], ...] = ()
        self.metadata: SimpleResultMetaData | None = None
        self.primary_key: tuple[str, ...] = ()
        self.returns_key = False  # an INSERT whose RETURNING is its generated key
        self.tables: frozenset[str] = frozenset()  # every table it reads or writes
        self.shape: write_behind.Shape | None = None  # how it may be written behind

    def values(self, parameters: Mapping[str, Any]) -> list[Any]:
        out = []
        for key, name, default, process, is_list in self.binds:
            if key in parameters:
                value = parameters[key]
            elif name in parameters:
                value = parameters[name]
            elif default is _REQUIRED:
                raise exc.InvalidRequestError(f"A value is required for bind parameter {key!r}")
            else:
                value = default
            if is_list:
                value = list(value) if process is None else [process(v) for v in value]
            elif process is not None:
                value = process(value)
            out.append(value)
        return out

    def rows(self, records: list[Any]) -> IteratorResult[Any]:
        assert self.metadata is not None
        if self.converters:
            rows = [self._convert(record) for record in records]
        else:
            rows = [tuple(record) for record in records]
        return IteratorResult(self.metadata, iter(rows))

    def _convert(self, record: Any) -> tuple[Any, ...]:
        values = list(record)
        for i, process in self.converters:
            values[i] = process(values[i])
        return tuple(values)


class Plans:
    """Plans for the statements this process runs repeatedly, keyed like
    app/db/prepared.py's: the statement's id, checked by a weak reference."""

    def __init__(self) -> None:
        self._plans: dict[int, tuple[weakref.ref[Any], dict[tuple[Any, ...], _Plan | None]]] = {}

    def plan(self, conn: AsyncConnection, statement: Any, parameters: Any) -> _Plan | None:
        entry = self._plans.get(id(statement))
        if entry is None or entry[0]() is not statement:
            if isinstance(statement, Select | UpdateBase):
                statement_id = id(statement)
                known = self._plans
                known[statement_id] = (
                    weakref.ref(statement, lambda _: known.pop(statement_id, None)),
                    {},
                )
            return None  # seen once: the second run plans it
        many = type(parameters) is list
        if many:
            if not parameters or type(parameters[0]) is not dict:
                return None
            names = tuple(parameters[0])
        elif parameters is None:
            names = ()
        elif type(parameters) is dict:
            names = tuple(parameters)
        else:
            return None
        plans = entry[1]
        key = (names, many)
        try:
            return plans[key]
        except KeyError:
            plan = plans[key] = _prepare(conn, statement, names, many)
            return plan


def _prepare(
    conn: AsyncConnection, statement: Any, names: tuple[str, ...], many: bool
) -> _Plan | None:
    if many and not isinstance(statement, Insert):
        return None
    compiled = statement.compile(
        dialect=conn.dialect, column_keys=sorted(names), for_executemany=many
    )
    if not isinstance(compiled, SQLCompiler) or not _reproducible(compiled, statement, many):
        return None
    sql = _numbered(compiled)
    if sql is None:
        return None
    lists = {id(bind) for bind in compiled.post_compile_params}
    binds: list[tuple[str, str, Any, _Processor, bool]] = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        default = _REQUIRED if bind.required else bind.value
        binds.append((bind.key, name, default, _bind_processor(compiled, name), id(bind) in lists))
    plan = _Plan(sql, tuple(binds))
    plan.tables = write_behind.tables_of(statement)
    if compiled.isinsert or compiled.isupdate:
        plan.shape = write_behind.shape_of(compiled, statement, sql, len(binds))
    if compiled.isinsert and not many:
        table = statement.table
        columns = list(table.primary_key.columns)
        plan.primary_key = tuple(column.key for column in columns)
        if compiled.effective_returning:
            plan.returns_key = True
        elif not set(plan.primary_key) <= set(names):
            return None
    if not (compiled.isinsert or compiled.isupdate or compiled.isdelete):
        dialect = compiled.dialect
        entries = compiled._result_columns
        result = [entry.type._cached_result_processor(dialect, None) for entry in entries]
        plan.converters = tuple((i, p) for i, p in enumerate(result) if p is not None)
        plan.metadata = SimpleResultMetaData([entry.keyname for entry in entries])
    return plan


def _reproducible(compiled: SQLCompiler, statement: Any, many: bool) -> bool:
    """True when the SQL with these parameters in order does all SQLAlchemy would.
    An INSERT may return its generated key (how PostgreSQL answers
    `inserted_primary_key`), nothing else."""
    returning = compiled.effective_returning or compiled.returning
    if returning:
        table = getattr(statement, "table", None)
        if (
            not compiled.isinsert
            or many
            or statement._returning
            or table is None
            or table.autoincrement_column is None
            or list(returning) != [table.autoincrement_column]
        ):
            return False
    return _binds_as_compiled(compiled)


def _numbered(compiled: SQLCompiler) -> str | None:
    """The SQL with its parameters numbered in order of `positiontup`, each IN list
    as `= ANY($n)` (NOT IN as `<> ALL($n)`); None if it is not in the expected shape."""
    names = list(compiled.positiontup or ())
    expanding = {id(bind) for bind in compiled.post_compile_params}
    lists = {name for name, bind in compiled.binds.items() if id(bind) in expanding}
    out: list[str] = []
    position = 0
    expected = 0
    last = 0
    for match in _PLACEHOLDER.finditer(compiled.string):
        out.append(compiled.string[last : match.start()])
        last = match.end()
        if position >= len(names):
            return None
        if match.group(1) is not None:
            expected += 1
            if int(match.group(1)) != expected or names[position] in lists:
                return None
            out.append(f"${position + 1}")
        else:
            if match.group(3) != names[position] or names[position] not in lists:
                return None
            operator = "= ANY" if match.group(2) == "IN" else "<> ALL"
            out.append(f"{operator}(${position + 1})")
        position += 1
    if position != len(names):
        return None
    out.append(compiled.string[last:])
    return "".join(out)


# What FastConnection holds of its connection (the rest is its transaction's).
_PHYSICAL = ("_adapter", "_conn", "_raw", "_statements", "broken", "idle_since", "info")


def _has_events(conn: AsyncConnection) -> bool:
    sync = conn.sync_connection
    assert sync is not None
    return bool(sync._has_events or sync.engine._has_events or sync.dialect._has_events)


class FastConnection:
    """The async connection interface callers use, over SQLAlchemy's AsyncConnection:
    planned statements go straight to asyncpg, the rest through SQLAlchemy."""

    __slots__ = (
        "_adapter",
        "_conn",
        "_group",
        "_plans",
        "_pool",
        "_raw",
        "_statements",
        "broken",
        "deferring",
        "dialect",
        "discarded",
        "idle_since",
        "in_use",
        "info",
        "lazy",
    )

    def __init__(
        self, conn: AsyncConnection, plans: Plans | None, pool: Connections | None = None
    ) -> None:
        self._conn = conn
        self._pool = pool
        sync = conn.sync_connection
        assert sync is not None
        fairy = sync.connection
        self._adapter: Any = fairy.dbapi_connection
        self._raw: Any = fairy.driver_connection
        self._plans = plans
        self.dialect = conn.dialect
        self.info = fairy.info
        statements = self.info.get(_STATEMENTS)
        if statements is None:
            statements = self.info[_STATEMENTS] = {}
        self._statements: dict[str, Any] = statements
        self.idle_since = time.monotonic()
        # Set when an operation on the connection ended in a way that leaves its
        # protocol state unknown; it is then closed at once and never used again.
        self.broken = False
        self.in_use = False  # handed out by Connections, not in its idle list
        self.discarded = False
        # In a transaction: writes may be kept for later (app/db/write_behind.py).
        self.deferring = False
        # In a transaction whose BEGIN is not sent yet: it goes with the first
        # statement, or never, when all the block did was write behind.
        self.lazy = False
        self._group = write_behind.Group()

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        plan = self._plans.plan(self._conn, statement, parameters) if self._plans else None
        if self.lazy:
            await self._begin_now()
        if self._group and (plan is None or self._group.touches(plan.tables)):
            await self.flush()  # the statement must see what they write
        if plan is None:
            if self._pool is not None:
                self._pool.unplanned += 1
            began = self._adapter._transaction is not None
            try:
                return await self._conn.execute(statement, parameters)
            except BaseException as error:
                self._after_error(error, began)
                raise
        many = type(parameters) is list and len(parameters) > 1
        try:
            if many:
                args: Any = [plan.values(p) for p in parameters]
            else:
                if type(parameters) is list:
                    parameters = parameters[0]  # one row: a plain run costs less
                args = plan.values(parameters or _EMPTY)
        except Exception as error:  # a value no processor took: as SQLAlchemy says it
            raise exc.DBAPIError.instance(
                plan.sql, parameters, error, self._adapter.dbapi.Error, dialect=self.dialect
            ) from error
        try:
            prepared = await self._prepared(plan.sql)
            if many:
                await prepared.executemany(args)
                return _Written(-1, None)
            records = await prepared.fetch(*args)
        except Exception as error:
            raise await self._translate(plan.sql, parameters, error) from error
        except BaseException as error:  # cancelled mid-statement: its outcome is unknown
            self._after_error(error)
            raise
        if plan.metadata is not None:
            return plan.rows(records)
        key: tuple[Any, ...] | None = None
        if plan.returns_key:
            key = (records[0][0],) if records else None
        elif plan.primary_key:
            key = tuple((parameters or _EMPTY).get(name) for name in plan.primary_key)
        return _Written(_rowcount(prepared.get_statusmsg()), key)

    async def _prepared(self, sql: str) -> Any:
        prepared = self._statements.get(sql)
        if prepared is None:
            if len(self._statements) >= _MAX_STATEMENTS:
                self._statements.clear()
            prepared = await self._raw.prepare(sql)
            self._statements[sql] = prepared
        return prepared

    async def defer(
        self, statement: Any, parameters: Any, on_key: write_behind.KeyCallback | None
    ) -> bool:
        """Keep a write to send later with the transaction's others (see
        app/db/write_behind.py); False when it must run now instead."""
        if not self.deferring or self._plans is None:
            return False
        plan = self._plans.plan(self._conn, statement, parameters)
        shape = plan.shape if plan is not None else None
        if plan is None or shape is None:
            return False
        rows = parameters if type(parameters) is list else [parameters or _EMPTY]
        if not rows or (len(rows) > 1 and shape.row is None):
            return False
        if on_key is not None and (not plan.returns_key or len(rows) != 1):
            return False
        try:
            arguments = [plan.values(row) for row in rows]
        except Exception as error:  # a value no processor took: as SQLAlchemy says it
            raise exc.DBAPIError.instance(
                plan.sql, parameters, error, self._adapter.dbapi.Error, dialect=self.dialect
            ) from error
        group = self._group
        reads = plan.tables - shape.writes  # a subquery's tables, say
        if group and (not group.accepts(shape, len(rows)) or group.writes_any(reads)):
            await self.flush()
        if not group.accepts(shape, len(rows)):
            return False  # too large for one statement even alone
        group.add(plan.sql, shape, arguments, on_key, reads)
        return True

    async def _begin_now(self) -> None:
        """The BEGIN a lazy transaction owes. One that finds the connection broken
        (PostgreSQL dropped it since its last use) takes over another connection:
        nothing of the transaction was sent yet."""
        self.lazy = False
        try:
            await self._adapter._start_transaction()
        except Exception as error:
            if self._pool is not None and _broke(error, self._raw):
                self._after_error(error)  # broken: never used again, whatever comes next
                await self._pool.replace(self, begin=True)
                return
            raise await self._translate("BEGIN", None, error) from error
        except BaseException as error:
            self._after_error(error)
            raise

    async def flush(self, *, alone: bool = False) -> None:
        """Send the writes kept for later, as one statement. `alone`: the block did
        nothing else, so the statement is the transaction (autocommit): no BEGIN and
        no COMMIT."""
        if self.lazy and not alone:
            await self._begin_now()
        if not self._group:
            return
        if alone and self._raw.is_closed() and self._pool is not None:
            await self._pool.replace(self, begin=False)  # dropped since its last use
        sql, arguments, keyed = self._group.take()
        try:
            prepared = await self._prepared(sql)
            records = await prepared.fetch(*arguments)
        except Exception as error:
            raise await self._translate(sql, None, error) from error
        except BaseException as error:  # cancelled mid-statement: its outcome is unknown
            self._after_error(error)
            raise
        for column, callback in keyed:
            callback(records[0][column])

    def leave_transaction(self) -> None:
        """The transaction is over: nothing more is kept for it, and what was kept and
        not sent (the block failed) is dropped."""
        self.deferring = False
        self.lazy = False
        self._group.clear()

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return (await self.execute(statement, parameters)).scalar()

    async def run_sync(self, fn: Callable[..., Any], *args: Any) -> Any:
        await self.flush()
        began = self._adapter._transaction is not None
        try:
            return await self._conn.run_sync(fn, *args)
        except BaseException as error:
            self._after_error(error, began)
            raise

    def _after_error(self, error: BaseException, began: bool = False) -> None:
        """After a statement failed: unless PostgreSQL itself answered it with an error
        (the protocol is then back in step, ready for the ROLLBACK), the connection
        is broken: closed at once, so not another byte is sent on it, and the error
        marked as the connection's (`is_unreachable`: the caller's transaction was
        not committed, PostgreSQL rolls it back as the connection closes).

        Also broken: a transaction SQLAlchemy ended by itself. An error SQLAlchemy
        raises before it begins its own bookkeeping (a parameter missing or refused
        by its type) makes it roll back the adapter's transaction, ours; statements
        after it would otherwise run outside any transaction, each committing alone,
        and the block's COMMIT would find nothing to commit."""
        if self.broken:
            return
        lost = began and self._adapter._transaction is None
        if not _broke(error, self._raw) and not lost:
            return
        self.broken = True
        with contextlib.suppress(Exception):
            self._raw.terminate()
        if isinstance(error, exc.DBAPIError):
            error.connection_invalidated = True

    async def _translate(self, sql: str, parameters: Any, error: Exception) -> Exception:
        """The error as SQLAlchemy would raise it (IntegrityError, ...), with
        `connection_invalidated` set when it broke the connection."""
        self._after_error(error)
        try:
            self._adapter._handle_exception(error)
        except Exception as translated:  # the DBAPI-level error SQLAlchemy wraps
            dbapi_error = translated
        else:  # pragma: no cover - _handle_exception always raises
            dbapi_error = error
        dbapi_base: type[Exception] = self._adapter.dbapi.Error
        if isinstance(dbapi_error, dbapi_base):
            return exc.DBAPIError.instance(
                sql,
                parameters,
                dbapi_error,
                dbapi_base,
                dialect=self.dialect,
                connection_invalidated=self.broken,
            )
        return error


def _driver_error(error: BaseException) -> BaseException:
    """asyncpg's own exception behind SQLAlchemy's wrappers (DBAPIError.orig, then the
    asyncpg adapter's DBAPI-style error raised from it)."""
    if isinstance(error, exc.DBAPIError) and error.orig is not None:
        error = error.orig
    if type(error).__module__.startswith("sqlalchemy") and error.__cause__ is not None:
        error = error.__cause__
    return error


def _answered(error: BaseException) -> bool:
    """True when the failure leaves the connection as it was before the statement:
    PostgreSQL's own error for the statement (it then sends ReadyForQuery, so the
    protocol is idle again), or a value asyncpg could not encode or SQLAlchemy could
    not compile (nothing was sent). Anything else (the connection lost, asyncpg's
    protocol out of step: "cannot switch to state ..." after a FATAL message
    arrived on an idle connection, a timeout or cancellation mid-statement, a
    server shutting the session down) leaves it in a state nobody knows."""
    if not isinstance(error, Exception):
        return False
    driver = _driver_error(error)
    if isinstance(driver, asyncpg.PostgresError):
        return not isinstance(driver, _SESSION_ENDED)
    if isinstance(driver, _ENCODING):
        return True  # a parameter asyncpg could not encode: raised before sending
    return isinstance(error, exc.SQLAlchemyError) and not isinstance(error, exc.DBAPIError)


def _broke(error: BaseException, raw: Any) -> bool:
    """True when the failure left the asyncpg connection `raw` unusable: anything but
    PostgreSQL's own answer to a statement, or a connection closed meanwhile."""
    return not _answered(error) or bool(raw.is_closed())


# PostgreSQL ending the session (shutdown, crash, pg_terminate_backend): the message
# precedes the connection's close.
_SESSION_ENDED = (
    asyncpg.exceptions.FatalPostgresError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.DatabaseDroppedError,
    asyncpg.exceptions.IdleSessionTimeoutError,
)
# asyncpg's client-side DataError (not SQLSTATE 22000's class of the same name).
_ENCODING = asyncpg.exceptions._base.DataError


def _rowcount(status: str | None) -> int:
    """'UPDATE 3' -> 3, 'INSERT 0 1' -> 1; -1 when the status carries no count."""
    if status:
        last = status.rpartition(" ")[2]
        if last.isdigit():
            return int(last)
    return -1


class Connections:
    """The connections this process holds, each kept checked out of SQLAlchemy's pool
    with its FastConnection: a checkout and return through the pool (a greenlet
    each way, reset on return, events) was 5% of a payment. Last in, first out, so
    the busiest connections stay warm; at most `size` open, then callers wait.

    A connection goes back to the idle list only in a known state: not closed, no
    transaction open, and no operation of asyncpg's left unfinished on it (every
    error that is not PostgreSQL's own answer to a statement, and every
    cancellation mid-statement, breaks it: FastConnection closes it on the spot).
    A transaction's end (COMMIT or ROLLBACK) that fails discards it as well.
    Anything else is discarded: closed and its pool slot given back.

    A connection PostgreSQL dropped while idle is usually closed by the time it
    is next taken (asyncpg sees the socket close) and is skipped; otherwise the
    BEGIN of the next transaction on it finds it (which then begins again on
    another), or, for a read, a ping when it sat idle longer than IDLE_PING_SECONDS,
    or the read's first statement (the read then fails as an outage)."""

    IDLE_PING_SECONDS = 10.0
    # A transaction on a connection used this recently sends its BEGIN with its first
    # statement; on one idle longer, BEGIN goes first, as the ping that finds a
    # connection PostgreSQL dropped meanwhile (and begins again on another).
    LAZY_BEGIN_SECONDS = 1.0

    @property
    def in_use(self) -> int:
        """Connections open and handed out now (for /metrics)."""
        return self._open - len(self._idle)

    def __init__(self, engine: AsyncEngine, plans: Plans, size: int) -> None:
        self.engine = engine
        self.plans = plans
        self.size = size
        self._idle: list[FastConnection] = []
        self._open = 0
        self._waiters: deque[asyncio.Future[FastConnection | None]] = deque()
        self._closing: set[asyncio.Task[None]] = set()
        # Statements run through SQLAlchemy's own execution (not planned: seen once,
        # built per call, or in a shape a plan cannot reproduce); a hot path that
        # shows here pays SQLAlchemy's Python on every run.
        self.unplanned = 0

    async def _acquire(self) -> FastConnection:
        while True:
            while self._idle:
                fast = self._idle.pop()
                if fast._raw.is_closed():  # PostgreSQL dropped it while it sat here
                    await self._discard(fast)
                    continue
                fast.in_use = True
                return fast
            if self._open < self.size:
                self._open += 1
                try:
                    fast = FastConnection(await self.engine.connect(), self.plans, self)
                except BaseException:
                    self._open -= 1
                    self._wake()  # the slot is free again for whoever waits
                    raise
                fast.in_use = True
                return fast
            waiter: asyncio.Future[FastConnection | None]
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                offered = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    handed = waiter.result()
                    if handed is not None:
                        self._release(handed)
                    else:
                        self._wake()  # pass the freed slot on
                raise
            if offered is not None:
                return offered  # handed over by _release; None: a slot freed, try again

    def _release(self, fast: FastConnection) -> None:
        """Hand a connection in a known state to the next waiter, or keep it idle."""
        if not fast.in_use or fast.discarded:  # pragma: no cover - a bug, refused
            log.error("connection released twice; not kept")
            return
        fast.idle_since = time.monotonic()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(fast)
                return
        fast.in_use = False
        self._idle.append(fast)

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _discard(self, fast: FastConnection) -> None:
        """Close a connection for good: asyncpg's at once (nothing more is sent on it),
        then SQLAlchemy's bookkeeping, which gives the pool slot back; that part
        finishes even if the caller is cancelled meanwhile."""
        if fast.discarded:
            return
        fast.discarded = True
        fast.in_use = False
        fast.broken = True
        self._open -= 1
        with contextlib.suppress(Exception):
            fast._raw.terminate()
        self._wake()
        task = asyncio.get_running_loop().create_task(_give_back(fast._conn))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        await asyncio.shield(task)

    async def _finish(self, fast: FastConnection) -> None:
        """Back to the idle list if nothing is left on it, else discarded."""
        if (
            fast.broken
            or fast._raw.is_closed()
            or fast._raw.is_in_transaction()
            or fast._conn.invalidated
            or fast._adapter._transaction is not None
        ):
            await self._discard(fast)
        else:
            self._release(fast)

    async def replace(self, fast: FastConnection, *, begin: bool) -> None:
        """`fast`'s connection broke before anything of its transaction was sent on it:
        it takes over another connection (in a transaction when `begin`), keeping the
        transaction's own state (what it writes behind, its hooks in `info`), and the
        broken connection is discarded."""
        fresh = await (self._begin() if begin else self._acquire())
        kept = {k: v for k, v in fast.info.items() if k != _STATEMENTS}
        for slot in _PHYSICAL:
            mine, theirs = getattr(fast, slot), getattr(fresh, slot)
            setattr(fast, slot, theirs)
            setattr(fresh, slot, mine)
        fast.info.update(kept)
        await self._discard(fresh)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for fast in idle:
            self._open -= 1
            fast.discarded = True
            with contextlib.suppress(Exception):
                await fast._conn.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def _begin(self, fast: FastConnection | None = None) -> FastConnection:
        """A connection (`fast`, or one from the idle list) in a transaction. A BEGIN
        that finds its connection broken (PostgreSQL restarted, a proxy dropped it, a
        FATAL message arrived while it sat idle) is our ping: begin again on another,
        before anything of the caller's has run."""
        for attempt in range(_BEGIN_ATTEMPTS):
            if fast is None or attempt:
                fast = await self._acquire()
            adapter = fast._adapter
            try:
                await adapter._start_transaction()
            except BaseException as error:
                broken = _broke(error, fast._raw)
                await self._discard(fast)
                if not isinstance(error, Exception):
                    raise  # cancelled while beginning
                if broken and attempt + 1 < _BEGIN_ATTEMPTS:
                    continue
                if isinstance(error, adapter.dbapi.Error):
                    raise exc.DBAPIError.instance(
                        "BEGIN",
                        None,
                        error,
                        adapter.dbapi.Error,
                        dialect=fast.dialect,
                        connection_invalidated=broken,
                    ) from error
                raise
            return fast
        raise AssertionError("unreachable")  # pragma: no cover

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        """In a transaction, committed when the block ends, rolled back on error. Yields
        SQLAlchemy's own connection when listeners watch it (tests counting statements),
        the FastConnection otherwise."""
        fast = await self._acquire()
        watched = _has_events(fast._conn)
        if watched or time.monotonic() - fast.idle_since > self.LAZY_BEGIN_SECONDS:
            fast = await self._begin(fast)
        else:
            fast.lazy = True
        fast.deferring = True
        try:
            yield fast._conn if watched else fast
            # What the block kept for later (app/db/write_behind.py); when that is
            # all it did, as a statement of its own, without BEGIN and COMMIT.
            await fast.flush(alone=fast.lazy)
        except BaseException:
            fast.leave_transaction()
            await self._end(fast, commit=False)
            raise
        fast.leave_transaction()
        await self._end(fast, commit=True)

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[Any]:
        """No transaction: each statement commits (or just reads) on its own."""
        fast = await self._acquire()
        if time.monotonic() - fast.idle_since > self.IDLE_PING_SECONDS:
            try:
                await fast._raw.execute(";")
            except Exception:
                await self._discard(fast)
                fast = await self._acquire()
            except BaseException:
                await self._discard(fast)
                raise
        adapter = fast._adapter
        adapter.autocommit = True
        try:
            yield fast._conn if _has_events(fast._conn) else fast
        finally:
            await self._done(fast)

    @asynccontextmanager
    async def steps(self) -> AsyncIterator[Any]:
        """No transaction, as `autocommit`, but writes are kept for later as in one
        (app/db/write_behind.py): sent before a statement that touches their tables,
        and at the block's end, each time as one statement committing on its own."""
        async with self.autocommit() as conn:
            fast: FastConnection | None = conn if isinstance(conn, FastConnection) else None
            if fast is None:  # watched: SQLAlchemy runs every statement as it comes
                yield conn
                return
            fast.deferring = True
            try:
                yield fast
                await fast.flush(alone=True)
            finally:
                fast.leave_transaction()

    async def _done(self, fast: FastConnection) -> None:
        """After an autocommit block: SQLAlchemy's own bookkeeping of a statement it
        ran is closed (nothing is sent), then the connection is kept or discarded."""
        try:
            fast._adapter.autocommit = False
            if not fast.broken and fast._conn.in_transaction():
                await fast._conn.rollback()
        except BaseException:
            await self._discard(fast)
            raise
        await self._finish(fast)

    async def _end(self, fast: FastConnection, *, commit: bool) -> None:
        """COMMIT, or ROLLBACK after an error. A ROLLBACK is not sent on a broken
        connection (closing it rolls back); a failed ROLLBACK discards the connection
        and leaves the block's own error to propagate; a failed COMMIT raises."""
        if fast.broken:
            # A statement broke the connection and the block went on (its error
            # caught): nothing was committed, and that must not pass for success.
            await self._discard(fast)
            if commit:
                raise exc.DBAPIError.instance(
                    "COMMIT",
                    None,
                    fast._adapter.dbapi.InterfaceError(
                        "the connection broke earlier in this transaction; nothing was committed"
                    ),
                    fast._adapter.dbapi.Error,
                    dialect=fast.dialect,
                    connection_invalidated=True,
                )
            return
        try:
            await _end(fast._conn, fast._adapter, commit=commit)
        except Exception:
            await self._discard(fast)
            if commit:
                raise
            return
        except BaseException:
            await self._discard(fast)
            raise
        await self._finish(fast)


async def _give_back(conn: AsyncConnection) -> None:
    """SQLAlchemy's side of a discarded connection: invalidated (its pool slot freed
    for a new connection), then closed."""
    with contextlib.suppress(Exception):
        await conn.invalidate()
    with contextlib.suppress(Exception):
        await conn.close()


async def _end(conn: AsyncConnection, adapter: Any, *, commit: bool) -> None:
    """COMMIT or ROLLBACK, through SQLAlchemy when it has a transaction of its own going
    (a statement it ran), else on the adapter's asyncpg transaction. Raises if it
    fails, translated as SQLAlchemy would."""
    if conn.in_transaction():
        await (conn.commit() if commit else conn.rollback())
        return
    transaction = adapter._transaction
    if transaction is None:
        return
    try:
        await (transaction.commit() if commit else transaction.rollback())
    except Exception as error:
        try:
            adapter._handle_exception(error)
        except adapter.dbapi.Error as translated:
            raise exc.DBAPIError.instance(
                "COMMIT" if commit else "ROLLBACK",
                None,
                translated,
                adapter.dbapi.Error,
                dialect=conn.dialect,
                connection_invalidated=_broke(error, adapter._connection),
            ) from error
        raise
    finally:
        adapter._transaction = None
