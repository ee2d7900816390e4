"""The login limit and tokens that end, against the real server: two `shop serve --workers 2`
processes on the same database (the kernel may hand every connection to one worker, so a
second server is what proves that every process sees the same counts and revocations), once
with the database as the shared store and once with Redis (`REDIS_URL`)."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack

import httpx
import pytest

from shop.auth.accounts import create_user
from tests.conftest import fresh_login_window
from tests.server import running_server

pytestmark = pytest.mark.slow_suite

REDIS_TEST_URL = "redis://127.0.0.1:6379/15"
LIMIT = 10


def _fresh_redis() -> None:
    """Flush the tests' Redis database, or skip when there is no Redis to test with."""
    import redis

    try:
        client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
        client.flushdb()
        client.close()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis at {REDIS_TEST_URL} is unreachable ({exc}); the Redis variant needs it")


@pytest.fixture(scope="module", params=["database", "redis"])
def servers(request, app):
    env = {"LOGIN_RATE_LIMIT": str(LIMIT), "REDIS_URL": ""}
    if request.param == "redis":
        _fresh_redis()
        env["REDIS_URL"] = REDIS_TEST_URL
    with ExitStack() as stack:
        yield [stack.enter_context(running_server(workers=2, extra_env=env)) for _ in range(2)]


def _client(n: int) -> httpx.AsyncClient:
    # a new connection per request, so that either worker of a server may take it
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    return httpx.AsyncClient(timeout=60, limits=limits)


async def on_both(c: httpx.AsyncClient, servers: list[str], method: str, path: str, n: int, **kw) -> list[httpx.Response]:
    """`n` requests at once, alternately to each server."""
    return await asyncio.gather(*[c.request(method, servers[i % 2] + path, **kw) for i in range(n)])


async def test_at_most_the_limit_is_checked_however_many_arrive_at_once(servers):
    await create_user("target", "right-password", "admin")
    await fresh_login_window(20)
    async with _client(40) as c:
        wrong = {"username": "target", "password": "wrong-password"}
        responses = await on_both(c, servers, "POST", "/api/auth/login", 40, json=wrong)
        statuses = [r.status_code for r in responses]
        assert statuses.count(401) == LIMIT and statuses.count(429) == 40 - LIMIT, statuses
        refused = [r for r in responses if r.status_code == 429]
        assert all(r.json()["code"] == "rate_limited" for r in refused)
        assert all(1 <= int(r.headers["retry-after"]) <= 60 for r in refused)
        for url in servers:
            right = await c.post(url + "/api/auth/login", json={"username": "target", "password": "right-password"})
            assert right.status_code == 429 and right.json()["code"] == "rate_limited", right.text
        # another username from the same address has its own count
        other = await c.post(servers[0] + "/api/auth/login", json={"username": "someone-else", "password": "wrong-password"})
        assert other.status_code == 401


async def test_logout_ends_the_token_everywhere(servers):
    await create_user("leaving", "right-password", "admin")
    async with _client(20) as c:
        r = await c.post(servers[0] + "/api/auth/login", json={"username": "leaving", "password": "right-password"})
        assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        # both servers have seen (and, with Redis, cached) the token as good
        assert {r.status_code for r in await on_both(c, servers, "GET", "/api/me", 20, headers=auth)} == {200}
        assert (await c.post(servers[0] + "/api/auth/logout", headers=auth)).status_code == 204
        await asyncio.sleep(1.1)  # the in-process cache in front of Redis answers for at most a second
        after = await on_both(c, servers, "GET", "/api/me", 20, headers=auth)
        assert [r.status_code for r in after] == [401] * 20


async def test_password_change_and_deactivation_end_tokens_everywhere(servers):
    await create_user("boss", "boss-password", "admin")
    await create_user("changer", "right-password", "admin")
    first_server, second_server = servers
    async with _client(20) as c:
        async def token(url: str, username: str, password: str) -> dict[str, str]:
            r = await c.post(url + "/api/auth/login", json={"username": username, "password": password})
            assert r.status_code == 200, r.text
            return {"Authorization": f"Bearer {r.json()['token']}"}

        boss = await token(first_server, "boss", "boss-password")
        first, second = await token(first_server, "changer", "right-password"), await token(second_server, "changer", "right-password")
        body = {"old_password": "right-password", "new_password": "newer-password"}
        assert (await c.post(second_server + "/api/me/password", json=body, headers=second)).status_code == 204
        for headers in (first, second):
            assert {r.status_code for r in await on_both(c, servers, "GET", "/api/me", 10, headers=headers)} == {401}
        third = await token(second_server, "changer", "newer-password")
        me = (await c.get(second_server + "/api/me", headers=third)).json()
        assert (await c.patch(f"{first_server}/api/admin/users/{me['id']}", json={"active": False}, headers=boss)).status_code == 200
        assert {r.status_code for r in await on_both(c, servers, "GET", "/api/me", 10, headers=third)} == {401}
        login = {"username": "changer", "password": "newer-password"}
        assert {r.status_code for r in await on_both(c, servers, "POST", "/api/auth/login", 2, json=login)} == {401}
