"""Operations: the request id on every log line and in every answer, the logs as JSON,
`shop check`, a graceful stop that finishes the requests in flight, and a backup with
pg_dump that restores."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import pytest

from shop.auth.accounts import create_user
from shop.logs import JsonFormatter
from tests.conftest import POSTGRES_URL
from tests.server import ROOT, eventually, server_process
from tests.test_cli import shop
from tests.world import build_world

GENERATED = re.compile(r"[0-9a-f]{32}")


async def test_every_answer_carries_a_request_id(client):
    sent = await client.get("/health", headers={"X-Request-ID": "lb-7f3a.2:1"})
    assert sent.headers["x-request-id"] == "lb-7f3a.2:1"
    made = await client.get("/health")
    assert GENERATED.fullmatch(made.headers["x-request-id"])
    assert made.headers["x-request-id"] != (await client.get("/health")).headers["x-request-id"]
    # an id that could fool a log reader or is too long is replaced, not echoed
    for bad in ("two words", "x" * 129, "-starts-with-a-dash", "ünïcode"):
        r = await client.get("/health", headers={"X-Request-ID": bad.encode()})
        assert GENERATED.fullmatch(r.headers["x-request-id"]), bad
    # unknown paths and refusals too (the id wraps the router, not only the handlers)
    assert (await client.get("/no/such/page", headers={"X-Request-ID": "nf-1"})).headers["x-request-id"] == "nf-1"
    refused = await client.get("/api/me", headers={"X-Request-ID": "unauth-1"})
    assert refused.status_code == 401 and refused.headers["x-request-id"] == "unauth-1"


async def test_what_a_request_logs_carries_its_id(client, caplog):
    caplog.set_level(logging.INFO)
    r = await client.post("/api/payments/stripe/webhook", content=b"{}", headers={"X-Request-ID": "hook-1"})
    assert r.status_code == 400 and r.json()["code"] == "bad_signature"
    mine = [rec for rec in caplog.records if "STRIPE_WEBHOOK_SECRET is not set" in rec.getMessage()]
    assert len(mine) == 1 and mine[0].request_id == "hook-1"
    line = json.loads(JsonFormatter().format(mine[0]))
    assert line["request_id"] == "hook-1" and line["level"] == "ERROR" and line["logger"] == "shop.payments"
    # outside a request there is no id
    logging.getLogger("shop").warning("between requests")
    assert caplog.records[-1].request_id is None


def test_the_json_formatter_writes_one_object_a_line_with_the_exception():
    try:
        raise ValueError("broken")
    except ValueError:
        record = logging.getLogger("shop").makeRecord("shop", logging.ERROR, __file__, 1, "failed: %s, 订单 %d", ("x", 7), exc_info=True)
        record.exc_info = __import__("sys").exc_info()
    text = JsonFormatter().format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert line["message"] == "failed: x, 订单 7" and line["level"] == "ERROR" and line["pid"] == os.getpid()
    assert "ValueError: broken" in line["exc"] and line["time"].endswith("+00:00")


def check(**env: str) -> tuple[int, str]:
    done = shop("check", env=env)
    return done.returncode, done.stdout


def lines_of(out: str, level: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(f"{level} ")]


async def test_check_passes_on_a_migrated_database(app):
    code, out = check()
    assert code == 0, out
    assert any(line.startswith("ok    database: ") and "reachable" in line for line in out.splitlines()), out
    assert re.search(r"^ok    migrations: all \d+ applied$", out, re.MULTILINE), out
    assert lines_of(out, "FAIL") == [] and out.strip().endswith("ready to serve")
    if POSTGRES_URL:  # the pool against the server's limit, for the README's arithmetic
        assert re.search(r"^ok    connections: each server process opens up to PG_POOL_MAX=10 .* max_connections=\d+", out, re.MULTILINE), out


async def test_check_says_what_is_wrong(app, tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    code, out = check(DATABASE_URL=f"sqlite:///{empty}")
    assert code == 1 and re.search(r"^FAIL  migrations: (\d+) of \1 not applied \(run `shop migrate`\)", out, re.MULTILINE), out
    code, out = check(DATABASE_URL=f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 1 and "the file does not exist" in out and not (tmp_path / "none.db").exists()
    code, out = check(DATABASE_URL="postgresql://shop@127.0.0.1:1/shop")
    assert code == 1 and "FAIL  database: 127.0.0.1:1/shop is not reachable" in out, out
    code, out = check(TOKEN_TTL_HOURS="twelve")
    assert code == 1 and lines_of(out, "FAIL")[0].startswith("FAIL  settings: cannot be read"), out
    code, out = check(PG_POOL_MIN="5", PG_POOL_MAX="2", LOG_FORMAT="xml")
    assert code == 1 and {line.split(":")[0] for line in lines_of(out, "FAIL")} == {"FAIL  PG_POOL_MIN", "FAIL  LOG_FORMAT"}, out


async def test_check_holds_production_to_production_settings(app):
    public = {"PUBLIC_URL": "https://shop.example.cn"}
    code, out = check(**public)
    unset = "FAIL  SECRET_KEY: not set: in production set it, the same on every server (one generated into DATA_DIR differs per machine"
    assert code == 1 and [line[: len(unset)] for line in lines_of(out, "FAIL")] == [unset], out
    assert check(**public, SECRET_KEY="short")[1].count("FAIL  SECRET_KEY: too short (5 characters; at least 32)") == 1
    secret = {"SECRET_KEY": "s" * 48}
    code, out = check(**public, **secret)
    assert code == 0 and "ok    PUBLIC_URL: https://shop.example.cn (production)" in out, out
    # Stripe live: PUBLIC_URL must be https, and the webhook secret set
    live = {"STRIPE_API_KEY": "sk_live_123", "STRIPE_WEBHOOK_SECRET": "whsec_1", **secret}
    code, out = check(**live, PUBLIC_URL="http://shop.example.cn")
    assert code == 1 and [line.split(":")[0] for line in lines_of(out, "FAIL")] == ["FAIL  PUBLIC_URL"], out
    assert "must be https while Stripe is live" in out and "warn  PUBLIC_URL" in out
    code, out = check(**{**live, "STRIPE_WEBHOOK_SECRET": ""}, **public)
    assert code == 1 and [line.split(":")[0] for line in lines_of(out, "FAIL")] == ["FAIL  STRIPE_WEBHOOK_SECRET"], out
    code, out = check(**live, **public)
    assert code == 0 and "ok    payments: Stripe, live mode" in out, out
    # test mode on this machine's address is fine over http
    assert check(STRIPE_API_KEY="sk_test_1", STRIPE_WEBHOOK_SECRET="whsec_1")[0] == 0


async def test_check_asks_redis_when_it_is_set(app):
    from tests.test_two_servers import REDIS_TEST_URL

    code, out = check(REDIS_URL="redis://127.0.0.1:1/0")
    assert code == 1 and "FAIL  redis: redis://127.0.0.1:1/0 does not answer" in out, out
    code, out = check(REDIS_URL=REDIS_TEST_URL)
    if code and "does not answer" in out:
        pytest.skip(f"no Redis at {REDIS_TEST_URL}")
    assert code == 0 and f"ok    redis: {REDIS_TEST_URL} answers" in out, out


def _send_headers(url: str, body_length: int, request_id: str) -> socket.socket:
    """A login whose body is still on its way: the headers (asking `Expect: 100-continue`)
    and nothing else. The server's `100 Continue` says the app is reading the body."""
    host, port = urlparse(url).hostname, urlparse(url).port
    sock = socket.create_connection((host, port), timeout=60)
    sock.sendall(
        f"POST /api/auth/login HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {body_length}\r\nExpect: 100-continue\r\nX-Request-ID: {request_id}\r\n\r\n".encode()
    )
    interim = b""
    while not interim.endswith(b"\r\n\r\n"):
        interim += sock.recv(1)
    assert interim.startswith(b"HTTP/1.1 100 Continue"), interim
    return sock


