"""A lost database is 503 `unavailable`, never 500, and the server recovers by itself:
the real server (two workers, PostgreSQL) has every one of its database connections
killed in the middle of a stream of orders."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import pytest

from budgets import verification
from catalog.tables import Product
from tests.conftest import POSTGRES_URL
from tests.server import running_server
from tests.world import build_world

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="connections are killed on PostgreSQL (TEST_POSTGRES_URL)")
APP_NAME = "shop_under_test"


async def _kill_server_connections() -> int:
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = $1", APP_NAME
        )
        return sum(1 for r in rows if r["killed"])
    finally:
        await conn.close()


async def test_killed_connections_answer_503_then_the_server_recovers(app, make_user, admin):
    world = await build_world(make_user, admin, members=40)
    await Product.update({Product.stock: 10_000}).where(Product.id == world.products["rice"])
    sep = "&" if "?" in POSTGRES_URL else "?"
    env = {"DATABASE_URL": f"{POSTGRES_URL}{sep}application_name={APP_NAME}", "PG_POOL_MIN": "1", "PG_POOL_MAX": "4"}
    with running_server(workers=2, extra_env=env) as url:
        headers = {"Authorization": f"Bearer {world.buyer.token}"}
        async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers) as client:

            async def order(i: int) -> httpx.Response:
                body = {"lines": [{"product_id": world.products["rice"], "quantity": 1}], "members": [world.members[i]]}
                return await client.post("/api/orders", json=body, headers={"Idempotency-Key": f"outage-{i}"})

            async def kill_soon(delay: float) -> int:
                await asyncio.sleep(delay)
                return await _kill_server_connections()

            answers: list[httpx.Response] = []
            killed = 0
            for batch in range(4):  # 4 batches of 8 orders; the middle two have their connections killed under them
                orders = [order(batch * 8 + j) for j in range(8)]
                if batch in (1, 2):
                    *done, count = await asyncio.gather(*orders, kill_soon(0.02 * batch))
                    killed += count
                else:
                    done = await asyncio.gather(*orders)
                answers += done
            assert killed >= 2
            statuses = [r.status_code for r in answers]
            assert set(statuses) <= {201, 503}, [r.text for r in answers if r.status_code not in (201, 503)][:3]
            for r in answers:
                if r.status_code == 503:
                    assert r.json()["code"] == "unavailable" and r.headers["retry-after"]
            # it recovers on its own: readiness comes back, and then every order goes through
            deadline, healthy = time.monotonic() + 30, 0
            while healthy < 12 and time.monotonic() < deadline:
                healthy = healthy + 1 if (await client.get("/ready")).status_code == 200 else 0
            assert healthy >= 12
            again = await asyncio.gather(*[order(32 + j) for j in range(8)])
            assert [r.status_code for r in again] == [201] * 8, [r.text for r in again if r.status_code != 201][:2]
            # a 503 is safe to repeat with the same Idempotency-Key: an order whose commit
            # was lost in transit answers 200 (the same order), one that never was 201
            retried = await asyncio.gather(*[order(i) for i, r in enumerate(answers) if r.status_code == 503])
            assert all(r.status_code in (200, 201) for r in retried), [r.text for r in retried][:2]
    result = await verification.verify_ledger()
    assert result.ok, result.problems
    placed = {r.json()["id"] for r in [*answers, *again, *retried] if r.status_code in (200, 201)}
    assert len(placed) == 40  # every order once: none lost, none twice
    assert (await Product.select(Product.stock).where(Product.id == world.products["rice"]).first())["stock"] == 10_000 - 40
