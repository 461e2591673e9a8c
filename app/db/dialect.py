"""The few statements that must be spelled per database, in one place."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Column, Table, UniqueConstraint
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert


def insert_ignore(conn: AsyncConnection, table: Table, unique: list[str]) -> Insert:
    """INSERT ... ON CONFLICT (unique) DO NOTHING, on SQLite and PostgreSQL alike."""
    return _insert_ignore(conn.dialect.name, table, tuple(unique))


@lru_cache(maxsize=64)
def _insert_ignore(dialect: str, table: Table, unique: tuple[str, ...]) -> Insert:
    """Built once per table: statement objects are cheap to run, not to build."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(unique))
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(unique))


def is_unique_violation(error: IntegrityError) -> bool:
    """True when a row's key was taken (by another transaction that got there first),
    not another broken constraint: PostgreSQL's SQLSTATE 23505, SQLite's
    SQLITE_CONSTRAINT_UNIQUE or _PRIMARYKEY."""
    original = error.orig
    if getattr(original, "sqlstate", None) == "23505":
        return True
    name = getattr(original, "sqlite_errorname", None)
    return name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")


def refused_null(error: BaseException, column: Column[Any]) -> bool:
    """True when `error` is `column` refusing a NULL (a guard that writes NULL to fail
    its statement): SQLSTATE 23502 on that column, or SQLite's
    SQLITE_CONSTRAINT_NOTNULL naming it."""
    original: Any = getattr(error, "orig", None)
    if getattr(original, "sqlstate", None) == "23502":
        driver = original.__cause__  # asyncpg's own, which names table and column
        named = (getattr(driver, "table_name", None), getattr(driver, "column_name", None))
        return named == (column.table.name, column.name)
    notnull = getattr(original, "sqlite_errorname", None) == "SQLITE_CONSTRAINT_NOTNULL"
    return notnull and str(original).endswith(f": {column.table.name}.{column.name}")


def key_taken(error: BaseException, constraint: UniqueConstraint) -> bool:
    """True when `error` is `constraint` refusing a key another row holds: SQLSTATE
    23505 naming it, or SQLite's SQLITE_CONSTRAINT_UNIQUE on its columns."""
    original: Any = getattr(error, "orig", None)
    if getattr(original, "sqlstate", None) == "23505":
        return getattr(original.__cause__, "constraint_name", None) == constraint.name
    columns = ", ".join(f"{c.table.name}.{c.name}" for c in constraint.columns)
    unique = getattr(original, "sqlite_errorname", None) == "SQLITE_CONSTRAINT_UNIQUE"
    return unique and str(original).endswith(f": {columns}")


def is_deadlock(error: BaseException) -> bool:
    """True when PostgreSQL ended a deadlock by aborting this statement (40P01)."""
    return getattr(getattr(error, "orig", None), "sqlstate", None) == "40P01"
