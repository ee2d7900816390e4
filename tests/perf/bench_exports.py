"""The streamed exports on a province-sized database (PostgreSQL): the ledger and the member
audit (`min_ratio=0`, every member with a budget row) as CSV and XLSX, with a ledger of
100,000 and then 1,000,000 entries (tests/perf/province.py writes it; same 200,000 members).

    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/shop_exports \\
        /work/main/.venv/bin/python -m tests.perf.bench_exports [--small 100000] [--large 1000000]

The database named in the URL is dropped and made anew. Each export runs in a fresh process
(so its memory is its own): the response the API would send (`shop.reports.export.export`
over the same batches and columns), its body read to the end and dropped, timed, with that
process's peak RSS above its RSS before the export (VmHWM) and tracemalloc's peak of the
Python heap. Memory that does not grow with the rows is the point. Prints a table and the
machine's load; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import tracemalloc

import asyncpg

from common.sql import BATCH
from tests.perf.bench_reports import ROOT, URL, load, recreate_database, reset_peak_rss, rss_mb

EXPORTS = [("ledger", "csv"), ("ledger", "xlsx"), ("members", "csv"), ("members", "xlsx")]


async def child_main(what: str, fmt: str, year: int) -> None:
    import piccolo_conf
    from budgets import audit
    from shop.db import connection_pool
    from shop.reports.api import AUDIT_MEMBER_COLUMNS, ENTRY_COLUMNS
    from shop.reports.export import export

    def batches():
        if what == "ledger":
            return audit.ledger_batches(None), ENTRY_COLUMNS
        return audit.audit_member_batches(None, year, 0), AUDIT_MEMBER_COLUMNS

    async def run() -> tuple[int, int]:
        source, columns = batches()
        response = await export(fmt, source, columns, what, what)
        size = chunks = 0
        async for chunk in response.iterator:
            size += len(chunk)
            chunks += 1
        await response.background()
        return size, chunks

    async with connection_pool(piccolo_conf.DB, 1, 4):
        _, rows = await (audit.ledger_page(None, limit=1) if what == "ledger" else audit.audit_members(None, year, 0, 1, 0))
        base = rss_mb()
        reset_peak_rss()
        started, load_before = time.perf_counter(), load()
        size, chunks = await run()
        seconds = time.perf_counter() - started
        peak = rss_mb("VmHWM")
        tracemalloc.start()
        await run()
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(json.dumps({
        "rows": rows, "bytes": size, "chunks": chunks, "seconds": seconds, "base_rss_mb": base,
        "peak_rss_growth_mb": peak - base, "traced_peak_mb": traced_peak / 2**20, "load": f"{load_before} → {load()}",
    }))


def in_child(what: str, fmt: str, year: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.perf.bench_exports", "--child", what, fmt, "--year", str(year)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"export child failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=100_000, help="ledger entries of the first measurement")
    parser.add_argument("--large", type=int, default=1_000_000, help="ledger entries of the second")
    parser.add_argument("--year", type=int, default=None)
    parser.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        await child_main(*args.child, args.year)
        return

    await recreate_database()
    import piccolo_conf
    from budgets import ledger
    from shop.db import connection_pool, migrate
    from tests.perf.province import Province

    year = args.year or ledger.current_year()
    province = Province(year, planned_entries=args.large)
    results: list[tuple[int, str, str, dict]] = []
    async with connection_pool(piccolo_conf.DB, 1, 4):
        await migrate()
        conn = await asyncpg.connect(URL)
        try:
            await conn.execute("SET session_replication_role = replica")  # bulk load, as bench_reports does
            await conn.execute("SET synchronous_commit = off")
            t = time.perf_counter()
            print(f"tree: {await province.build(conn)} in {time.perf_counter() - t:.1f} s", flush=True)
            await province.add_catalog()
            for size in (args.small, args.large):
                t = time.perf_counter()
                await province.grow_to(conn, size)
                await conn.execute("ANALYZE")
                print(f"ledger grown to {size} entries in {time.perf_counter() - t:.1f} s", flush=True)
                for what, fmt in EXPORTS:
                    result = in_child(what, fmt, year)
                    results.append((size, what, fmt, result))
                    print(f"  {what} {fmt}: {result}", flush=True)
        finally:
            await conn.close()
    print(f"\nexports, streamed (common.sql.BATCH = {BATCH} rows a query); load now {load()}")
    print(f"{'ledger entries':>14} {'export':<13} {'rows':>9} {'MB sent':>8} {'seconds':>8} {'RSS before':>10} {'RSS peak +':>10} {'traced peak':>11}")
    for size, what, fmt, r in results:
        print(
            f"{size:>14,} {what + ' ' + fmt:<13} {r['rows']:>9,} {r['bytes'] / 2**20:>8.1f} {r['seconds']:>8.1f}"
            f" {r['base_rss_mb']:>8.1f}MB {r['peak_rss_growth_mb']:>8.1f}MB {r['traced_peak_mb']:>9.1f}MB"
        )


if __name__ == "__main__":
    asyncio.run(main())
