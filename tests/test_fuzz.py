"""The API against its own OpenAPI schema: schemathesis (its CLI, on the real server) sends what
the schema allows and what it refuses, as an admin and as a buyer, and fails on any 5xx, any
answer the schema does not describe (status, content type, body). Bounded in time; the seed is
printed so that a failure can be replayed (`FUZZ_SEED=… FUZZ_MAX_TIME=…` to change them)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.server import running_server
from tests.world import build_world

pytestmark = pytest.mark.slow_suite

SEED = int(os.environ.get("FUZZ_SEED", "20261125"))
MAX_TIME = int(os.environ.get("FUZZ_MAX_TIME", "75"))
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
# what would end the run's own token (or the account behind it)
TOKEN_ENDING = ("ApiAuthLogoutLogout", "ApiMePasswordChangePassword", "ApiAdminUsersUserIdUpdate")


def _login(url: str, username: str, password: str) -> str:
    r = httpx.post(f"{url}/api/auth/login", json={"username": username, "password": password}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["token"]


def _fuzz(url: str, role: str, token: str, workdir: Path) -> subprocess.CompletedProcess:
    command = [
        str(Path(sys.executable).parent / "st"),
        "run",
        f"{url}/schema/openapi.json",
        "--checks",
        CHECKS,
        "--seed",
        str(SEED),
        "--max-time",
        str(MAX_TIME),
        "--no-color",
        *[arg for operation in TOKEN_ENDING for arg in ("--exclude-operation-id", operation)],
    ]
    print(f"fuzzing as {role} (seed {SEED}): {shlex.join(command)} -H 'Authorization: Bearer …'", flush=True)
    result = subprocess.run(
        [*command, "-H", f"Authorization: Bearer {token}"],
        capture_output=True,
        text=True,
        timeout=MAX_TIME + 300,
        cwd=workdir,  # its cache (.schemathesis/) stays out of the repository
    )
    print(result.stdout[-20000:], result.stderr[-5000:], sep="\n", flush=True)
    return result


async def test_the_api_answers_as_its_schema_says_under_fuzzing(make_user, admin, tmp_path):
    w = await build_world(make_user, admin)
    with running_server(workers=2) as url:
        tokens = {"admin": _login(url, "admin", "admin-password"), "buyer": _login(url, w.buyer.user["username"], "password-123")}
        failed = [role for role, token in tokens.items() if _fuzz(url, role, token, tmp_path).returncode != 0]
    assert not failed, f"schemathesis found failures as {failed} (seed {SEED}); see the output above"
