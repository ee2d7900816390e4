"""The `shop` command against the tests' database, as a separate process."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from budgets.tables import MemberBudget, Union
from catalog.tables import Product
from shop.auth.tables import User
from shop.orders.tables import Order
from tests.conftest import ROOT, login
from tests.world import build_world


def shop(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`shop …` from the source tree, with the tests' environment (and `env` over it)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "shop.cli", *args], check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


async def test_migrate_seed_is_idempotent_and_user_create(app, client):
    assert shop("migrate").returncode == 0
    first = shop("seed")
    assert first.returncode == 0, first.stderr
    counts = (await Union.count(), await Product.count())
    assert counts[0] >= 60 and counts[1] >= 40
    again = shop("seed")
    assert again.returncode == 0, again.stderr
    assert (await Union.count(), await Product.count()) == counts
    listed = (await client.get("/api/products?q=荔枝")).json()
    assert listed["total"] >= 3 and all("荔枝" in p["title"] + p["description"] for p in listed["items"])

    made = shop("user", "create", "--username", "gz-buyer", "--password", "password-123", "--role", "buyer", "--union-code", "GZ-TH-001")
    assert made.returncode == 0, made.stderr
    api = await login(client, "gz-buyer", "password-123")
    me = (await api.get("/api/me")).json()
    assert me["role"] == "buyer" and me["union_id"] == (await Union.select(Union.id).where(Union.code == "GZ-TH-001").first())["id"]
    bad = shop("user", "create", "--username", "x1", "--password", "password-123", "--role", "buyer", "--union-code", "NOPE")
    assert bad.returncode != 0 and "NOPE" in bad.stderr
    taken = shop("user", "create", "--username", "gz-buyer", "--password", "password-123", "--role", "admin")
    assert taken.returncode != 0 and "conflict" in taken.stderr
    assert await User.count() == 1


async def test_expire_holds_command(app, make_user, admin):
    world = await build_world(make_user, admin)
    app.state.clock = lambda: datetime.now(timezone.utc) - timedelta(days=31)  # placed a month ago
    try:
        r = await world.buyer.post(
            "/api/orders",
            json={"lines": [{"product_id": world.products["tea"], "quantity": 2}], "members": world.members[:2]},
            headers={"Idempotency-Key": "old"},
        )
    finally:
        app.state.clock = lambda: datetime.now(timezone.utc)
    assert r.status_code == 201
    # two runs at once (as from two machines' cron): the order is expired exactly once
    procs = [subprocess.Popen([sys.executable, "-m", "shop.cli", "expire-holds"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert outputs == ["expired 0 order(s)", "expired 1 order(s)"], outputs
    assert (await Order.select(Order.status).first())["status"] == "expired"
    assert (await Product.select(Product.stock).where(Product.id == world.products["tea"]).first())["stock"] == 100
    assert await MemberBudget.count().where(MemberBudget.held_fen > 0) == 0


def test_a_serving_worker_loads_neither_stripe_nor_black(tmp_path):
    """A worker taking bank transfers never imports the stripe library (with requests and
    httpx, ~12 MiB) nor black (Piccolo's app registry, ~9 MiB): its tables have the engine
    without Piccolo's finder; migrations still get the registry when they ask for it."""
    code = (
        "import sys, piccolo_conf, shop.app\n"
        "from shop.orders.tables import Order\n"
        "from budgets.tables import MemberBudget\n"
        "shop.app.create_app()\n"
        "assert Order._meta.db is piccolo_conf.DB and MemberBudget._meta.db is piccolo_conf.DB\n"
        "print(sorted(m for m in ('stripe', 'requests', 'black', 'piccolo.conf.apps') if m in sys.modules))\n"
        "configs = piccolo_conf.APP_REGISTRY.app_configs.values()\n"
        "print(sorted(c.app_name for c in configs))\n"
        "print(sorted(t.__name__ for c in configs for t in c.table_classes if t._meta._db is not piccolo_conf.DB))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": f"sqlite:///{tmp_path}/shop.db", "DATA_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    loaded, apps, unbound = r.stdout.splitlines()
    assert loaded == "[]"
    assert apps == "['budgets', 'catalog', 'common', 'shop']"
    assert unbound == "[]"  # every table the apps migrate has the engine (shop.db.TABLE_MODULES)
