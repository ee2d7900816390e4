"""Installed like software: the wheel built from the source tree, installed with pip into a
fresh virtual environment (no site packages, nothing of the source tree on its path), run from
directories of its own: `shop serve --demo` in an empty one (migrates, seeds, serves), and
`shop migrate`, `shop seed`, `shop check` in another."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.server import ROOT, server_process

pytestmark = pytest.mark.slow_suite

# what a clean checkout has: no virtual environment, build output or local data
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "data", "*.db", "*.db-*", ".pytest_cache", ".hypothesis", ".schemathesis"
)


def run(*args: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The wheel, installed into a new venv: its `bin/` and an environment that knows nothing
    of the tests (no PYTHONPATH, no DATABASE_URL: the shop's defaults, in the directory it runs in)."""
    tmp = tmp_path_factory.mktemp("wheel")
    pip_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    shutil.copytree(ROOT, tmp / "src", ignore=NOT_SOURCE)
    run(sys.executable, "-m", "pip", "wheel", tmp / "src", "-w", tmp / "dist", "--no-deps", "-q", cwd=tmp, env=pip_env)
    [wheel] = (tmp / "dist").glob("consumption_support_shop-*.whl")
    run(sys.executable, "-m", "venv", tmp / "venv", cwd=tmp, env=pip_env)
    run(tmp / "venv" / "bin" / "pip", "install", "-q", wheel, cwd=tmp, env=pip_env)
    env = {"PATH": f"{tmp / 'venv' / 'bin'}:/usr/bin:/bin", "HOME": str(tmp), "LANG": "C.UTF-8"}
    return tmp / "venv" / "bin", env


def test_the_wheel_carries_the_shop_and_its_data(installed, tmp_path):
    bin_dir, env = installed
    where = run(bin_dir / "python", "-c", "import shop, seeds, piccolo_conf, sys; print(shop.__file__); print(seeds.__file__); print(sys.path)",
                cwd=tmp_path, env=env).stdout.splitlines()  # fmt: skip
    site = str(bin_dir.parent / "lib")
    assert where[0].startswith(site) and where[1].startswith(site), where
    assert str(ROOT) not in where[2]
    files = Path(where[1]).parent
    assert {"unions.json", "products.json", "demo_users.json"} <= {p.name for p in files.glob("*.json")}
    shop_dir = Path(where[0]).parent
    assert (shop_dir / "web" / "templates" / "base.html").exists() and (shop_dir / "web" / "static" / "htmx.min.js").exists()
    assert len(list(shop_dir.glob("piccolo_migrations/shop_*.py"))) >= 1


def test_shop_serve_demo_from_an_empty_directory(installed, tmp_path):
    bin_dir, env = installed
    serving = server_process(workers=1, shop=[str(bin_dir / "shop")], args=("--demo",), cwd=tmp_path, env=env)
    with serving as server, httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/health").json() == {"status": "ok"}
        login = c.post("/api/auth/login", json={"username": "buyer", "password": "demo-buyer-2026"})
        assert login.status_code == 200, login.text
        me = c.get("/api/me", headers={"Authorization": f"Bearer {login.json()['token']}"}).json()
        assert me["username"] == "buyer" and me["role"] == "buyer"
        lychees = c.get("/api/products", params={"q": "荔枝"}).json()
        assert lychees["total"] >= 3
        page = c.get("/login")
        assert page.status_code == 200 and "登录" in page.text  # a template
        assert c.get("/static/htmx.min.js").status_code == 200  # a static file
    assert (tmp_path / "shop.db").exists() and (tmp_path / "data" / "secret_key").exists()


def test_migrate_seed_and_check_from_the_wheel(installed, tmp_path):
    bin_dir, env = installed
    shop = bin_dir / "shop"
    assert "the file does not exist" in subprocess.run([shop, "check"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False).stdout
    run(shop, "migrate", cwd=tmp_path, env=env)
    counts = ast.literal_eval(run(shop, "seed", cwd=tmp_path, env=env).stdout.strip().splitlines()[-1])
    assert counts["products"] >= 40 and counts["unions"] >= 60 and counts["regions"] == 17
    assert ast.literal_eval(run(shop, "seed", cwd=tmp_path, env=env).stdout.strip().splitlines()[-1]) == counts
    checked = run(shop, "check", cwd=tmp_path, env=env).stdout
    assert "ok    migrations: all" in checked and checked.strip().endswith("ready to serve"), checked
