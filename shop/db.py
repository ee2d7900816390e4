"""Database engines: SQLite (embedded default) or PostgreSQL, chosen by DATABASE_URL; and
Redis, when REDIS_URL is set, for the counters every server process shares."""

from __future__ import annotations

import asyncio
import os
import contextlib
import importlib
import io
import logging
import re
import socket
import sqlite3
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar
from urllib.parse import urlparse

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType
from piccolo.table import Table

T = TypeVar("T")
logger = logging.getLogger("shop.db")
POOL_CLOSE_SECONDS = 5


class SerialTransaction(SQLiteTransaction):
    """A write transaction that first waits its turn: in this process behind an asyncio lock,
    then across processes behind an exclusive `flock` on `<database>.lock` (waited for in a
    thread). Writers queue and wake the moment the one before them commits, instead of each
    polling SQLite's busy timeout with growing sleeps (what made p99 reach seconds with two
    workers)."""

    async def __aenter__(self) -> SQLiteTransaction:
        if self._parent is not None:
            return self._parent
        lock = self.engine.write_lock()
        await lock.acquire()
        try:
            await self.engine.file_lock()
            try:
                return await super().__aenter__()
            except BaseException:
                self.engine.file_lock_release()
                raise
        except BaseException:
            lock.release()
            raise

    async def __aexit__(self, exception_type, exception, traceback) -> bool:
        if self._parent:
            return exception is None
        try:
            return await super().__aexit__(exception_type, exception, traceback)
        finally:
            self.engine.file_lock_release()
            self.engine.write_lock().release()


class ShopSQLiteEngine(SQLiteEngine):
    """SQLite whose transactions take the write lock up front (IMMEDIATE).

    Piccolo's default DEFERRED transactions fail with "database is locked" when two
    connections read then write; every transaction in the shop may write, so all
    of them start IMMEDIATE, one at a time in a process (`SerialTransaction`), and wait
    (busy timeout) for the lock another process holds. A DEFERRED transaction (a read
    snapshot) takes no lock and does not queue.
    """

    _locks: dict[Any, asyncio.Lock]

    def write_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        locks = self.__dict__.setdefault("_locks", {})
        if loop not in locks:
            locks.clear()  # a new event loop (the CLI, a test session): the old lock is gone with it
            locks[loop] = asyncio.Lock()
        return locks[loop]

    def _lock_fd(self) -> int | None:
        fd = self.__dict__.get("_lock_file")
        if fd is None and fcntl is not None and self.path not in ("", ":memory:"):
            fd = self.__dict__["_lock_file"] = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        return fd

    async def file_lock(self) -> None:
        """The cross-process write turn (a no-op where `fcntl` is missing)."""
        fd = self._lock_fd()
        if fd is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        waiting = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:  # the thread still takes the lock: give it back then
            waiting.add_done_callback(lambda t: None if t.cancelled() or t.exception() else fcntl.flock(fd, fcntl.LOCK_UN))
            raise

    def file_lock_release(self) -> None:
        fd = self.__dict__.get("_lock_file")
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def transaction(  # type: ignore[override]
        self,
        transaction_type: TransactionType = TransactionType.immediate,
        allow_nested: bool = True,
    ):
        if transaction_type == TransactionType.deferred:
            return super().transaction(transaction_type=transaction_type, allow_nested=allow_nested)
        return SerialTransaction(engine=self, transaction_type=transaction_type, allow_nested=allow_nested)

    async def run_ddl(self, ddl: str, in_pool: bool = False):
        """SQLite cannot ALTER TABLE … ADD CONSTRAINT, which Piccolo's migrations emit
        for `Unique` and `Check`: a unique constraint becomes a unique index and a
        check becomes two triggers that abort with "CHECK constraint failed: name"."""
        response = None
        for statement in sqlite_constraint_ddl(ddl):
            response = await super().run_ddl(statement, in_pool=in_pool)
        return response


_ADD_CONSTRAINT = re.compile(
    r'^\s*ALTER TABLE\s+(?P<table>"?[\w.]+"?)\s+ADD CONSTRAINT\s+"?(?P<name>\w+)"?\s+'
    r"(?P<kind>UNIQUE|CHECK)\s*(?P<body>.*?);?\s*$",
    re.S | re.I,
)
_DROP_CONSTRAINT = re.compile(
    r'^\s*ALTER TABLE\s+"?[\w.]+"?\s+DROP CONSTRAINT\s+(?:IF EXISTS\s+)?"?(?P<name>\w+)"?\s*;?\s*$',
    re.S | re.I,
)


def sqlite_constraint_ddl(ddl: str) -> list[str]:
    """Translate Piccolo's constraint DDL into statements SQLite understands."""
    if match := _ADD_CONSTRAINT.match(ddl):
        table, name, body = match["table"], match["name"], match["body"].strip()
        if match["kind"].upper() == "UNIQUE":
            return [f"CREATE UNIQUE INDEX IF NOT EXISTS {name} ON {table} {body}"]
        condition = re.sub(r'"(\w+)"', r'NEW."\1"', body)
        return [
            f"CREATE TRIGGER IF NOT EXISTS {name}_{event.lower()} BEFORE {event} ON {table} "
            f"FOR EACH ROW WHEN NOT {condition} "
            f"BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {name}'); END"
            for event in ("INSERT", "UPDATE")
        ]
    if match := _DROP_CONSTRAINT.match(ddl):
        name = match["name"]
        return [
            f"DROP INDEX IF EXISTS {name}",
            f"DROP TRIGGER IF EXISTS {name}_insert",
            f"DROP TRIGGER IF EXISTS {name}_update",
        ]
    return [ddl]


