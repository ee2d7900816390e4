"""Portable SQL helpers: the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from contextlib import asynccontextmanager
from functools import lru_cache
from string import Formatter
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Sequence, TypeVar

from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import TransactionType


def is_postgres(table: Any) -> bool:
    """Does this table live on PostgreSQL (where row locks exist)? CockroachEngine is one too."""
    return isinstance(table._meta.db, PostgresEngine)


def for_update(query: Any, table: Any) -> Any:
    """`SELECT … FOR UPDATE` on PostgreSQL; SQLite's IMMEDIATE transaction already holds
    the only write lock, and Piccolo's `lock_rows()` raises there."""
    return query.lock_rows("UPDATE") if is_postgres(table) else query


@asynccontextmanager
async def read_snapshot(table: Any) -> AsyncIterator[None]:
    """Every query inside sees one snapshot of the database (a read that checks the books).

    PostgreSQL: a transaction whose first statement makes it REPEATABLE READ, READ ONLY
    (Piccolo has no isolation API). SQLite: a DEFERRED transaction, which takes no write
    lock, so writers go on; in WAL mode it reads one snapshot from its first read. A
    transaction is one connection: run its queries one after another, never gathered.
    Inside a transaction already open, its snapshot is the one used."""
    db = table._meta.db
    if db.current_transaction.get() is not None:
        yield
        return
    if is_postgres(table):
        async with db.transaction():
            await table.raw("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
    else:
        async with db.transaction(transaction_type=TransactionType.deferred):
            yield


T = TypeVar("T")

BATCH = 5000  # rows a query reads when a whole list is exported (tests make it small)


async def pages(fetch: Callable[[int, int], Awaitable[list[T]]]) -> AsyncIterator[list[T]]:
    """`fetch(limit, offset)` page after page of `BATCH` rows until a short page: a whole
    list, read in batches (run it inside `read_snapshot` so that the pages agree)."""
    offset = 0
    while True:
        page = await fetch(BATCH, offset)
        if page:
            yield page
        if len(page) < BATCH:
            return
        offset += len(page)


def like_pattern(text: str) -> str:
    """A case-insensitive substring pattern for `LIKE … ESCAPE '!'` (lower-case the column too)."""
    escaped = text.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


def sql_one_of(table: Any, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """A condition's right side, "equal to one of `values`", and its parameters: on
    PostgreSQL `= ANY({})` with the values as one array (the statement keeps one generic
    plan; with a parameter per value it was planned anew on every run), elsewhere `IN ({}, …)`."""
    if isinstance(table._meta.db, PostgresEngine):
        return "= ANY({})", [list(values)]
    return f"IN ({', '.join('{}' for _ in values)})", list(values)


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


@dataclass(frozen=True)
class CtePart:
    """One data-modifying part of a PostgreSQL `WITH` statement: `name AS (sql)`, its `{}`
    placeholders filled by `args` in order. Used where one statement replaces several round
    trips (placing an order); SQLite runs the same writes as separate statements."""

    name: str
    sql: str
    args: tuple[Any, ...] = ()


async def run_cte(table: Any, parts: list[CtePart], select: str) -> Mapping[str, Any] | None:
    """`WITH part1 AS (…), part2 AS (…) <select>`: every part in one statement, one round
    trip. Returns the first row `select` gives (None if it gives none)."""
    head = ", ".join(f"{p.name} AS ({p.sql})" for p in parts)
    rows = await fetch(table, f"WITH {head} {select}", *[a for p in parts for a in p.args])
    return rows[0] if rows else None


@lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """A `raw()` template as PostgreSQL text: each `{}` becomes `$1, $2, …` and `{{`/`}}` a
    brace, as Piccolo's QueryString reads it (the template is parsed once, then cached)."""
    out: list[str] = []
    index = 0
    for literal, field, _, _ in Formatter().parse(sql):
        out.append(literal)
        if field is not None:
            index += 1
            out.append(f"${index}")
    return "".join(out)


async def fetch(table: Any, sql: str, *args: Any) -> Sequence[Mapping[str, Any]]:
    """`table.raw(sql, *args)` for the busiest statements, at the least cost: on PostgreSQL
    straight to asyncpg, on the transaction's connection when one is open, else the pool
    (Piccolo's query string and its copy of every row into a dict cost more CPU than the
    statement on the paths that run on every order or listing). Rows are read-only mappings
    (asyncpg's records; SQLite: Piccolo's dicts). Every value is a parameter, as with raw()."""
    db = table._meta.db
    if not isinstance(db, PostgresEngine):
        return await table.raw(sql, *args)
    text = numbered(sql)
    transaction = db.current_transaction.get()
    if transaction is not None:
        return await transaction.connection.fetch(text, *args)
    if db.pool is not None:
        return await db.pool.fetch(text, *args)
    connection = await db.get_new_connection()
    try:
        return await connection.fetch(text, *args)
    finally:
        await connection.close()
