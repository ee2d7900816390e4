"""More than one server: two `shop serve --workers 2` processes on one database (and, in the
second round, one Redis through `REDIS_URL`), talked to over HTTP, alternately. The kernel may
hand every connection to one worker, so a second server is what proves that every process
sees the same rows, counts and revocations: the cap race split across both, the login limit
counted across both, a logout on one honoured by the other, and the periodic work (each
server's own, beside `shop tick` from cron) done exactly once between them. Every test runs
twice: with the database as the shared store, and with Redis (`TEST_REDIS_URL`, default
redis://127.0.0.1:6379/5, flushed first; that round is skipped, saying so, when no Redis
answers)."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import subprocess
from contextlib import ExitStack
from datetime import timedelta

import httpx
import pytest

from budgets.tables import LedgerEntry, MemberBudget
from catalog.tables import Product
from common.clock import utcnow
from shop.auth.accounts import create_user
from shop.fulfilment.tables import Shipment
from shop.orders.states import OrderStatus
from shop.orders.tables import Order, OrderEvent
from tests.conftest import fresh_login_window
from tests.server import ROOT, SHOP, Server, eventually, server_process
from tests.test_concurrency import check_invariants
from tests.world import build_world

pytestmark = pytest.mark.slow_suite

REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/5"
LIMIT = 10
# each server runs its periodic work every second, logs JSON at INFO (who expired which order),
# and keeps a small pool: four server processes share PostgreSQL's max_connections with the tests
SERVER_ENV = {"LOGIN_RATE_LIMIT": str(LIMIT), "EXPIRY_INTERVAL_SECONDS": "1", "LOG_FORMAT": "json", "LOG_LEVEL": "INFO",
              "PG_POOL_MIN": "1", "PG_POOL_MAX": "4"}  # fmt: skip


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
def servers(request, app) -> list[Server]:
    env = {**SERVER_ENV, "REDIS_URL": ""}
    if request.param == "redis":
        _fresh_redis()
        env["REDIS_URL"] = REDIS_TEST_URL
    with ExitStack() as stack:
        yield [stack.enter_context(server_process(workers=2, extra_env=env)) for _ in range(2)]


def _client(n: int) -> httpx.AsyncClient:
    # a new connection per request, so that either worker of a server may take it
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    return httpx.AsyncClient(timeout=60, limits=limits)


async def on_both(c: httpx.AsyncClient, servers: list[Server], method: str, path: str, n: int, **kw) -> list[httpx.Response]:
    """`n` requests at once, alternately to each server."""
    return await asyncio.gather(*[c.request(method, servers[i % 2].url + path, **kw) for i in range(n)])


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
        for server in servers:
            right = await c.post(server.url + "/api/auth/login", json={"username": "target", "password": "right-password"})
            assert right.status_code == 429 and right.json()["code"] == "rate_limited", right.text
        # another username from the same address has its own count
        other = await c.post(servers[0].url + "/api/auth/login", json={"username": "someone-else", "password": "wrong-password"})
        assert other.status_code == 401


async def test_a_logout_on_one_server_ends_the_token_on_the_other(servers):
    await create_user("leaving", "right-password", "admin")
    async with _client(20) as c:
        r = await c.post(servers[0].url + "/api/auth/login", json={"username": "leaving", "password": "right-password"})
        assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        # both servers have seen (and, with Redis, cached) the token as good
        assert {r.status_code for r in await on_both(c, servers, "GET", "/api/me", 20, headers=auth)} == {200}
        assert (await c.post(servers[1].url + "/api/auth/logout", headers=auth)).status_code == 204
        await asyncio.sleep(1.1)  # the in-process cache in front of Redis answers for at most a second
        after = await on_both(c, servers, "GET", "/api/me", 20, headers=auth)
        assert [r.status_code for r in after] == [401] * 20


async def test_password_change_and_deactivation_end_tokens_everywhere(servers):
    await create_user("boss", "boss-password", "admin")
    await create_user("changer", "right-password", "admin")
    first_server, second_server = (s.url for s in servers)
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


async def test_the_cap_holds_with_orders_split_across_both_servers(app, servers, make_user, admin):
    world = await build_world(make_user, admin, members=4)
    tea = world.products["tea"]
    await Product.update({Product.stock: 1000}).where(Product.id == tea)
    # each order: 10000 fen split over the same 4 members = 2500 each; 60000 / 2500 = 24 fit
    body = {"lines": [{"product_id": tea, "quantity": 1}], "members": world.members}
    auth = {"Authorization": f"Bearer {world.buyer.token}"}
    async with _client(64) as c:
        responses = await asyncio.gather(
            *[c.post(servers[i % 2].url + "/api/orders", json=body, headers={**auth, "Idempotency-Key": f"split-{i}"}) for i in range(64)]
        )
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 24, statuses
    assert all(r.json()["code"] == "cap_exceeded" for r in responses if r.status_code != 201), [r.text for r in responses][:3]
    assert await check_invariants(world.members) == {m: 60000 for m in world.members}
    assert await Order.count() == 24
    assert (await Product.select(Product.stock).where(Product.id == tea).first())["stock"] == 1000 - 24


EXPIRED = r"order (\d+) expired \(hold ran out\)"  # shop/orders/cancellation.py's line for each order it expires


def _shop_tick() -> subprocess.Popen:
    """`shop tick`, as cron on another machine runs it (logging JSON, like the servers)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
    return subprocess.Popen([*SHOP, "tick"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def _none_pending(orders: list[int]) -> bool:
    return not await Order.exists().where(Order.id.is_in(orders) & (Order.status == OrderStatus.pending_payment))


def _logged(output: str, pattern: str) -> list[tuple[int, int]]:
    """(pid, the number in the message) of every JSON log line whose message matches."""
    found = []
    for line in output.splitlines():
        if line.startswith("{") and (m := re.fullmatch(pattern, json.loads(line)["message"])):
            found.append((json.loads(line)["pid"], int(m[1])))
    return found


async def test_periodic_work_is_done_once_between_both_servers_and_cron(app, servers, make_user, admin):
    """Each server runs the periodic work (`shop/jobs.py: tick()`) every second, and two `shop
    tick` runs join in at once: whatever falls due is done by exactly one of them. Hold expiry
    below; auto-receive of shipments in the test after this one."""
    world = await build_world(make_user, admin, members=8)
    tea = world.products["tea"]
    await Product.update({Product.stock: 1000}).where(Product.id == tea)
    auth = {"Authorization": f"Bearer {world.buyer.token}"}
    async with _client(8) as c:  # 40 orders of 10000 fen, five for each member, alternately on each server
        bodies = [{"lines": [{"product_id": tea, "quantity": 1}], "members": [world.members[i % 8]]} for i in range(40)]
        placed = await asyncio.gather(
            *[c.post(servers[i % 2].url + "/api/orders", json=b, headers={**auth, "Idempotency-Key": f"due-{i}"}) for i, b in enumerate(bodies)]
        )
    assert [r.status_code for r in placed] == [201] * 40, [r.text for r in placed if r.status_code != 201][:3]
    orders = sorted(r.json()["id"] for r in placed)
    assert await check_invariants(world.members) == {m: 50000 for m in world.members}

    # every hold ends now, at once: both servers' periodic work and two cron runs find them due
    logged_before = [len(s.output()) for s in servers]
    await Order.update({Order.expires_at: utcnow() - timedelta(minutes=1)}).where(Order.id.is_in(orders))
    ticks = [_shop_tick(), _shop_tick()]
    cron = await asyncio.gather(*[asyncio.to_thread(p.communicate, timeout=120) for p in ticks])
    assert [p.returncode for p in ticks] == [0, 0], cron
    await eventually(lambda: _none_pending(orders), "every order expired")

    expired = await Order.select(Order.id, Order.status).where(Order.id.is_in(orders)).order_by(Order.id)
    assert [(o["id"], o["status"]) for o in expired] == [(i, "expired") for i in orders]
    events = await OrderEvent.select(OrderEvent.order, OrderEvent.actor).where(OrderEvent.action == "expired").order_by(OrderEvent.order)
    assert [(e["order"], e["actor"]) for e in events] == [(i, None) for i in orders]
    # stock back and holds released exactly once: one release per hold, nothing held, the ledger chains
    assert (await Product.select(Product.stock).where(Product.id == tea).first())["stock"] == 1000
    assert await check_invariants(world.members) == {m: 0 for m in world.members}
    releases = await LedgerEntry.count().where((LedgerEntry.kind == "release") & LedgerEntry.order_id.is_in(orders))
    assert releases == await LedgerEntry.count().where((LedgerEntry.kind == "hold") & LedgerEntry.order_id.is_in(orders)) == 40
    assert await MemberBudget.count().where(MemberBudget.held_fen != 0) == 0

    # who did it: every order's "expired" line was written by exactly one process (a server's
    # worker or a cron run), and each cron run's count agrees with its own lines
    cron_lines = [_logged(err, EXPIRED) for _, err in cron]
    assert [len(lines) for lines in cron_lines] == [ast.literal_eval(out.strip().splitlines()[-1])["expired"] for out, _ in cron]

    def all_lines() -> list[tuple[int, int]] | None:
        outputs = [s.output()[before:] for s, before in zip(servers, logged_before)]
        found = [line for output in outputs for line in _logged(output, EXPIRED)] + [line for lines in cron_lines for line in lines]
        return found if len(found) >= len(orders) else None

    lines = await eventually(all_lines, "every expiry logged")
    assert sorted(order for _, order in lines) == orders
    # and both servers tell the same story, over HTTP
    async with _client(8) as c:
        for server in servers:
            stories = await asyncio.gather(*[c.get(f"{server.url}/api/orders/{i}/events", headers=auth) for i in orders])
            assert {tuple(e["action"] for e in r.json()) for r in stories} == {("placed", "expired")}


RECEIVED = r"shipment (\d+) received automatically \(order \d+\)"  # shop/fulfilment/shipments.py's line


async def _none_shipped(shipments: list[int]) -> bool:
    return not await Shipment.exists().where(Shipment.id.is_in(shipments) & (Shipment.status == "shipped"))


async def test_auto_receive_is_done_once_between_both_servers_and_cron(app, servers, make_user, admin):
    """Shipments sent more than AUTO_RECEIVE_DAYS ago: both servers' periodic work and two
    `shop tick` runs find them due at once; each is received once, by exactly one process."""
    world = await build_world(make_user, admin, members=4)
    tea = world.products["tea"]
    await Product.update({Product.stock: 1000}).where(Product.id == tea)
    buyer = {"Authorization": f"Bearer {world.buyer.token}"}
    admin_auth = {"Authorization": f"Bearer {world.admin.token}"}
    supplier = {"Authorization": f"Bearer {world.supplier_user.token}"}
    async with _client(8) as c:
        placed = await asyncio.gather(*[
            c.post(servers[i % 2].url + "/api/orders", headers={**buyer, "Idempotency-Key": f"ship-{i}"},
                   json={"lines": [{"product_id": tea, "quantity": 1}], "members": [world.members[i % 4]]})
            for i in range(12)
        ])  # fmt: skip
        assert [r.status_code for r in placed] == [201] * 12
        for i, r in enumerate(placed):
            order = r.json()
            paid = await c.post(f"{servers[i % 2].url}/api/admin/orders/{order['id']}/confirm-transfer", headers=admin_auth,
                                json={"reference": order["payment"]["reference"]})  # fmt: skip
            assert paid.status_code == 200, paid.text
            [shipment] = paid.json()["shipments"]
            sent = await c.post(f"{servers[(i + 1) % 2].url}/api/supplier/shipments/{shipment['id']}/ship", headers=supplier,
                                json={"carrier": "顺丰速运", "tracking_no": f"SF{i:010d}"})  # fmt: skip
            assert sent.status_code == 200, sent.text
    shipments = sorted(s["id"] for s in await Shipment.select(Shipment.id))
    orders = sorted(r.json()["id"] for r in placed)
    logged_before = [len(s.output()) for s in servers]
    await Shipment.update({Shipment.shipped_at: utcnow() - timedelta(days=11)}).where(Shipment.id.is_in(shipments))
    ticks = [_shop_tick(), _shop_tick()]
    cron = await asyncio.gather(*[asyncio.to_thread(p.communicate, timeout=120) for p in ticks])
    assert [p.returncode for p in ticks] == [0, 0], cron
    await eventually(lambda: _none_shipped(shipments), "every shipment received")

    events = await OrderEvent.select(OrderEvent.order, OrderEvent.actor).where(OrderEvent.action == "received").order_by(OrderEvent.order)
    assert [(e["order"], e["actor"]) for e in events] == [(i, None) for i in orders]
    cron_lines = [_logged(err, RECEIVED) for _, err in cron]
    assert [len(lines) for lines in cron_lines] == [ast.literal_eval(out.strip().splitlines()[-1])["shipments_received"] for out, _ in cron]

    def all_lines() -> list[tuple[int, int]] | None:
        outputs = [s.output()[before:] for s, before in zip(servers, logged_before)]
        found = [line for output in outputs for line in _logged(output, RECEIVED)] + [line for lines in cron_lines for line in lines]
        return found if len(found) >= len(shipments) else None

    lines = await eventually(all_lines, "every receipt logged")
    assert sorted(shipment for _, shipment in lines) == shipments  # each once, by one process
    async with _client(8) as c:
        for server in servers:
            stories = await asyncio.gather(*[c.get(f"{server.url}/api/orders/{i}/events", headers=buyer) for i in orders])
            assert {tuple(e["action"] for e in r.json()) for r in stories} == {("placed", "transfer_confirmed", "shipped", "received")}