def engine_from_url(url: str) -> Engine:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        # sqlite:///relative.db or sqlite:////absolute/path.db
        path = url[len("sqlite:///") :] or "shop.db"
        return ShopSQLiteEngine(path=path, timeout=30)
    if parsed.scheme in ("postgres", "postgresql"):
        return PostgresEngine(config={"dsn": url})
    raise ValueError(f"DATABASE_URL must be sqlite:/// or postgresql://, not {parsed.scheme!r}")


# Every module that defines tables (the apps' piccolo_app.py list them for migrations; a test
# keeps the two in step).
TABLE_MODULES = (
    "common.tables", "budgets.tables", "catalog.tables", "shop.auth.tables", "shop.orders.tables",
    "shop.payments.tables", "shop.fulfilment.tables", "shop.notifications.tables",
)


def bind_tables(engine: Engine) -> None:
    """Give every table class the engine, as Piccolo's `engine_finder()` would on the table's
    first query (it finds the same `piccolo_conf.DB`): the finder's module imports black
    (~9 MiB a worker), which serving never needs otherwise."""
    for name in TABLE_MODULES:
        importlib.import_module(name)
    pending = list(Table.__subclasses__())
    while pending:
        table = pending.pop()
        pending.extend(table.__subclasses__())
        table._meta.db = engine


def prepare_sqlite(path: str) -> None:
    """WAL lets readers run beside the one writer; it is kept in the file."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


async def _release(connection: Any) -> None:
    """What a connection needs when it goes back to the pool: only a rollback, if a
    cancelled request left a transaction open. asyncpg's default (`pg_advisory_unlock_all();
    CLOSE ALL; UNLISTEN *; RESET ALL`) costs a round trip on every release; the shop takes
    no session-level advisory lock, opens no cursor outside a transaction, listens to
    nothing and sets no session setting, so there is nothing else to undo."""
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


@asynccontextmanager
async def connection_pool(engine: Engine, min_size: int, max_size: int) -> AsyncIterator[None]:
    """Open the PostgreSQL pool for the app's lifetime (no-op on SQLite)."""
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(min_size=min_size, max_size=max_size, reset=_release)
        try:
            yield
        finally:
            try:  # a graceful close waits on every connection; one broken under it may never answer
                await asyncio.wait_for(engine.close_connection_pool(), timeout=POOL_CLOSE_SECONDS)
            except TimeoutError:
                if engine.pool is not None:
                    engine.pool.terminate()
                    engine.pool = None
    else:
        if isinstance(engine, SQLiteEngine):
            prepare_sqlite(engine.path)
        yield


def redis_client(url: str) -> Any:
    """A Redis client for `url` (redis://host:port/db), or None without one. It connects on
    first use, in the event loop that uses it; close it with `await client.aclose()`."""
    if not url:
        return None
    from redis.asyncio import Redis

    return Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


async def migrate() -> None:
    """Run every app's Piccolo migrations that have not run yet. Piccolo prints what it does;
    that goes to the log instead, line by line (JSON too, with `LOG_FORMAT=json`)."""
    from piccolo.apps.migrations.commands.forwards import run_forwards

    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            result = await run_forwards("all")
    finally:
        for line in printed.getvalue().splitlines():
            if line.strip(" -"):
                logger.info("migrations: %s", line.strip())
    if not result.success:
        raise RuntimeError(f"migrations failed: {result.message}")


def database_unreachable(exc: BaseException) -> bool:
    """Did this fail because the database could not be reached (refused, restarted, the
    connection killed under us), rather than because of what was asked?"""
    import asyncpg

    lost = (
        asyncpg.PostgresConnectionError,  # 08xxx: cannot connect, connection failure
        asyncpg.exceptions.OperatorInterventionError,  # 57xxx: admin shutdown, terminated, cannot connect now
        asyncpg.exceptions.TooManyConnectionsError,
        asyncpg.InterfaceError,  # "connection is closed", "connection was closed in the middle of operation"
        asyncpg.exceptions.InternalClientError,  # "cannot switch to state …": the protocol lost its connection mid-call
        ConnectionError,  # refused, reset, aborted
        TimeoutError,
        socket.gaierror,  # the database's host name does not resolve
    )
    if isinstance(exc, asyncpg.exceptions.QueryCanceledError):  # 57014 is a statement timeout, not a lost database
        return False
    if isinstance(exc, lost):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "unable to open database" in str(exc)


async def after_commit(read: Callable[[], Awaitable[T]], attempts: int = 3) -> T:
    """Run work that follows a commit (reading the answer, starting a payment: each safe
    to repeat) again on a fresh connection if the database connection is lost meanwhile,
    so that what was committed is answered instead of refused as if nothing happened."""
    for attempt in range(1, attempts + 1):
        try:
            return await read()
        except Exception as exc:
            if attempt == attempts or not database_unreachable(exc):
                raise
            await asyncio.sleep(0.05 * attempt)
    raise AssertionError("unreachable")
