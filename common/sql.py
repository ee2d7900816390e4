"""Portable SQL helpers: the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable

from piccolo.engine.postgres import PostgresEngine


def is_postgres(table: Any) -> bool:
    """Does this table live on PostgreSQL (where row locks exist)? CockroachEngine is one too."""
    return isinstance(table._meta.db, PostgresEngine)


def for_update(query: Any, table: Any) -> Any:
    """`SELECT … FOR UPDATE` on PostgreSQL; SQLite's IMMEDIATE transaction already holds
    the only write lock, and Piccolo's `lock_rows()` raises there."""
    return query.lock_rows("UPDATE") if is_postgres(table) else query


def like_pattern(text: str) -> str:
    """A case-insensitive substring pattern for `LIKE … ESCAPE '!'` (lower-case the column too)."""
    escaped = text.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


def is_unique_violation(exc: BaseException) -> bool:
    """Piccolo does not wrap driver errors: recognise a unique violation from either driver."""
    try:
        import asyncpg

        if isinstance(exc, asyncpg.UniqueViolationError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)


def one_of(column: str, values: Iterable[str]) -> str:
    """A CHECK condition: the column holds one of these values (a StrEnum's members)."""
    return f'"{column}" IN (' + ", ".join(f"'{v}'" for v in values) + ")"