def _rest_of_answer(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    data = b""
    while chunk := sock.recv(65536):  # the server closes the connection after answering
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *fields = head.decode("latin-1").split("\r\n")
    return status, {k.lower(): v.strip() for k, v in (f.split(":", 1) for f in fields)}, body


@pytest.mark.slow_suite
async def test_json_logs_and_a_graceful_stop_that_finishes_the_request_in_flight(app):
    await create_user("late", "late-password", "admin")
    env = {"LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "GRACEFUL_SHUTDOWN_SECONDS": "60", "PG_POOL_MAX": "4"}
    with server_process(workers=2, extra_env=env) as server:
        import httpx

        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            hook = await c.post("/api/payments/stripe/webhook", content=b"{}", headers={"X-Request-ID": "ops-hook-1"})
            assert hook.status_code == 400 and hook.headers["x-request-id"] == "ops-hook-1"
        body = json.dumps({"username": "late", "password": "late-password"}).encode()
        sock = _send_headers(server.url, len(body), "in-flight-1")
        server.proc.send_signal(signal.SIGTERM)
        # the worker holding the request has stopped taking connections and waits for it
        await eventually(lambda: "Waiting for connections to close" in server.output(), "the server is stopping")
        sock.sendall(body)
        status, headers, answer = _rest_of_answer(sock)
        sock.close()
        assert status == "HTTP/1.1 200 OK", (status, answer)
        assert json.loads(answer)["token"] and headers["connection"] == "close" and headers["x-request-id"] == "in-flight-1"
        assert server.proc.wait(timeout=90) == 0
        output = server.output()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]  # every line is JSON
    assert all({"time", "level", "logger", "message", "request_id", "pid"} <= set(line) for line in lines)
    by_id = {}
    for line in lines:
        by_id.setdefault(line["request_id"], []).append(line)
    hook_lines = {(line["logger"], line["level"]) for line in by_id["ops-hook-1"]}
    assert {("shop.payments", "ERROR"), ("uvicorn.access", "INFO")} <= hook_lines, by_id["ops-hook-1"]
    assert [line["logger"] for line in by_id["in-flight-1"]] == ["uvicorn.access"]
    assert '"POST /api/auth/login HTTP/1.1" 200' in by_id["in-flight-1"][0]["message"]
    assert not [line for line in lines if "timeout graceful shutdown exceeded" in line["message"]]


def run(*args: str, **env: str) -> str:
    """A command that must succeed (with the tests' environment, and `env` over it); its output."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(list(args), env=environ, cwd=ROOT, capture_output=True, text=True, check=True, timeout=120).stdout


@pytest.mark.skipif(not POSTGRES_URL or not shutil.which("pg_restore"), reason="a backup with pg_dump needs PostgreSQL and its tools")
async def test_a_pg_dump_backup_restores_to_a_shop_that_checks_and_verifies(app, make_user, admin):
    """README, "Running in production": the backup and restore commands, as written there."""
    world = await build_world(make_user, admin)
    r = await world.buyer.post("/api/orders", json={"lines": [{"product_id": world.products["tea"], "quantity": 2}], "members": world.members[:2]},
                               headers={"Idempotency-Key": "backup-1"})  # fmt: skip
    assert r.status_code == 201, r.text
    url = urlparse(POSTGRES_URL)
    name = url.path.lstrip("/") + "_restore"
    restored, maintenance = url._replace(path=f"/{name}").geturl(), url._replace(path="/postgres").geturl()
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "shop.dump"
        run("pg_dump", "--format=custom", f"--file={dump}", POSTGRES_URL)
        run("psql", "-q", maintenance, "-c", f'DROP DATABASE IF EXISTS "{name}"', "-c", f'CREATE DATABASE "{name}"')
        try:
            run("pg_restore", "--no-owner", f"--dbname={restored}", str(dump))
            code, out = check(DATABASE_URL=restored)
            assert code == 0 and re.search(r"^ok    migrations: all \d+ applied$", out, re.MULTILINE), out
            verify = "import asyncio; from budgets.verification import verify_ledger; v = asyncio.run(verify_ledger()); print(v.ok, v.entries)"
            assert run(sys.executable, "-c", verify, DATABASE_URL=restored).split() == ["True", "2"]  # the two holds, chained
        finally:
            run("psql", "-q", maintenance, "-c", f'DROP DATABASE IF EXISTS "{name}"')
