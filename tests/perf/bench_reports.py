"""The targets report and the ledger verification on a province-sized database (PostgreSQL):
20 city federations, 2,000 branches, 200,000 members, and a ledger of 100,000 and then
1,000,000 entries (same unions and members, more purchases).

    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/shop_province \\
        /work/venv/bin/python -m tests.perf.bench_reports [--small 100000] [--large 1000000] [--runs 7]

The database named in the URL is dropped and made anew (tests/perf/province.py writes it).
At each size: `budgets.targets.targets_report(None, year)` in this process, the same report
over HTTP from the real server (`GET /api/reports/targets?year=`, an admin), EXPLAIN ANALYZE
of each query the report runs, and `verify_ledger()` in a fresh process (time, peak RSS
growth, tracemalloc peak). Prints a table with the machine's load; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import asyncpg

URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/shop_province")
os.environ["DATABASE_URL"] = URL
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="shop-bench-"))
os.environ["LOGIN_RATE_LIMIT"] = "100000"
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

ADMIN = ("bench-admin", "bench-admin-password")
WRITTEN_TABLES = (
    "budget_union", "budget_member", "budget_target", "budget_member_budget", "budget_ledger",
    "budget_union_year_total", "shop_order", "shop_order_line", "shop_allocation", "shop_refund",
)


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident set (VmRSS) or its peak (VmHWM), in MB. (Not ru_maxrss: on
    Linux that carries the parent's peak over fork and exec.)"""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def reset_peak_rss() -> None:
    """Make VmHWM start again from the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


async def recreate_database() -> None:
    parsed = urlparse(URL)
    name = parsed.path.lstrip("/")
    admin = await asyncpg.connect(URL.replace(parsed.path, "/postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


def timings(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


# --- measurements ------------------------------------------------------------------------


async def time_report_in_process(year: int, runs: int) -> dict:
    from budgets import targets

    await targets.targets_report(None, year)  # warm: plans, caches
    values = []
    load_before = load()
    for _ in range(runs):
        t = time.perf_counter()
        tree = await targets.targets_report(None, year)
        values.append(time.perf_counter() - t)
    nodes = 0
    stack = list(tree)
    while stack:
        node = stack.pop()
        nodes += 1
        stack.extend(node["children"])
    root = tree[0]
    return {**timings(values), "load": f"{load_before} → {load()}", "nodes": nodes, "root": {k: root[k] for k in ("code", "members", "spent_fen", "target_fen", "progress")}}


async def explain_report(conn: asyncpg.Connection, year: int) -> list[dict]:
    """The SQL targets_report runs (caught from Piccolo's query log), each EXPLAIN ANALYZEd."""
    import piccolo_conf
    from budgets import targets

    engine = piccolo_conf.DB
    caught: list[str] = []
    cls = type(engine)  # the engine has __slots__: patch its class for this one call
    original = cls.print_query
    cls.print_query = lambda self, query_id, query: caught.append(query)
    engine.log_queries = True
    try:
        await targets.targets_report(None, year)
    finally:
        engine.log_queries = False
        cls.print_query = original
    out = []
    for sql in caught:
        if not sql.lstrip().upper().startswith("SELECT"):
            continue
        rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        plan = [r[0] for r in rows]
        ms = next((float(line.split(":")[1].split()[0]) for line in plan if line.startswith("Execution Time")), 0.0)
        out.append({"sql": " ".join(sql.split()), "ms": ms, "plan": plan})
    return out


async def time_report_http(year: int, runs: int, workers: int) -> dict:
    import httpx

    from tests.server import running_server

    # no hold expiry while measuring: the generated pending orders stay as they are
    with running_server(workers=workers, extra_env={"EXPIRY_INTERVAL_SECONDS": str(10**8)}) as url:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            r = await client.post("/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
            r.raise_for_status()
            headers = {"Authorization": f"Bearer {r.json()['token']}"}
            for _ in range(2 * workers):  # every worker warm
                (await client.get("/api/reports/targets", params={"year": year}, headers=headers)).raise_for_status()
            values = []
            load_before = load()
            size = 0
            for _ in range(runs):
                t = time.perf_counter()
                r = await client.get("/api/reports/targets", params={"year": year}, headers=headers)
                values.append(time.perf_counter() - t)
                r.raise_for_status()
                size = len(r.content)
    return {**timings(values), "load": f"{load_before} → {load()}", "bytes": size}


def verify_in_child() -> dict:
    """verify_ledger() in a fresh process, so that its memory is its own."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.perf.bench_reports", "--verify-child"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"verify child failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])



async def verify_child_main() -> None:
    import tracemalloc

    import piccolo_conf
    from budgets import policy, verification
    from shop.db import connection_pool

    async with connection_pool(piccolo_conf.DB, 1, 2):
        await policy.get_policy(2026)  # pool and imports warm
        base_rss = rss_mb()
        reset_peak_rss()
        load_before = load()
        t = time.perf_counter()
        result = await verification.verify_ledger()
        seconds = time.perf_counter() - t
        peak_rss = rss_mb("VmHWM")
        load_after = load()
        tracemalloc.start()
        t = time.perf_counter()
        traced = await verification.verify_ledger()
        traced_seconds = time.perf_counter() - t
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        traced_ok = traced.ok
    print(json.dumps({
        "ok": result.ok,
        "entries": result.entries,
        "member_years": result.member_years,
        "problems": result.problems[:5],
        "seconds": seconds,
        "load": f"{load_before} → {load_after}",
        "base_rss_mb": base_rss,
        "peak_rss_mb": peak_rss,
        "rss_growth_mb": peak_rss - base_rss,
        "tracemalloc_peak_mb": traced_peak / 2**20,
        "traced_seconds": traced_seconds,
        "traced_ok": traced_ok,
    }))


async def database_facts(conn: asyncpg.Connection, year: int) -> dict:
    """Counts, and the report's inputs checked against the ledger-side truth."""
    facts = {}
    for table in WRITTEN_TABLES:
        facts[table] = await conn.fetchval(f'SELECT count(*) FROM "{table}"')
    facts["ledger_size_mb"] = await conn.fetchval("SELECT pg_total_relation_size('budget_ledger') / 1048576.0")
    facts["totals_spent"] = await conn.fetchval("SELECT coalesce(sum(spent_fen), 0) FROM budget_union_year_total WHERE year = $1", year)
    facts["budgets_spent"] = await conn.fetchval("SELECT coalesce(sum(spent_fen), 0) FROM budget_member_budget WHERE year = $1", year)
    facts["max_used"] = await conn.fetchval("SELECT coalesce(max(held_fen + spent_fen), 0) FROM budget_member_budget WHERE year = $1", year)
    facts["orders_paid_net"] = await conn.fetchval(
        "SELECT coalesce(sum(total_fen - refunded_fen), 0) FROM shop_order WHERE year = $1 AND status IN ('paid', 'partially_refunded', 'refunded')", year
    )
    facts["totals_orders"] = await conn.fetchval("SELECT coalesce(sum(orders), 0) FROM budget_union_year_total WHERE year = $1", year)
    facts["orders_paid"] = await conn.fetchval(
        "SELECT count(*) FROM shop_order WHERE year = $1 AND status IN ('paid', 'partially_refunded', 'refunded')", year
    )
    return facts


async def measure(conn: asyncpg.Connection, year: int, runs: int, workers: int) -> dict:
    t = time.perf_counter()
    await conn.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load, done now
    vacuum_s = time.perf_counter() - t
    return {
        "vacuum_s": vacuum_s,
        "facts": await database_facts(conn, year),
        "in_process": await time_report_in_process(year, runs),
        "explain": await explain_report(conn, year),
        "http": await time_report_http(year, runs, workers),
        "verify": verify_in_child(),
    }


# --- the generator against the service ------------------------------------------------


CHECK_URL = URL.rsplit("/", 1)[0] + "/" + urlparse(URL).path.lstrip("/") + "_check"


def check_in_child(entries: int, year: int) -> dict:
    """check_child_main in a fresh process on its own database."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_POSTGRES_URL": CHECK_URL}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.perf.bench_reports", "--check-child", str(entries), "--year", str(year)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"check child failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


async def last_value(conn: asyncpg.Connection, table: str, column: str) -> int:
    sequence = await conn.fetchval("SELECT pg_get_serial_sequence($1, $2)", table, column)
    return await conn.fetchval(f"SELECT last_value FROM {sequence}")


async def check_child_main(entries: int, year: int) -> None:
    """Generate a dense ledger (10 branches, 1,000 members, a whole year: some members run
    into the cap), keep the generator's budget rows, then empty the three budget tables and make the
    same calls through budgets.ledger: ledger, budget rows and totals must be identical,
    ids and sequence values included."""
    await recreate_database()
    import piccolo_conf
    from shop.db import connection_pool, migrate
    from tests.perf.province import Province, budget_rows, replay_through_service

    t = time.perf_counter()
    async with connection_pool(piccolo_conf.DB, 1, 2):
        await migrate()
        conn = await asyncpg.connect(URL)
        try:
            await conn.execute("SET session_replication_role = replica")
            province = Province(year, planned_entries=entries, branch_limit=10)
            province.journal = []
            await province.build(conn)
            await province.add_catalog()
            await province.grow_to(conn, entries)
            generated = await budget_rows(conn)
            sequences = {}
            for table, column in (("budget_ledger", "seq"), ("budget_member_budget", "id"), ("budget_union_year_total", "id")):
                sequences[table] = [await last_value(conn, table, column)]
            await conn.execute("TRUNCATE budget_ledger, budget_member_budget, budget_union_year_total RESTART IDENTITY")
            await conn.execute("SET session_replication_role = origin")
            calls = await replay_through_service(province.journal, year)
            replayed = await budget_rows(conn)
            for table, column in (("budget_ledger", "seq"), ("budget_member_budget", "id"), ("budget_union_year_total", "id")):
                sequences[table].append(await last_value(conn, table, column))
        finally:
            await conn.close()
    tables = {}
    for table, rows in generated.items():
        other = replayed[table]
        first = next((i for i, (a, b) in enumerate(zip(rows, other)) if a != b), None)
        tables[table] = {
            "rows": len(rows),
            "identical": rows == other,
            "first_difference": None if first is None else [str(rows[first]), str(other[first])],
            "sequence_generated_vs_service": sequences[table],
        }
    summary = province.summary()
    admin = await asyncpg.connect(URL.replace(urlparse(URL).path, "/postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{urlparse(URL).path.lstrip("/")}" WITH (FORCE)')
    finally:
        await admin.close()
    print(json.dumps({
        "identical": all(t["identical"] and t["sequence_generated_vs_service"][0] == t["sequence_generated_vs_service"][1] for t in tables.values()),
        "service_calls": calls,
        "kinds": summary["kinds"],
        "cap_exceeded_retries": summary["cap_exceeded_retries"],
        "members_at_90pct_of_cap": summary["members_at_90pct_of_cap"],
        "max_used_fen": summary["max_used_fen"],
        "statuses": summary["statuses"],
        "tables": tables,
        "seconds": time.perf_counter() - t,
    }))


# --- the run ---------------------------------------------------------------------------


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=100_000, help="ledger entries of the first measurement")
    parser.add_argument("--large", type=int, default=1_000_000, help="ledger entries of the second")
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each report")
    parser.add_argument("--workers", type=int, default=2, help="server workers for the HTTP figures")
    parser.add_argument("--year", type=int, default=None)
    parser.add_argument("--verify-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--check-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--check", type=int, default=8000, help="entries of the generator-vs-service check (0: skip)")
    args = parser.parse_args()
    if args.verify_child:
        await verify_child_main()
        return
    if args.check_child is not None:
        await check_child_main(args.check_child, args.year)
        return

    began = time.perf_counter()
    await recreate_database()
    import piccolo_conf
    from budgets import ledger
    from shop.auth import accounts as auth
    from shop.db import connection_pool, migrate
    from tests.perf.province import Province

    year = args.year or ledger.current_year()
    check = None
    if args.check:
        check = check_in_child(args.check, year)
        print(f"generator vs service: identical={check['identical']} over {check['service_calls']} calls in {check['seconds']:.1f} s: {check}", flush=True)
    province = Province(year, planned_entries=args.large)
    steps: dict[str, dict] = {}
    async with connection_pool(piccolo_conf.DB, 1, 4):
        await migrate()
        conn = await asyncpg.connect(URL)
        try:
            # bulk load: ids are ours, every reference is made by the generator itself,
            # so the foreign-key triggers are skipped (superuser, this session only)
            await conn.execute("SET session_replication_role = replica")
            await conn.execute("SET synchronous_commit = off")
            t = time.perf_counter()
            tree = await province.build(conn)
            await province.add_catalog()
            await auth.create_user(ADMIN[0], ADMIN[1], "admin")
            tree_s = time.perf_counter() - t
            print(f"tree: {tree} in {tree_s:.1f} s", flush=True)
            for label, size in (("small", args.small), ("large", args.large)):
                grown = await province.grow_to(conn, size)
                summary = province.summary()
                print(f"ledger grown to {grown['entries']:,} entries in {grown['seconds']:.1f} s "
                      f"(simulate {grown['simulate_s']:.1f}, COPY {grown['copy_ledger_s']:.1f}, rows {grown['rows_s']:.1f}); {summary}", flush=True)
                result = await measure(conn, year, args.runs, args.workers)
                steps[label] = {"grown": grown, "summary": summary, **result}
                print(f"measured {label}: verify ok={result['verify']['ok']} in {result['verify']['seconds']:.1f} s", flush=True)
        finally:
            await conn.close()
    report(steps, year, args, tree, time.perf_counter() - began, check)


def report(steps: dict, year: int, args, tree: dict, total_s: float, check: dict | None) -> None:
    small, large = steps["small"], steps["large"]

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:8.1f}"

    print(f"\nprovince on PostgreSQL, year {year}: {tree['unions']:,} unions ({tree['branches']:,} branches), "
          f"{tree['members']:,} members; {os.cpu_count()} cores; {args.runs} runs each; whole run {total_s / 60:.1f} min")
    print(f"{'':44} {'@ ' + format(small['grown']['entries'], ','):>22} {'@ ' + format(large['grown']['entries'], ','):>22}")
    rows = [
        ("ledger build (simulate + COPY + rows), s", f"{small['grown']['seconds']:.1f}", f"+{large['grown']['seconds']:.1f}"),
        ("budget_ledger size, MB", f"{small['facts']['ledger_size_mb']:.0f}", f"{large['facts']['ledger_size_mb']:.0f}"),
        ("orders / allocations", f"{small['facts']['shop_order']:,} / {small['facts']['shop_allocation']:,}", f"{large['facts']['shop_order']:,} / {large['facts']['shop_allocation']:,}"),
        ("targets_report(None) in-process, median ms", ms(small["in_process"]["median"]), ms(large["in_process"]["median"])),
        ("  min ms", ms(small["in_process"]["min"]), ms(large["in_process"]["min"])),
        ("  load 1/5/15 min", small["in_process"]["load"], large["in_process"]["load"]),
        ("GET /api/reports/targets, median ms", ms(small["http"]["median"]), ms(large["http"]["median"])),
        ("  min ms", ms(small["http"]["min"]), ms(large["http"]["min"])),
        ("  response KB", f"{small['http']['bytes'] / 1024:.0f}", f"{large['http']['bytes'] / 1024:.0f}"),
        ("  load 1/5/15 min", small["http"]["load"], large["http"]["load"]),
        ("report SQL, sum of EXPLAIN ANALYZE ms", f"{sum(q['ms'] for q in small['explain']):.1f}", f"{sum(q['ms'] for q in large['explain']):.1f}"),
        ("  slowest query ms", f"{max(q['ms'] for q in small['explain']):.1f}", f"{max(q['ms'] for q in large['explain']):.1f}"),
        ("verify_ledger() ok / entries", f"{small['verify']['ok']} / {small['verify']['entries']:,}", f"{large['verify']['ok']} / {large['verify']['entries']:,}"),
        ("  time s", f"{small['verify']['seconds']:.1f}", f"{large['verify']['seconds']:.1f}"),
        ("  µs per entry", f"{small['verify']['seconds'] / max(small['verify']['entries'], 1) * 1e6:.1f}", f"{large['verify']['seconds'] / max(large['verify']['entries'], 1) * 1e6:.1f}"),
        ("  peak RSS growth MB (fresh process)", f"{small['verify']['rss_growth_mb']:.1f}", f"{large['verify']['rss_growth_mb']:.1f}"),
        ("  tracemalloc peak MB", f"{small['verify']['tracemalloc_peak_mb']:.1f}", f"{large['verify']['tracemalloc_peak_mb']:.1f}"),
        ("  load 1/5/15 min", small["verify"]["load"], large["verify"]["load"]),
    ]
    for name, a, b in rows:
        print(f"{name:44} {a:>22} {b:>22}")
    if check:
        rows_note = ", ".join(f"{t}: {v['rows']:,} rows {'identical' if v['identical'] else 'DIFFERENT'}" for t, v in check["tables"].items())
        print(f"\ngenerator = budgets.ledger on the same calls: {check['identical']} ({check['service_calls']:,} calls, "
              f"{check['cap_exceeded_retries']} refused with cap_exceeded, max held+spent {check['max_used_fen']:,}; {rows_note})")
    for label, step in (("small", small), ("large", large)):
        print(f"\nreport queries @ {step['grown']['entries']:,} entries (EXPLAIN ANALYZE):")
        for q in step["explain"]:
            print(f"  {q['ms']:8.2f} ms  {q['sql'][:150]}")
        slowest = max(step["explain"], key=lambda q: q["ms"])
        print("  plan of the slowest:")
        for line in slowest["plan"]:
            print("    " + line)
        facts = step["facts"]
        print(f"  root: {step['in_process']['root']}; nodes {step['in_process']['nodes']:,}")
        print(f"  checks: totals spent {facts['totals_spent']:,} = budgets spent {facts['budgets_spent']:,} = orders net {facts['orders_paid_net']:,}; "
              f"totals orders {facts['totals_orders']:,} = paid orders {facts['orders_paid']:,}; max held+spent {facts['max_used']:,} (cap 60,000)")
        if step["verify"]["problems"]:
            print(f"  verify problems: {step['verify']['problems']}")


if __name__ == "__main__":
    asyncio.run(main())
