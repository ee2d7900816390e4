"""`shop check`: is this installation fit to serve? The settings are sane, the database is
reachable and migrated, Redis answers when `REDIS_URL` is set. Each finding is a line;
any `FAIL` makes the command exit non-zero. Nothing is written (not even an empty SQLite
file or Piccolo's migration table)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from shop.logs import FORMATS
from shop.settings import Settings

LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0", ""}
SECRET_MIN_LENGTH = 32
TIMEOUT_SECONDS = 15


@dataclass(frozen=True)
class Finding:
    level: str  # "ok", "warn" or "FAIL"
    subject: str
    message: str

    def line(self) -> str:
        return f"{self.level:<5} {self.subject}: {self.message}"


def ok(subject: str, message: str) -> Finding:
    return Finding("ok", subject, message)


def warn(subject: str, message: str) -> Finding:
    return Finding("warn", subject, message)


def fail(subject: str, message: str) -> Finding:
    return Finding("FAIL", subject, message)


def in_production(settings: Settings) -> bool:
    """The shop is in production when it is served at an address other than this machine's."""
    return (urlparse(settings.public_url).hostname or "") not in LOOPBACK


def settings_findings(settings: Settings, environ: Mapping[str, str]) -> list[Finding]:
    found: list[Finding] = []
    public = urlparse(settings.public_url)
    production = in_production(settings)
    if public.scheme not in ("http", "https") or not public.hostname:
        found.append(fail("PUBLIC_URL", f"{settings.public_url!r} is not an http(s) address"))
    elif production and public.scheme != "https":
        found.append(warn("PUBLIC_URL", f"{settings.public_url} is not https: the login cookie is not marked Secure"))
    else:
        found.append(ok("PUBLIC_URL", f"{settings.public_url} ({'production' if production else 'this machine'})"))

    secret = environ.get("SECRET_KEY", "")
    if secret and len(secret) < SECRET_MIN_LENGTH:
        found.append(fail("SECRET_KEY", f"too short ({len(secret)} characters; at least {SECRET_MIN_LENGTH})"))
    elif secret:
        found.append(ok("SECRET_KEY", "set"))
    elif production:
        found.append(fail("SECRET_KEY", "not set: in production set it, the same on every server "
                                        "(one generated into DATA_DIR differs per machine and is lost with the directory)"))  # fmt: skip
    else:
        kept = Path(settings.data_dir) / "secret_key"
        found.append(
            ok("SECRET_KEY", f"not set: kept in {kept}{'' if kept.exists() else ' (made on first start)'}; set it in production")
        )

    key = settings.stripe_api_key
    if not key:
        found.append(ok("payments", "bank transfer (对公转账)"))
    else:
        live = key.startswith(("sk_live_", "rk_live_"))
        found.append(ok("payments", f"Stripe, {'live' if live else 'test'} mode"))
        if not settings.stripe_webhook_secret:
            found.append(
                fail("STRIPE_WEBHOOK_SECRET", "not set: Stripe's webhooks would be refused and no order would become paid")
            )
        if live and public.scheme != "https":
            found.append(fail("PUBLIC_URL", "must be https while Stripe is live (the buyer is sent back to it from Checkout)"))

    if settings.log_format not in FORMATS:
        found.append(fail("LOG_FORMAT", f"{settings.log_format!r} is not one of {', '.join(FORMATS)}"))
    if not isinstance(logging.getLevelName(settings.log_level.upper()), int):
        found.append(fail("LOG_LEVEL", f"{settings.log_level!r} is not a logging level"))
    positive = (
        "token_ttl_hours",
        "login_rate_limit",
        "member_view_rate_limit",
        "hold_minutes",
        "transfer_hold_days",
        "expiry_interval_seconds",
        "pg_pool_max",
    )
    for name in positive:
        if getattr(settings, name) < 1:
            found.append(fail(name.upper(), f"{getattr(settings, name)} must be at least 1"))
    if not 0 <= settings.pg_pool_min <= settings.pg_pool_max:
        found.append(fail("PG_POOL_MIN", f"{settings.pg_pool_min} must be between 0 and PG_POOL_MAX ({settings.pg_pool_max})"))
    if settings.graceful_shutdown_seconds < 0:
        found.append(fail("GRACEFUL_SHUTDOWN_SECONDS", "must not be negative"))
    return found


