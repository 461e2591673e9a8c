"""The few statements that must be spelled per database, in one place."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Table
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
