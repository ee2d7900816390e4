"""The container files agree with the shop (CI builds and runs the image only where a Docker
daemon answers, see .ci/run; these checks run everywhere): every setting they give is one the
shop reads, the image runs `shop serve` as a user without privileges and checks `/health`,
and compose starts the shop once PostgreSQL and Redis are healthy."""

from __future__ import annotations

import re

import pytest

from shop.settings import Settings
from tests.conftest import ROOT

yaml = pytest.importorskip("yaml")
SETTINGS = {name.upper() for name in Settings.__struct_fields__}


def test_the_dockerfile_installs_the_wheel_and_runs_shop_serve_unprivileged():
    text = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in text.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]
    froms = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert froms and all(re.fullmatch(r"python:3\.1[1-9]-slim", image) for image in froms), froms
    assert "pip wheel" in text and re.search(r"pip install \S+\.whl", text)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    last = {line.split()[0]: line for line in lines}
    assert "/health" in last["HEALTHCHECK"]
    assert last["CMD"].startswith('CMD ["shop", "serve", "--host", "0.0.0.0"')
    env = {name for line in lines if line.startswith("ENV ") for name in re.findall(r"(\w+)=", line)}
    assert {n for n in env if not n.startswith(("PYTHON", "PIP_"))} <= SETTINGS, env


def test_compose_runs_the_shop_beside_postgresql_and_redis():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"shop", "postgres", "redis"}
    shop = services["shop"]
    assert shop["build"] == "." and shop["command"][:2] == ["shop", "serve"]
    assert set(shop["environment"]) <= SETTINGS, set(shop["environment"]) - SETTINGS
    pg = services["postgres"]["environment"]
    assert shop["environment"]["DATABASE_URL"] == f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/{pg['POSTGRES_DB']}"
    assert shop["environment"]["REDIS_URL"].startswith("redis://redis:6379/")
    assert {name: dep["condition"] for name, dep in shop["depends_on"].items()} == {"postgres": "service_healthy", "redis": "service_healthy"}
    assert all("healthcheck" in services[name] for name in ("postgres", "redis"))
    grace = int(shop["stop_grace_period"].rstrip("s"))
    assert grace > Settings().graceful_shutdown_seconds  # docker stop waits longer than the shop's own grace
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "data", "*.db"} <= set(ignored)
