"""Test harness: a real database (SQLite, or PostgreSQL when TEST_POSTGRES_URL is set)
and the real app, talked to over HTTP (httpx's ASGI transport, on the test's event loop)."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_TMP = Path(tempfile.mkdtemp(prefix="shop-tests-"))
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")
os.environ["DATABASE_URL"] = POSTGRES_URL or f"sqlite:///{_TMP / 'test.db'}"
os.environ["DATA_DIR"] = str(_TMP / "data")
os.environ.setdefault("LOGIN_RATE_LIMIT", "1000")
os.environ.setdefault("EXPIRY_INTERVAL_SECONDS", "3600")  # tests expire holds explicitly, on their own clock
for _name in ("STRIPE_API_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET"):
    os.environ.pop(_name, None)

import httpx  # noqa: E402
from piccolo.engine.postgres import PostgresEngine  # noqa: E402

from shop.auth.tables import User  # noqa: E402

# Tests create many accounts: hash them with fewer pbkdf2 rounds (same library code).
User._pbkdf2_iteration_count = 1_000

DB_KIND = "postgresql" if POSTGRES_URL else "sqlite"


def pytest_report_header(config):
    return f"database: {DB_KIND} ({os.environ['DATABASE_URL']})"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "slow_suite: a slow suite (browser, real server processes) that CI runs once, on PostgreSQL; "
        "anywhere else it runs on whichever database the tests use",
    )


def pytest_collection_modifyitems(config, items):
    """CI runs the README's test command twice, on SQLite and on PostgreSQL: the slow
    suites need to run only once, and PostgreSQL is where concurrency is proven."""
    if os.environ.get("CI") and not POSTGRES_URL:
        skip = pytest.mark.skip(reason="slow suite: CI runs it on PostgreSQL")
        for item in items:
            if item.get_closest_marker("slow_suite"):
                item.add_marker(skip)


async def _reset_schema(engine) -> None:
    if isinstance(engine, PostgresEngine):
        await engine._run_in_new_connection("DROP SCHEMA public CASCADE")
        await engine._run_in_new_connection("CREATE SCHEMA public")


@pytest.fixture(scope="session")
async def app():
    import piccolo_conf
    from shop.app import create_app
    from shop.db import migrate

    await _reset_schema(piccolo_conf.DB)
    await migrate()
    application = create_app()
    # Enter and leave the lifespan in one task (anyio cancel scopes insist on it).
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan():
        async with application.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run_lifespan())
    await asyncio.wait([task, asyncio.create_task(started.wait())], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    yield application
    stop.set()
    await task


@pytest.fixture(autouse=True)
async def clean_db(request):
    """Every test that touches the database starts from empty tables."""
    if "app" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("app")
    from piccolo.conf.apps import Finder

    import piccolo_conf

    engine = piccolo_conf.DB
    tables = [t._meta.tablename for t in Finder().get_table_classes()]
    if isinstance(engine, PostgresEngine):
        quoted = ", ".join(f'"{t}"' for t in tables)
        await engine.run_ddl(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")
    else:
        async with engine.transaction():
            await engine.run_ddl("PRAGMA defer_foreign_keys = ON")
            for table in tables:
                await engine.run_ddl(f'DELETE FROM "{table}"')
    yield


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as c:
        yield c


class Api:
    """A thin helper over the client: logs in as a role and speaks JSON."""

    def __init__(self, client: httpx.AsyncClient, token: str | None = None):
        self.client = client
        self.token = token

    def _headers(self, extra=None):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(extra or {})
        return headers

    async def get(self, url, **kw):
        return await self.client.get(url, headers=self._headers(kw.pop("headers", None)), **kw)

    async def post(self, url, json=None, **kw):
        return await self.client.post(url, json=json, headers=self._headers(kw.pop("headers", None)), **kw)

    async def put(self, url, json=None, **kw):
        return await self.client.put(url, json=json, headers=self._headers(kw.pop("headers", None)), **kw)

    async def patch(self, url, json=None, **kw):
        return await self.client.patch(url, json=json, headers=self._headers(kw.pop("headers", None)), **kw)

    async def delete(self, url, **kw):
        return await self.client.delete(url, headers=self._headers(kw.pop("headers", None)), **kw)


def unique(prefix: str = "x") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


async def login(client, username: str, password: str) -> Api:
    r = await client.post("/api/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return Api(client, r.json()["token"])


@pytest.fixture
async def admin(client) -> Api:
    from shop.auth.accounts import create_user

    await create_user("admin", "admin-password", "admin")
    return await login(client, "admin", "admin-password")


@pytest.fixture
def anon(client) -> Api:
    return Api(client)


@pytest.fixture
def make_user(client, admin):
    """make_user(role, union_id=None, supplier_id=None) -> Api logged in as a new account (made through the API)."""

    async def _make(role: str, union_id: int | None = None, supplier_id: int | None = None) -> Api:
        username = unique(role)
        body = {"username": username, "password": "password-123", "role": role}
        if union_id is not None:
            body["union_id"] = union_id
        if supplier_id is not None:
            body["supplier_id"] = supplier_id
        r = await admin.post("/api/admin/users", json=body)
        assert r.status_code == 201, r.text
        api = await login(client, username, "password-123")
        api.user = r.json()
        return api

    return _make


def assert_problem(response, status: int, code: str):
    """A refusal is a problem detail with the right status and code."""
    assert response.status_code == status, f"{response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert "title" in body and "type" in body
    return body


async def fresh_login_window(seconds_needed: float = 5) -> None:
    """Login attempts are counted in fixed minutes: wait until at least `seconds_needed` of
    the current one are left, so a test's attempts all fall in one window."""
    import time

    left = 60 - time.time() % 60
    if left < seconds_needed:
        await asyncio.sleep(left + 0.05)
