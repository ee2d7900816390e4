"""The real server as a separate process (`shop serve --workers N`) on the tests' database."""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SHOP = (sys.executable, "-m", "shop.cli")  # the shop of the source tree, as the tests import it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path

    def output(self) -> str:
        """Everything the server wrote so far (stdout and stderr)."""
        return self.log.read_bytes().decode(errors="replace")


@contextmanager
def server_process(
    workers: int = 2,
    extra_env: dict[str, str] | None = None,
    *,
    shop: Sequence[str] = SHOP,
    args: Sequence[str] = ("--no-migrate",),
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """`shop serve` on a free port, ready (`/ready` answers 200) when this yields; stopped with
    SIGTERM afterwards. `env` replaces the tests' environment (an installed shop, elsewhere)."""
    port = free_port()
    base = env if env is not None else {**os.environ, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"}
    # the server's output goes to a file (appended to, so that it can be read meanwhile): a
    # pipe nobody reads would block a server that logs much
    fd, name = tempfile.mkstemp(prefix="shop-server-", suffix=".log")
    os.close(fd)
    with open(name, "ab") as out:
        proc = subprocess.Popen(
            [*shop, "serve", "--port", str(port), "--workers", str(workers), *args],
            cwd=cwd,
            env={**base, **(extra_env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", proc, Path(name))
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {server.output()}")
            try:
                if httpx.get(f"{server.url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not become ready in 120 s: {server.output()}")
            time.sleep(0.2)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        server.log.unlink(missing_ok=True)


@contextmanager
def running_server(workers: int = 2, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """The server's address (see `server_process`)."""
    with server_process(workers, extra_env) as server:
        yield server.url


async def eventually(check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    """Wait until `check()` (or its awaited value) is true, and return it: for what another
    process does in its own time. The timeout only stops a wait that would never end."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not so after {timeout} s")
        await asyncio.sleep(0.1)
