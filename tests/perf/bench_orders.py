"""Order placement throughput on PostgreSQL: orders per second at 1, 8 and 32 concurrent
clients, over distinct members and over shared members, against the real server.

    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/shop_bench \\
        .venv/bin/python -m tests.perf.bench_orders [--orders 400] [--workers 2]

The database named in the URL is dropped and made anew. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import asyncpg

URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/shop_bench")
os.environ["DATABASE_URL"] = URL
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="shop-bench-"))
os.environ["LOGIN_RATE_LIMIT"] = "100000"
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


async def recreate_database() -> None:
    parsed = urlparse(URL)
    name = parsed.path.lstrip("/")
    admin = await asyncpg.connect(URL.replace(parsed.path, "/postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def setup(members: int) -> dict:
    import piccolo_conf
    from catalog import service as catalog
    from catalog.regions import ensure_region
    from catalog.suppliers import ensure_supplier
    from catalog.tables import Product
    from shop.auth import accounts as auth
    from shop.db import connection_pool, migrate
    from tests.world import add_members, add_union

    async with connection_pool(piccolo_conf.DB, 1, 2):
        await migrate()
        fed = await add_union("GZ", "federation", None)
        branch = await add_union("GZ-BENCH", "branch", fed)
        await ensure_region("bijie", "毕节", "贵州", ["GZ"])
        supplier = await ensure_supplier("毕节农业合作社", ["bijie"])
        product = await catalog.ensure_product(supplier, "毕节高山绿茶", "bijie", "tea", "盒", 100, 1_000_000, "压测用", "listed")
        await Product.update({Product.stock: 1_000_000}).where(Product.id == product)
        member_ids = await add_members(branch, "P", members)
        await auth.create_user("bench", "bench-password", "buyer", union_id=branch)
    return {"product": product, "members": member_ids}


async def run_scenario(url: str, token: str, bodies: list[dict], concurrency: int, tag: str) -> tuple[float, list[float], dict]:
    import httpx

    queue: asyncio.Queue = asyncio.Queue()
    for i, body in enumerate(bodies):
        queue.put_nowait((i, body))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        async def worker():
            while True:
                try:
                    i, body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                r = await client.post(
                    "/api/orders", json=body, headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"{tag}-{i}"}
                )
                latencies.append(time.perf_counter() - started)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        elapsed = time.perf_counter() - began
    return len(bodies) / elapsed, latencies, statuses


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=400, help="orders per scenario")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    levels = (1, 8, 32)
    distinct_needed = args.orders * len(levels)
    await recreate_database()
    world = await setup(distinct_needed + 4)
    import httpx

    from tests.server import running_server

    shared = world["members"][-4:]
    distinct = iter(world["members"][:-4])
    rows = []
    with running_server(workers=args.workers) as url:
        async with httpx.AsyncClient(base_url=url) as c:
            token = (await c.post("/api/auth/login", json={"username": "bench", "password": "bench-password"})).json()["token"]
        for kind in ("distinct", "shared"):
            for concurrency in levels:
                if kind == "distinct":
                    bodies = [{"lines": [{"product_id": world["product"], "quantity": 1}], "members": [next(distinct)]} for _ in range(args.orders)]
                else:
                    bodies = [{"lines": [{"product_id": world["product"], "quantity": 1}], "members": shared} for _ in range(args.orders)]
                rate, lat, statuses = await run_scenario(url, token, bodies, concurrency, f"{kind}-{concurrency}")
                lat.sort()
                rows.append((kind, concurrency, rate, statistics.median(lat) * 1000, lat[int(len(lat) * 0.95) - 1] * 1000, statuses))
    print(f"\norder placement on PostgreSQL, {args.workers} server workers, {args.orders} orders per row, {os.cpu_count()} cores")
    print(f"{'members':<9} {'clients':>7} {'orders/s':>9} {'p50 ms':>8} {'p95 ms':>8}  statuses")
    for kind, concurrency, rate, p50, p95, statuses in rows:
        print(f"{kind:<9} {concurrency:>7} {rate:>9.1f} {p50:>8.1f} {p95:>8.1f}  {statuses}")


if __name__ == "__main__":
    asyncio.run(main())