async def database_findings(settings: Settings) -> list[Finding]:
    """Reachable, then migrated (every migration file of every app has run)."""
    from piccolo.engine.postgres import PostgresEngine
    from piccolo.engine.sqlite import SQLiteEngine

    url = settings.database_url
    where = url.split("@")[-1]
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :] or "shop.db").exists():
        return [fail("database", f"{where}: the file does not exist (run `shop migrate`)")]
    import piccolo_conf  # the engine chosen from DATABASE_URL

    engine = piccolo_conf.DB
    found: list[Finding] = []
    try:
        if isinstance(engine, PostgresEngine):
            rows = await asyncio.wait_for(
                engine._run_in_new_connection(
                    "SELECT current_setting('server_version') AS version, current_setting('max_connections')::int AS max_connections, "
                    "(SELECT count(*) FROM pg_stat_activity) AS in_use"
                ),
                TIMEOUT_SECONDS,
            )
            row = rows[0]
            found.append(ok("database", f"PostgreSQL {row['version']} at {where} reachable"))
            found.append(_pool_finding(settings, row["max_connections"], row["in_use"]))
        elif isinstance(engine, SQLiteEngine):
            await asyncio.wait_for(engine.run_ddl("SELECT 1"), TIMEOUT_SECONDS)
            found.append(ok("database", f"SQLite {engine.path} reachable"))
    except Exception as exc:  # noqa: BLE001  (refused, unknown host, bad credentials, no such database, timeout: each is the finding)
        return [fail("database", f"{where} is not reachable: {exc!r}")]
    return found + await _migration_findings()


def _pool_finding(settings: Settings, max_connections: int, in_use: int) -> Finding:
    per_process = f"each server process opens up to PG_POOL_MAX={settings.pg_pool_max} connections"
    allows = f"PostgreSQL allows max_connections={max_connections}, {in_use} in use now"
    if settings.pg_pool_max >= max_connections:
        return fail("connections", f"{per_process}, but {allows}")
    return ok("connections", f"{per_process}; {allows} (servers x workers x PG_POOL_MAX must stay below it)")


async def _migration_findings() -> list[Finding]:
    from piccolo.apps.migrations.commands.base import BaseMigrationManager
    from piccolo.apps.migrations.tables import Migration

    manager = BaseMigrationManager()
    has_table = await Migration.table_exists()
    missing: list[str] = []
    unknown: list[str] = []
    total = 0
    for config in manager.get_app_configs():
        ids = set(manager.get_migration_ids(manager.get_migration_modules(config.resolved_migrations_folder_path)))
        ran = set(await Migration.get_migrations_which_ran(config.app_name)) if has_table else set()
        total += len(ids)
        missing += [f"{config.app_name} {i}" for i in sorted(ids - ran)]
        unknown += [f"{config.app_name} {i}" for i in sorted(ran - ids)]
    found = []
    if missing:
        found.append(fail("migrations", f"{len(missing)} of {total} not applied (run `shop migrate`): {', '.join(missing)}"))
    else:
        found.append(ok("migrations", f"all {total} applied"))
    if unknown:
        found.append(
            warn(
                "migrations",
                f"the database has migrations this version does not know (a newer version ran?): {', '.join(unknown)}",
            )
        )
    return found


async def redis_finding(url: str) -> Finding:
    from shop.db import redis_client

    client = redis_client(url)
    where = url.split("@")[-1]
    try:
        await asyncio.wait_for(client.ping(), TIMEOUT_SECONDS)
        return ok("redis", f"{where} answers")
    except Exception as exc:  # noqa: BLE001  (whatever it is, it is the finding)
        return fail("redis", f"{where} does not answer: {exc!r}")
    finally:
        await client.aclose()


async def run_checks(environ: Mapping[str, str] | None = None) -> list[Finding]:
    from shop.settings import load_settings

    environ = os.environ if environ is None else environ
    try:  # with a stand-in secret when none is set: checking must not generate one into DATA_DIR
        settings = load_settings({**environ, "SECRET_KEY": environ.get("SECRET_KEY") or "-"})
    except Exception as exc:  # noqa: BLE001  (a number that is not one, a setting of the wrong type)
        return [fail("settings", f"cannot be read: {exc}")]
    found = settings_findings(settings, environ)
    found += await database_findings(settings)
    if settings.redis_url:
        found.append(await redis_finding(settings.redis_url))
    return found
