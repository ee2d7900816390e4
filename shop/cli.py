"""The `shop` command: serve, migrate, seed, user create, expire-holds, tick, check."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from datetime import datetime, timezone

logger = logging.getLogger("shop")


def _run(coro):
    return asyncio.run(coro)


async def _with_db(coro_fn, *args):
    """Run a coroutine with the database open (the PostgreSQL pool, if any)."""
    import piccolo_conf
    from shop.db import connection_pool

    async with connection_pool(piccolo_conf.DB, 1, 4):
        return await coro_fn(*args)


async def _migrate() -> None:
    from shop.db import migrate

    await migrate()


async def _seed() -> dict[str, int]:
    from shop.seed import seed

    return await seed()


async def _demo() -> list[dict[str, str]]:
    from budgets.tables import Union
    from shop.db import migrate
    from shop.seed import demo_users, seed

    await migrate()
    if not await Union.count():
        print("seeding demo data …", flush=True)
        print(await seed(), flush=True)
    return await demo_users()


async def _create_user(args) -> None:
    from budgets import unions
    from shop.auth import accounts

    union_id = None
    if args.union_code:
        union = await unions.union_by_code(args.union_code)
        if union is None:
            raise SystemExit(f"no union with code {args.union_code!r}")
        union_id = union["id"]
    user = await accounts.create_user(args.username, args.password, args.role, union_id=union_id, supplier_id=args.supplier_id)
    print(f"created {user.role} {user.username} (id {user.id})")


async def _expire() -> int:
    from shop.orders.cancellation import expire_due

    return await expire_due(datetime.now(timezone.utc))


async def _tick() -> dict[str, int]:
    from shop.jobs import tick
    from shop.settings import get_settings

    return await tick(datetime.now(timezone.utc), get_settings())


def _check() -> int:
    """Print each finding; 1 when any is a failure."""
    from shop.check import run_checks

    findings = _run(run_checks())
    for finding in findings:
        print(finding.line(), flush=True)
    failed = [f for f in findings if f.level == "FAIL"]
    print(f"{len(failed)} problem(s)" if failed else "ready to serve")
    return 1 if failed else 0


def _configure_logging() -> None:
    """The CLI logs as the servers do (LOG_FORMAT, LOG_LEVEL); settings that are not valid
    fall back to text at INFO here, and `shop check` says what is wrong with them."""
    from shop.logs import configure

    try:
        configure(os.environ.get("LOG_FORMAT") or "text", os.environ.get("LOG_LEVEL") or "INFO")
    except ValueError:
        configure("text", "INFO")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="shop", description="消费帮扶商城")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the web server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--demo", action="store_true", help="migrate, seed an empty database, create demo accounts")
    serve.add_argument("--no-migrate", action="store_true", help="do not run pending migrations first")
    sub.add_parser("migrate", help="run the database migrations")
    sub.add_parser("seed", help="load the demo data in seeds/ (idempotent)")
    user = sub.add_parser("user", help="accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    create = user_sub.add_parser("create", help="create an account")
    create.add_argument("--username", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--role", required=True, choices=["admin", "buyer", "supplier", "auditor", "approver"])
    scope = create.add_mutually_exclusive_group()
    scope.add_argument("--union-code")
    scope.add_argument("--supplier-id", type=int)
    sub.add_parser("expire-holds", help="expire pending orders whose hold ran out")
    sub.add_parser("tick", help="run the periodic work once (expiry, payments that never started)")
    sub.add_parser("check", help="are the settings sane, the database reachable and migrated (exit 1 if not)")
    args = parser.parse_args(argv)
    _configure_logging()

    from common.errors import DomainError

    try:
        if args.command == "migrate":
            _run(_with_db(_migrate))
        elif args.command == "seed":
            print(_run(_with_db(_seed)))
        elif args.command == "user":
            _run(_with_db(_create_user, args))
        elif args.command == "expire-holds":
            print(f"expired {_run(_with_db(_expire))} order(s)")
        elif args.command == "tick":
            print(_run(_with_db(_tick)))
        elif args.command == "check":
            raise SystemExit(_check())
        elif args.command == "serve":
            _serve(args)
    except DomainError as exc:
        raise SystemExit(f"{exc.code}: {exc.detail}") from exc


def _serve(args) -> None:
    import uvicorn

    from shop.logs import logging_dict
    from shop.settings import get_settings

    settings = get_settings()
    if args.demo:
        accounts = _run(_with_db(_demo))
        print("\n演示账号 demo accounts:")
        for a in accounts:
            print(f"  {a['role']:<9} {a['username']:<12} {a['password']:<24} {a['scope']}")
        print(flush=True)
    elif not args.no_migrate:
        _run(_with_db(_migrate))
    logger.info("消费帮扶商城 on http://%s:%s  (database: %s)", args.host, args.port, settings.database_url.split("@")[-1])
    os.environ.setdefault("PYTHONPATH", os.pathsep.join(sys.path))
    uvicorn.run(
        "shop.asgi:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=logging_dict(settings.log_format, settings.log_level),  # the supervisor and every worker
        log_level=settings.log_level.lower(),
        proxy_headers=False,
        # SIGTERM: stop taking connections, let requests in flight finish (at most this long), then stop
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
    )


if __name__ == "__main__":
    main()
