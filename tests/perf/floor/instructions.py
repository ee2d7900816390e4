"""Instructions per listing request, the project's app against the floor's, counted by
callgrind: the same figure on every run whatever else the machine is doing, so a change of a
few percent in what a request costs in Python shows where wrk's requests/s cannot tell it from
noise.

Each app is called in one process, as an ASGI app (no HTTP server: uvicorn's share is the same
for both), on the bench's PostgreSQL database (`setup_db.py`, made if missing), one request at a
time: 300 requests to warm up, then callgrind counts the next `--requests` (PostgreSQL's own
work is in its own processes and not counted).

    apt-get install -y valgrind
    .venv/bin/python tests/perf/floor/instructions.py            # every query shape (~2 min)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUERIES = {"plain": "limit=20", "paired_with": "limit=20&paired_with=GZ", "q": "limit=20&q=%E8%8C%B6"}
WARM_UP = 300


def _app(which: str):
    if which == "floor":
        import floor_app

        return floor_app.app
    # the project's `common` package, not this folder's common.py (the script's own folder is
    # first on the path)
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    from shop.app import create_app

    return create_app()


async def _serve(which: str, query: str, requests: int) -> None:
    """In the child, under callgrind: start the app, warm up, count `requests` requests."""
    app = _app(which)
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/api/products", "raw_path": b"/api/products", "query_string": query.encode(), "root_path": "",
        "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def call() -> None:
        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        await app(dict(scope), receive, send)
        if sent[0]["status"] != 200:
            raise SystemExit(f"{which}: {sent}")

    lifespan: asyncio.Queue = asyncio.Queue()
    await lifespan.put({"type": "lifespan.startup"})
    started = asyncio.Event()

    async def lifespan_send(message: dict) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()
        elif message["type"].endswith("failed"):
            raise SystemExit(f"{which}: {message}")

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, lifespan.get, lifespan_send))
    await started.wait()
    for _ in range(WARM_UP):
        await call()
    control = ["callgrind_control", "-i"]
    subprocess.run([*control, "on", str(os.getpid())], check=True, capture_output=True)
    for _ in range(requests):
        await call()
    subprocess.run([*control, "off", str(os.getpid())], check=True, capture_output=True)
    await lifespan.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(task, 30)


def _count(which: str, query: str, requests: int, work: Path, env: dict) -> float:
    out = work / f"callgrind.{which}.{os.getpid()}"
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
            sys.executable, __file__, "--child", which, query, str(requests)]  # fmt: skip
    # the system allocator, which valgrind sees, rather than pymalloc's arenas
    proc = subprocess.run(argv, env={**env, "PYTHONMALLOC": "malloc"}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{which} under callgrind failed:\n{proc.stderr[-3000:]}")
    summary = re.search(r"^totals:\s+(\d+)", out.read_text(), re.M)
    out.unlink()
    if summary is None:
        raise SystemExit(f"no callgrind summary for {which}")
    return int(summary.group(1)) / requests


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=300, help="requests counted per app and query (default 300)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        which, query, n = a.child
        asyncio.run(_serve(which, query, int(n)))
        return

    sys.path.insert(0, str(HERE))
    import common
    import setup_db

    common.open_workdir()
    setup_db.setup(pg=True, sqlite=False)
    env = common.child_env(
        DATABASE_URL=common.PG_URL, FLOOR_DSN=common.PG_URL, DATA_DIR=str(common.WORK / "data"),
        LOG_LEVEL="WARNING", PYTHONPATH=str(common.PROJECT),
    )  # fmt: skip
    rows = []
    for name, query in QUERIES.items():
        project = _count("project", query, a.requests, common.WORK, env)
        floor = _count("floor", query, a.requests, common.WORK, env)
        rows.append([name, f"{project / 1e6:.3f}", f"{floor / 1e6:.3f}", f"{project / floor:.2f}"])
        print(f"  {name:<11}: project {project / 1e6:.3f} M, floor {floor / 1e6:.3f} M instructions a request", flush=True)
    common.print_table(
        f"LISTING, instructions per request in the app's process (callgrind, {a.requests} requests after {WARM_UP})",
        ["query", "project M", "F-HTTP-list M", "project/floor"], rows,
    )  # fmt: skip
    common.close_workdir()


if __name__ == "__main__":
    main()
