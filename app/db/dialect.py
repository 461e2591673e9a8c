"""The few statements that must be spelled per database, in one place."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert


def insert_ignore(conn: AsyncConnection, table: Table, unique: list[str]) -> Insert:
    """INSERT ... ON CONFLICT (unique) DO NOTHING, on SQLite and PostgreSQL alike."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=unique)
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=unique)
